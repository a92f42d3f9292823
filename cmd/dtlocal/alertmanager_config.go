package main

// builtinAlertmanagerConfig is deploy/local/alertmanager.yml, for when dtlocal
// runs outside the repository (a test keeps the two identical).
const builtinAlertmanagerConfig = `# Alertmanager (0.25+) configuration for the local decisiontrace stack, as
# started by "dtlocal up" on http://127.0.0.1:19093. Check it with:
#   amtool check-config deploy/local/alertmanager.yml
#
# Alerts are grouped per rule and per workflow, so that one misbehaving
# workflow produces one notification, not one per decision or per instance.
global:
  resolve_timeout: 5m

route:
  receiver: default
  group_by: ['alertname', 'workflow']
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 4h
  routes:
    # Anything that needs a human now: critical severity, from any team.
    - receiver: page
      matchers:
        - severity = "critical"
      repeat_interval: 1h
    # Team-owned alerts keep the team in the grouping, so two teams'
    # alerts about one workflow are not merged into one notification.
    - receiver: default
      matchers:
        - team =~ ".+"
      group_by: ['alertname', 'workflow', 'team']
    # Everything else (warning, info) falls through to the route's default.

# A critical alert silences the warnings of the same rule and workflow.
inhibit_rules:
  - source_matchers:
      - severity = "critical"
    target_matchers:
      - severity = "warning"
    equal: ['alertname', 'workflow']

receivers:
  # No notifier: alerts are visible in the UI and the API
  # (GET http://127.0.0.1:19093/api/v2/alerts), which is what the local
  # stack and its tests need.
  - name: default
  - name: page
    # To be notified, add a notifier, for example a webhook:
    # webhook_configs:
    #   - url: http://127.0.0.1:5001/alerts
    #     send_resolved: true
    #     max_alerts: 20
`
