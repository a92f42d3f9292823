package main

// builtinAlertmanagerConfig is deploy/local/alertmanager.yml, for when dtlocal
// runs outside the repository (a test keeps the two identical).
const builtinAlertmanagerConfig = `# Alertmanager (0.25+) configuration for the local decisiontrace stack, as
# started by "dtlocal up" on http://127.0.0.1:19093, and an example of
# routing decisiontrace's alerts in production. Check it with:
#   amtool check-config deploy/local/alertmanager.yml
#   amtool config routes test --config.file=deploy/local/alertmanager.yml team=claims-oncall severity=page
#
# Every decisiontrace alert carries a team (from the rule, or the paging
# section of the workflow's contract) and a severity: page wakes someone
# up, ticket waits for working hours. Routing is by team first, then by
# severity. Alerts are grouped per cause (the alert's name) and workflow,
# so that one misbehaving workflow makes one notification, not one per
# source or layer.
global:
  resolve_timeout: 5m

route:
  receiver: decision-platform-tickets   # whatever no team claims
  group_by: ['alertname', 'workflow']
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 12h
  routes:
    # The decision store cannot be queried: nothing is evaluated, so this
    # one page stands for every alert. Every evaluator replica raises the
    # same alert; Alertmanager keeps one.
    - matchers: ['alertname = "DecisionStoreUnavailable"']
      receiver: decision-platform-pager
      group_wait: 10s
      repeat_interval: 1h
    # The evaluator's own alerts (a rule's query fails, or its signals have
    # stopped) go to the team that runs decisiontrace, whichever team owns
    # the rule: the fix is in the pipeline, not in the workflow.
    - matchers: ['alertname =~ "DecisionRuleFailing|DecisionRuleNoData"']
      receiver: decision-platform-tickets
      group_by: ['alertname', 'rule']
    - matchers: ['team =~ "claims-oncall|claims-ops"']
      receiver: claims-tickets
      routes:
        - matchers: ['severity = "page"']
          receiver: claims-pager
          group_wait: 10s
          repeat_interval: 1h
    - matchers: ['team = "lending-oncall"']
      receiver: lending-tickets
      routes:
        - matchers: ['severity = "page"']
          receiver: lending-pager
          group_wait: 10s
          repeat_interval: 1h
    - matchers: ['team = "ml-platform"']
      receiver: ml-platform-tickets
      routes:
        - matchers: ['severity = "page"']
          receiver: ml-platform-pager
          group_wait: 10s
          repeat_interval: 1h
    - matchers: ['team = "decision-platform"']
      receiver: decision-platform-tickets
      routes:
        - matchers: ['severity = "page"']
          receiver: decision-platform-pager
          group_wait: 10s
          repeat_interval: 1h

inhibit_rules:
  # A page silences the tickets of the same rule and workflow.
  - source_matchers: ['severity = "page"']
    target_matchers: ['severity = "ticket"']
    equal: ['alertname', 'workflow']
  # A silent layer explains why a rule over that workflow has no data.
  - source_matchers: ['alertname = "DecisionLayerSilent"']
    target_matchers: ['alertname = "DecisionRuleNoData"']
    equal: ['workflow']
  # A workflow that makes no decisions explains its quiet layers, its
  # sources nobody reads and its rules without data: one alert for one
  # fact. (The evaluator holds these back itself; this covers your own
  # rules and other evaluators.)
  - source_matchers: ['alertname = "DecisionWorkflowSilent"']
    target_matchers: ['alertname =~ "DecisionLayerSilent|DecisionSourceStale|DecisionRuleNoData"']
    equal: ['workflow']
  # Stale or missing context explains the burn of the workflow's
  # fresh-context SLO: the context alert is the one page.
  - source_matchers: ['alertname =~ "DecisionSourceStale|DecisionMissingContext|DecisionUnsupportedCertainty"']
    target_matchers: ['alertname =~ "DecisionSLOBurnFast|DecisionSLOBurnSlow"', 'sli = "fresh_context"']
    equal: ['workflow']
  # A store that cannot be queried explains every failing rule.
  - source_matchers: ['alertname = "DecisionStoreUnavailable"']
    target_matchers: ['alertname =~ "DecisionRuleFailing|DecisionRuleNoData"']

# No notifier locally: alerts are visible in the UI and the API
# (GET http://127.0.0.1:19093/api/v2/alerts), which is what the local stack
# and its tests need. In production give each receiver its notifier, e.g.
#   pagerduty_configs: [{routing_key_file: /etc/alertmanager/claims-pd-key}]
#   webhook_configs: [{url: http://tickets.internal/alertmanager, send_resolved: true}]
receivers:
  - name: claims-pager
  - name: claims-tickets
  - name: lending-pager
  - name: lending-tickets
  - name: ml-platform-pager
  - name: ml-platform-tickets
  - name: decision-platform-pager
  - name: decision-platform-tickets
`
