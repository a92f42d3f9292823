package alertrulesreceiver

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/decisiontrace/decisiontrace/exporters/alertmanagerexporter"
	"github.com/decisiontrace/decisiontrace/internal/amtest"
	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/storetest"
	"github.com/decisiontrace/decisiontrace/receivers/alertrulesreceiver/internal/metadata"
)

// The tests in this file run the whole paging path: events in the decision
// store (real ClickHouse), this receiver evaluating rules, the alertmanager
// exporter, and Debian's Alertmanager notifying a webhook. What a user
// relies on is read back where the user sees it: Alertmanager's API and
// its notifications.

// holds is when each kind's condition holds, one character per
// evaluation (1 minute apart): it holds once and dips (pending starts
// again: `for` counts from the second start), holds for 2 minutes (fires),
// dips once while firing and holds again (keep_firing_for: no flap), then
// clears for good (resolves 2 minutes later).
const holds = ".H.HHHH.H......"

// firingAt is what Alertmanager must show after each evaluation for
// `for: 2m` and `keep_firing_for: 2m`: firing from the evaluation at
// which the condition has held for 2 minutes (5) until 2 minutes after it
// last held (8 + 2 = 10 is the last firing one, 11 resolves).
const firingAt = ".....FFFFFF...."

const (
	firedTick    = 5
	resolvedTick = 11
	restartTick  = 7 // the collector restarts while every alert fires
)

// kindCase is one built-in kind (and custom SQL): its rule, the events
// that make its condition hold or not at an evaluation, and what the alert
// looks like in Alertmanager.
type kindCase struct {
	kind     string
	rule     string // the kind's fields of the rule, YAML
	summary  string // annotation template
	events   func(k int, at time.Time, hold bool) []event
	labels   map[string]string // besides alertname, workflow, severity, team
	wantSumm string            // the summary rendered when it fires
	examples string            // the example_decisions annotation when it fires
}

type event struct {
	at    time.Time
	attrs map[string]any
}

func id(kind string, k, j int) string { return fmt.Sprintf("%s-%d-%d", kind, k, j) }

// Every built-in kind, in its own workflow wf-<kind>.
func kindCases() []kindCase {
	var lastFresh time.Time
	// The verdict kinds: ten decisions per evaluation, each a model output
	// and its read of policy-db, whose verdicts ClickHouse derives against
	// the workflow's contract (verdictContract). set makes a decision bad
	// or good by its confidence and its read.
	verdicts := func(kind string, set func(output, read map[string]any, at time.Time, bad bool)) func(int, time.Time, bool) []event {
		return func(k int, at time.Time, hold bool) []event {
			var out []event
			for j := 0; j < 10; j++ {
				output := map[string]any{c.DecisionID: id(kind, k, j), c.DecisionLayer: "model", c.DecisionEvent: "model.output",
					c.ModelVersion: "v2", c.ModelConfidence: 0.9}
				read := map[string]any{c.DecisionID: id(kind, k, j), c.DecisionLayer: "data", c.DecisionEvent: "context.read",
					c.DataSource: "policy-db", c.DataAsOf: at.Add(-10 * time.Second).Format(time.RFC3339Nano)}
				set(output, read, at, isBad(j, hold))
				out = append(out, event{at, output}, event{at.Add(-time.Second), read})
			}
			return out
		}
	}
	routed := func(kind string, k int, at time.Time) event {
		return event{at, map[string]any{c.DecisionID: id(kind, k, 0), c.DecisionLayer: "workflow",
			c.DecisionEvent: "workflow.routed", c.WorkflowQueue: "manual-review"}}
	}
	return []kindCase{
		{
			kind: "source_staleness", rule: "max_age: 30s",
			summary: `{{ .Labels.source }} feeding {{ .Labels.workflow }} is {{ printf "%.0f" .Value }}s old`,
			events: func(k int, at time.Time, hold bool) []event {
				if !hold || lastFresh.IsZero() {
					lastFresh = at
				}
				return []event{
					{at, map[string]any{c.DecisionLayer: "data", c.DecisionEvent: "source.freshness", c.DataSource: "policy-db",
						c.DataAsOf: lastFresh.Format(time.RFC3339Nano)}},
					{at, map[string]any{c.DecisionID: id("source_staleness", k, 0), c.DecisionLayer: "data", c.DecisionEvent: "context.read",
						c.DataSource: "policy-db", c.DataAsOf: lastFresh.Format(time.RFC3339Nano)}},
				}
			},
			labels: map[string]string{"source": "policy-db"},
			// Last fresh at evaluation 2 (30 s before it): the poll and the
			// read 30 s before evaluation 5 found it 3 minutes old.
			wantSumm: "policy-db feeding wf-source_staleness is 180s old",
			examples: "source_staleness-5-0 source_staleness-4-0 source_staleness-3-0",
		},
		{
			kind: "queue_depth", rule: "max_depth: 100",
			summary: `queue {{ .Labels.queue }} holds {{ printf "%.0f" .Value }} items`,
			events: func(k int, at time.Time, hold bool) []event {
				depth := int64(10)
				if hold {
					depth = 500
				}
				return []event{routed("queue_depth", k, at), {at, map[string]any{c.DecisionLayer: "workflow", c.DecisionEvent: "queue.depth",
					c.WorkflowQueue: "manual-review", c.WorkflowQueueDepth: depth}}}
			},
			labels:   map[string]string{"queue": "manual-review"},
			wantSumm: "queue manual-review holds 500 items",
			examples: "queue_depth-5-0 queue_depth-4-0 queue_depth-3-0",
		},
		{
			kind: "queue_growth", rule: "max_growth: 100\n        window: 60s",
			summary: `queue {{ .Labels.queue }} grew by {{ printf "%.0f" .Value }} items`,
			events: func(k int, at time.Time, hold bool) []event {
				grow := int64(0)
				if hold {
					grow = 250
				}
				q := func(at time.Time, d int64) event {
					return event{at, map[string]any{c.DecisionLayer: "workflow", c.DecisionEvent: "queue.depth",
						c.WorkflowQueue: "manual-review", c.WorkflowQueueDepth: d}}
				}
				return []event{routed("queue_growth", k, at), q(at.Add(-10*time.Second), 50), q(at.Add(10*time.Second), 50+grow)}
			},
			labels:   map[string]string{"queue": "manual-review"},
			wantSumm: "queue manual-review grew by 250 items",
			examples: "queue_growth-5-0",
		},
		{
			kind: "override_rate", rule: "window: 60s\n        max_rate: 0.5\n        min_count: 5\n        by_model_version: true",
			summary: `reviewers override {{ printf "%.0f" (mul100 .Value) }}% of model {{ .Labels.model_version }}`,
			events: func(k int, at time.Time, hold bool) []event {
				var out []event
				for j := 0; j < 10; j++ {
					action := "accepted"
					if isBad(j, hold) {
						action = "overridden"
					}
					out = append(out,
						event{at.Add(-5 * time.Second), map[string]any{c.DecisionID: id("override_rate", k, j), c.DecisionLayer: "model",
							c.DecisionEvent: "model.output", c.ModelVersion: "v2", c.ModelConfidence: 0.9}},
						event{at, map[string]any{c.DecisionID: id("override_rate", k, j), c.DecisionLayer: "human",
							c.DecisionEvent: "human.action", c.HumanAction: action}})
				}
				return out
			},
			labels:   map[string]string{"model_version": "v2"},
			wantSumm: "reviewers override 80% of model v2",
			examples: "override_rate-5-0 override_rate-5-1 override_rate-5-2",
		},
		{
			kind: "unsupported_certainty_rate", rule: "window: 60s\n        max_rate: 0.5\n        min_count: 5",
			summary: `{{ printf "%.0f" (mul100 .Value) }}% confident on stale or missing context`,
			// Confident on a read 10 minutes old.
			events: verdicts("unsupported_certainty_rate", func(_, read map[string]any, at time.Time, bad bool) {
				if bad {
					read[c.DataAsOf] = at.Add(-10 * time.Minute).Format(time.RFC3339Nano)
				}
			}),
			wantSumm: "80% confident on stale or missing context",
			examples: "unsupported_certainty_rate-5-0 unsupported_certainty_rate-5-1 unsupported_certainty_rate-5-2",
		},
		{
			kind: "missing_context_rate", rule: "window: 60s\n        max_rate: 0.5\n        min_count: 5",
			summary: `{{ printf "%.0f" (mul100 .Value) }}% miss context`,
			// policy-db could not be read.
			events: verdicts("missing_context_rate", func(_, read map[string]any, _ time.Time, bad bool) {
				if bad {
					read[c.DataAvailable] = false
					delete(read, c.DataAsOf)
				}
			}),
			wantSumm: "80% miss context",
			examples: "missing_context_rate-5-0 missing_context_rate-5-1 missing_context_rate-5-2",
		},
		{
			kind: "low_confidence_share", rule: "window: 60s\n        max_rate: 0.5\n        min_count: 5",
			summary: `{{ printf "%.0f" (mul100 .Value) }}% low confidence`,
			// Under the floor of 0.7.
			events: verdicts("low_confidence_share", func(output, _ map[string]any, _ time.Time, bad bool) {
				if bad {
					output[c.ModelConfidence] = 0.5
				}
			}),
			wantSumm: "80% low confidence",
			examples: "low_confidence_share-5-0 low_confidence_share-5-1 low_confidence_share-5-2",
		},
		{
			kind: "confidence_drift", rule: "window: 60s\n        baseline: 1h\n        max_drift: 0.25\n        min_count: 5",
			summary: `mean confidence moved by {{ printf "%.2f" .Value }}`,
			events: func(k int, at time.Time, hold bool) []event {
				conf := 0.9
				if hold {
					conf = 0.4
				}
				var out []event
				for j := 0; j < 10; j++ {
					out = append(out, event{at, map[string]any{c.DecisionID: id("confidence_drift", k, j), c.DecisionLayer: "model",
						c.DecisionEvent: "model.output", c.ModelVersion: "v2", c.ModelConfidence: conf}})
				}
				return out
			},
			// At 5: 0.4 now against the 59 evaluations before, 3 of them at
			// 0.4 and 56 at 0.9: |0.4 - 51.6/59| = 0.4746.
			wantSumm: "mean confidence moved by 0.47",
			examples: "confidence_drift-5-0 confidence_drift-5-1 confidence_drift-5-2",
		},
		{
			kind: "layer_silence", rule: "silent_for: 30s",
			summary: `no {{ .Labels.layer }} signals for {{ printf "%.0f" .Value }}s`,
			events: func(k int, at time.Time, hold bool) []event {
				var out []event
				for _, l := range []string{"data", "model", "workflow", "business"} {
					out = append(out, event{at, map[string]any{c.DecisionID: id("layer_silence", k, 0), c.DecisionLayer: l, c.DecisionEvent: l + ".signal"}})
				}
				if !hold {
					out = append(out, event{at, map[string]any{c.DecisionID: id("layer_silence", k, 0), c.DecisionLayer: "human",
						c.DecisionEvent: "human.action", c.HumanAction: "accepted"}})
				}
				return out
			},
			labels: map[string]string{"layer": "human"},
			// The human layer's last signal trails the workflow's last
			// decision (model signal) by 3 minutes.
			wantSumm: "no human signals for 180s",
			// The layer's last decisions before it went quiet.
			examples: "layer_silence-2-0 layer_silence-0-0 layer_silence--1-0",
		},
		{
			kind: "unresolved_entity_rate", rule: "window: 60s\n        max_rate: 0.2\n        min_count: 5",
			summary: `{{ .Labels.entity_system }}: {{ printf "%.0f" (mul100 .Value) }}% unresolved`,
			events: tenOf("unresolved_entity_rate", func(j int, bad bool) map[string]any {
				return map[string]any{c.DecisionLayer: "data", c.DecisionEvent: "context.read", c.DataSource: "crm-profile",
					c.DataEntitySystem: "crm", c.DataEntityID: fmt.Sprint("C-", j), c.DataEntityResolved: !bad}
			}),
			labels:   map[string]string{"entity_system": "crm"},
			wantSumm: "crm: 80% unresolved",
			examples: "unresolved_entity_rate-5-0 unresolved_entity_rate-5-1 unresolved_entity_rate-5-2",
		},
		{
			kind: "evaluation_score", rule: "evaluation: groundedness\n        min_score: 0.5\n        window: 60s\n        max_rate: 0.2\n        min_count: 5",
			summary: `{{ .Labels.evaluation }}: {{ printf "%.0f" (mul100 .Value) }}% under the floor`,
			events: func(k int, at time.Time, hold bool) []event {
				// The scored outputs, and an evaluator's scores that name
				// no workflow of their own.
				out := tenOf("evaluation_score", func(int, bool) map[string]any {
					return map[string]any{c.DecisionLayer: "model", c.DecisionEvent: "model.output", c.ModelVersion: "v2"}
				})(k, at.Add(-time.Second), hold)
				return append(out, tenOf("evaluation_score", func(_ int, bad bool) map[string]any {
					score := 0.9
					if bad {
						score = 0.3
					}
					return map[string]any{c.GenAIEvaluationName: "groundedness", c.GenAIEvaluationScoreValue: score}
				})(k, at, hold)...)
			},
			labels:   map[string]string{"evaluation": "groundedness"},
			wantSumm: "groundedness: 80% under the floor",
			examples: "evaluation_score-5-0 evaluation_score-5-1 evaluation_score-5-2",
		},
		{
			kind: "ratio", rule: "count: decisions\n        denominator: {decision.event: human.action}\n        numerator: {human.action: ignored}\n        window: 60s\n        max_rate: 0.2\n        min_count: 5",
			summary: `{{ printf "%.0f" (mul100 .Value) }}% of recommendations ignored`,
			events: tenOf("ratio", func(_ int, bad bool) map[string]any {
				action := c.ActionAccepted
				if bad {
					action = c.ActionIgnored
				}
				return map[string]any{c.DecisionLayer: "human", c.DecisionEvent: "human.action", c.HumanAction: action}
			}),
			wantSumm: "80% of recommendations ignored",
			examples: "ratio-5-0 ratio-5-1 ratio-5-2",
		},
		{
			// The condition follows the short window: the long one (two
			// evaluations) still holds a burn when the short one has none.
			kind: "slo_burn_rate", rule: "objective: 0.9\n        burn_rate: 2\n        count: decisions\n        denominator: {decision.event: model.output}\n        numerator: {model.unsafe: true}\n        long_window: 120s\n        short_window: 60s\n        min_count: 5",
			summary: `burning the budget {{ printf "%.0f" .Value }} times as fast as allowed`,
			events: tenOf("slo_burn_rate", func(_ int, bad bool) map[string]any {
				return map[string]any{c.DecisionLayer: "model", c.DecisionEvent: "model.output", c.ModelUnsafe: bad}
			}),
			// 16 of the last two evaluations' 20 decisions unsafe: 80%, 8
			// times the 10% a 90% objective allows.
			wantSumm: "burning the budget 8 times as fast as allowed",
			examples: "slo_burn_rate-5-0 slo_burn_rate-5-1 slo_burn_rate-5-2",
		},
		{
			kind: "quantile", rule: "value: model.latency_ms\n        quantile: 0.5\n        denominator: {decision.event: model.output}\n        max: 2000\n        window: 60s\n        min_count: 5",
			summary: `median latency {{ printf "%.0f" .Value }} ms`,
			events: tenOf("quantile", func(_ int, bad bool) map[string]any {
				latency := 300.0
				if bad {
					latency = 5000
				}
				return map[string]any{c.DecisionLayer: "model", c.DecisionEvent: "model.output", c.ModelLatencyMS: latency}
			}),
			wantSumm: "median latency 5000 ms",
			examples: "quantile-5-0 quantile-5-1 quantile-5-2",
		},
		{
			kind: "interval", rule: "from: {decision.event: model.output}\n        to: {decision.event: human.action}\n        quantile: 0.5\n        max: 300\n        window: 60s\n        min_count: 5",
			summary: `median time to action {{ printf "%.0f" .Value }} s`,
			// Each decision's output, and its action 20 s later, or 10
			// minutes later when bad.
			events: func(k int, at time.Time, hold bool) []event {
				var out []event
				for j := 0; j < 10; j++ {
					wait := 20 * time.Second
					if isBad(j, hold) {
						wait = 10 * time.Minute
					}
					out = append(out,
						event{at.Add(-wait), map[string]any{c.DecisionID: id("interval", k, j), c.DecisionLayer: "model", c.DecisionEvent: "model.output"}},
						event{at, map[string]any{c.DecisionID: id("interval", k, j), c.DecisionLayer: "human", c.DecisionEvent: "human.action",
							c.HumanAction: c.ActionAccepted}})
				}
				return out
			},
			wantSumm: "median time to action 600 s",
			examples: "interval-5-0 interval-5-1 interval-5-2",
		},
		{
			kind: "custom_sql",
			rule: `sql: |
          SELECT workflow, toFloat64(count()) AS value FROM {db}.events
          WHERE workflow = 'wf-custom_sql' AND event = 'workflow.exception' AND time > {now} - INTERVAL 60 SECOND AND time <= {now}
          GROUP BY workflow HAVING value > 3`,
			summary: `{{ printf "%.0f" .Value }} exceptions in a minute`,
			events: func(k int, at time.Time, hold bool) []event {
				n := 1
				if hold {
					n = 5
				}
				var out []event
				for j := 0; j < n; j++ {
					out = append(out, event{at, map[string]any{c.DecisionID: id("custom_sql", k, j), c.DecisionLayer: "workflow",
						c.DecisionEvent: "workflow.exception", c.WorkflowExceptionType: "timeout"}})
				}
				return out
			},
			wantSumm: "5 exceptions in a minute",
		},
	}
}

// tenOf is ten decisions' signals of one evaluation, eight of them bad
// while the condition holds and one otherwise.
func tenOf(kind string, signal func(j int, bad bool) map[string]any) func(int, time.Time, bool) []event {
	return func(k int, at time.Time, hold bool) []event {
		out := make([]event, 0, 10)
		for j := 0; j < 10; j++ {
			attrs := signal(j, isBad(j, hold))
			attrs[c.DecisionID] = id(kind, k, j)
			out = append(out, event{at, attrs})
		}
		return out
	}
}

// isBad says whether the j-th of an evaluation's ten decisions is bad:
// eight while the condition holds, one otherwise.
func isBad(j int, hold bool) bool { return (hold && j < 8) || (!hold && j < 1) }

func alertName(kind string) string {
	var b strings.Builder
	for _, p := range strings.Split(kind, "_") {
		b.WriteString(strings.ToUpper(p[:1]) + p[1:])
	}
	return "Test" + b.String()
}

func kindRules(cases []kindCase) string {
	var b strings.Builder
	b.WriteString("groups:\n  - name: kinds\n    interval: 1m\n    rules:\n")
	for _, kc := range cases {
		// custom_sql's query finds its workflow itself: the rule lists
		// which it alerts for.
		wf := "\n        workflows: [wf-" + kc.kind + "]"
		if kc.kind != "custom_sql" {
			wf = "\n        workflow: wf-" + kc.kind
		}
		fmt.Fprintf(&b, `      - alert: %s
        kind: %s%s
        %s
        for: 2m
        keep_firing_for: 2m
        labels: {severity: page, team: team-%s}
        annotations:
          summary: '%s'
          example_decisions: '{{ join .ExampleDecisions " " }}'
          dashboard: '{{ .DashboardURL }}'
`, alertName(kc.kind), kc.kind, wf, kc.rule, kc.kind, kc.summary)
	}
	return b.String()
}

// write stores events of workflow wf (unless an event names its own)
// through the decision store, in one request.
func (r *rig) write(t *testing.T, wf string, evs []event) {
	t.Helper()
	out := make([]storetest.Event, len(evs))
	for i, e := range evs {
		attrs := make(map[string]any, len(e.attrs)+1)
		attrs[c.DecisionWorkflow] = wf
		for k, v := range e.attrs {
			attrs[k] = v
		}
		out[i] = storetest.Event{At: e.at, Attrs: attrs}
	}
	r.WriteEvents(t, out...)
}

// verdictContract is the contract of a verdict kind's workflow: one
// required source with a budget of 90 s, and a confidence floor of 0.7.
func verdictContract(wf string) string {
	return "workflow: " + wf + "\nowner: team\nsources:\n  required:\n    - {name: policy-db, max_age: 90s}\nconfidence_floor: 0.7\n"
}

// pager is a receiver evaluated on a virtual clock, feeding a real
// alertmanager exporter, as one collector would run them.
type pager struct {
	rcv *alertReceiver
	exp exporter.Logs
}

func (r *rig) pager(t *testing.T, rulesYAML, amURL string, now func() time.Time) *pager {
	t.Helper()
	return r.pagerWith(t, r.config(t, rulesYAML), amURL, now)
}

func (r *rig) pagerWith(t *testing.T, cfg *Config, amURL string, now func() time.Time) *pager {
	t.Helper()

	ef := alertmanagerexporter.NewFactory()
	ecfg := ef.CreateDefaultConfig().(*alertmanagerexporter.Config)
	ecfg.Endpoints = []string{amURL}
	// Synchronous: what an evaluation sends is in Alertmanager when it
	// returns, so the test can look after each one.
	ecfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	exp, err := ef.CreateLogs(context.Background(), exportertest.NewNopSettings(ef.Type()), ecfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))

	rcv, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), exp)
	require.NoError(t, err)
	rcv.now = now
	require.NoError(t, rcv.connect())
	require.NoError(t, rcv.prepare(context.Background()))
	p := &pager{rcv: rcv, exp: exp}
	t.Cleanup(func() { p.stop(t) })
	return p
}

// eval runs one round as the receiver does: the verdicts refreshed, then
// every group.
func (p *pager) eval(t *testing.T) {
	t.Helper()
	_, err := p.rcv.store.RefreshVerdicts(context.Background())
	require.NoError(t, err)
	for _, g := range p.rcv.groups {
		p.rcv.evalGroup(context.Background(), g)
	}
}

// rendered returns the annotations the evaluator last sent for the one
// firing alert of rule name.
func (p *pager) rendered(t *testing.T, name string) map[string]string {
	t.Helper()
	p.rcv.mu.Lock()
	defer p.rcv.mu.Unlock()
	for _, ev := range p.rcv.byRule {
		if ev.rule.Alert != name {
			continue
		}
		for _, a := range firingOf(p.rcv.eval.Machine(ev.rule)) {
			return ev.sent[a.Fingerprint]
		}
	}
	t.Fatalf("%s: no firing alert", name)
	return nil
}

func (p *pager) stop(t *testing.T) {
	if p.rcv.conn == nil {
		return
	}
	require.NoError(t, p.rcv.Shutdown(context.Background()))
	p.rcv.conn = nil
	require.NoError(t, p.exp.Shutdown(context.Background()))
}

func TestIntegrationEveryKindFiresAndResolvesInAlertmanager(t *testing.T) {
	r := newRig(t)
	am, hook := amtest.StartNotifying(t)
	cases := kindCases()

	// Virtual time in the past: a resolve's endsAt (its resolved_at) is
	// then in the past for Alertmanager, as it is in production.
	base := time.Now().UTC().Truncate(time.Minute).Add(-3 * time.Hour)
	tick := func(k int) time.Time { return base.Add(time.Duration(k) * time.Minute) }
	for _, kc := range cases {
		switch kc.kind {
		case "unsupported_certainty_rate", "missing_context_rate", "low_confidence_share":
			r.ContractsYAML(t, base, verdictContract("wf-"+kc.kind))
		}
		var evs []event
		// An hour of normal operation first: the baseline of drift, and the
		// history every kind starts from.
		for k := -60; k < len(holds); k++ {
			evs = append(evs, kc.events(k, tick(k).Add(-30*time.Second), k >= 0 && holds[k] == 'H')...)
		}
		r.write(t, "wf-"+kc.kind, evs)
	}

	var now time.Time
	clock := func() time.Time { return now }
	p := r.pager(t, kindRules(cases), am.URL(), clock)
	for k := 0; k < len(holds); k++ {
		if k == restartTick {
			p.stop(t)
			p = r.pager(t, kindRules(cases), am.URL(), clock)
		}
		now = tick(k)
		p.eval(t)

		active, err := am.Alerts()
		require.NoError(t, err)
		byName := map[string]map[string]string{}
		annotations := map[string]map[string]string{}
		starts := map[string]time.Time{}
		for _, a := range active {
			byName[a.Labels["alertname"]] = a.Labels
			annotations[a.Labels["alertname"]] = a.Annotations
			starts[a.Labels["alertname"]] = time.Time(*a.StartsAt)
		}
		for _, kc := range cases {
			name := alertName(kc.kind)
			labels, present := byName[name]
			if firingAt[k] != 'F' {
				assert.False(t, present, "evaluation %d: %s must not be in Alertmanager (condition %c)", k, name, holds[k])
				continue
			}
			if !assert.True(t, present, "evaluation %d: %s must fire (condition %c)", k, name, holds[k]) {
				continue
			}
			want := map[string]string{"alertname": name, "workflow": "wf-" + kc.kind, "severity": "page", "team": "team-" + kc.kind}
			for k, v := range kc.labels {
				want[k] = v
			}
			assert.Equal(t, want, map[string]string(labels), "labels of %s", name)
			assert.True(t, tick(firedTick).Equal(starts[name]), "%s startsAt = when it fired, got %s", name, starts[name])
			wantAnn := map[string]string{"summary": kc.wantSumm,
				"dashboard": "http://grafana/d/decisiontrace-overview?var-workflow=wf-" + kc.kind}
			if kc.examples != "" {
				wantAnn["example_decisions"] = kc.examples
			}
			if k != firedTick {
				// Rendered again every round: what the evaluator made of
				// this round's value and example decisions.
				wantAnn = p.rendered(t, name)
			}
			assert.Equal(t, wantAnn, map[string]string(annotations[name]), "annotations of %s at evaluation %d", name, k)
		}
	}

	// Each alert notified exactly once firing and once resolved: neither
	// the dips, nor the restart, nor the re-sends paged anyone again.
	require.Eventually(t, func() bool {
		for _, kc := range cases {
			if len(hook.Notifications(t, alertName(kc.kind))) < 2 {
				return false
			}
		}
		return true
	}, 15*time.Second, 100*time.Millisecond, "every alert notified firing and resolved")
	time.Sleep(3 * time.Second) // three group intervals: room for any extra notification
	for _, kc := range cases {
		name := alertName(kc.kind)
		var got []string
		for _, n := range hook.Notifications(t, name) {
			got = append(got, n.Status)
			if n.Status == "firing" {
				assert.True(t, tick(firedTick).Equal(n.StartsAt), "%s notified with startsAt %s", name, n.StartsAt)
			} else {
				assert.True(t, tick(resolvedTick).Equal(n.EndsAt), "%s resolved with endsAt %s", name, n.EndsAt)
			}
		}
		sort.Strings(got)
		assert.Equal(t, []string{"firing", "resolved"}, got, "notifications of %s", name)
	}
}

// Alertmanager down for a minute while an alert starts firing: the shipped
// exporter settings (sending queue, retry without a deadline, re-send)
// deliver it once Alertmanager is back, and it is notified once.
func TestIntegrationAlertmanagerDownForAMinute(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	am, hook := amtest.StartNotifying(t)
	am.Stop()

	cfg := r.config(t, `
groups:
  - name: down
    interval: 1s
    rules:
      - alert: QueueDeepWhileAlertmanagerDown
        kind: queue_depth
        workflow: claims-triage
        max_depth: 400
        labels: {severity: page, team: claims-oncall}
        annotations: {summary: 'queue {{ .Labels.queue }} holds {{ printf "%.0f" .Value }} items'}
`)

	ef := alertmanagerexporter.NewFactory()
	ecfg := ef.CreateDefaultConfig().(*alertmanagerexporter.Config)
	ecfg.Endpoints = []string{am.URL()}
	ctx := context.Background()
	exp, err := ef.CreateLogs(ctx, exportertest.NewNopSettings(ef.Type()), ecfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(ctx, componenttest.NewNopHost()))
	defer func() { require.NoError(t, exp.Shutdown(ctx)) }()
	rcv, err := NewFactory().CreateLogs(ctx, receivertest.NewNopSettings(metadata.Type), cfg, exp)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(ctx, componenttest.NewNopHost()))
	defer func() { require.NoError(t, rcv.Shutdown(ctx)) }()

	r.depth(t, 900)
	require.Eventually(t, func() bool {
		var n uint64
		err := r.Conn.QueryRow(ctx, "SELECT count() FROM "+r.DB+".alert_history WHERE alertname = 'QueueDeepWhileAlertmanagerDown' AND state = 'firing'").Scan(&n)
		return err == nil && n == 1
	}, 20*time.Second, 100*time.Millisecond, "the alert fires while Alertmanager is down")
	time.Sleep(time.Minute)

	am.Restart()
	// The retry's back-off is at most 30 s; the re-send comes within a minute.
	var got []amtest.Notification
	require.Eventually(t, func() bool {
		got = hook.Notifications(t, "QueueDeepWhileAlertmanagerDown")
		return len(got) > 0
	}, 75*time.Second, 200*time.Millisecond, "the alert reaches Alertmanager after it returns")
	assert.Equal(t, "firing", got[0].Status)
	assert.Equal(t, "queue manual-review holds 900 items", got[0].Annotations["summary"])
	time.Sleep(3 * time.Second)
	assert.Len(t, hook.Notifications(t, "QueueDeepWhileAlertmanagerDown"), 1, "notified once")
}

// Two collectors evaluating the same rules on the same store, as
// Prometheus replicas do: Alertmanager holds one alert and notifies once,
// and when one replica stops, the other keeps it firing and resolves it.
func TestIntegrationTwoReplicasPageOnce(t *testing.T) {
	r := newRig(t)
	am, hook := amtest.StartNotifying(t)
	rules := `
groups:
  - name: ha
    interval: 1m
    rules:
      - alert: ReviewQueueDeep
        kind: queue_depth
        workflow: claims-triage
        max_depth: 400
        for: 2m
        labels: {severity: page, team: claims-oncall}
        annotations: {summary: 'manual review holds {{ printf "%.0f" .Value }} claims'}
`
	base := time.Now().UTC().Truncate(time.Minute).Add(-time.Hour)
	var evs []event
	for k := 0; k < 10; k++ {
		depth := int64(100)
		if k >= 1 && k <= 5 {
			depth = 900
		}
		evs = append(evs, event{base.Add(time.Duration(k)*time.Minute - 30*time.Second), map[string]any{c.DecisionLayer: "workflow",
			c.DecisionEvent: "queue.depth", c.WorkflowQueue: "manual-review", c.WorkflowQueueDepth: depth}})
	}
	r.write(t, "claims-triage", evs)

	// The replicas evaluate a few seconds apart, as two collectors do.
	var now time.Time
	a := r.pager(t, rules, am.URL(), func() time.Time { return now })
	b := r.pager(t, rules, am.URL(), func() time.Time { return now.Add(7 * time.Second) })
	for k := 0; k < 10; k++ {
		now = base.Add(time.Duration(k) * time.Minute)
		a.eval(t)
		if k < 4 {
			b.eval(t)
		} else if k == 4 {
			b.stop(t) // one replica goes away while the alert fires
		}
		got, err := am.Alerts(`alertname="ReviewQueueDeep"`)
		require.NoError(t, err)
		if k >= 3 && k <= 5 {
			require.Len(t, got, 1, "evaluation %d: one alert in Alertmanager", k)
		} else {
			require.Empty(t, got, "evaluation %d", k)
		}
	}
	require.Eventually(t, func() bool { return len(hook.Notifications(t, "ReviewQueueDeep")) >= 2 }, 10*time.Second, 100*time.Millisecond)
	time.Sleep(3 * time.Second)
	var states []string
	for _, n := range hook.Notifications(t, "ReviewQueueDeep") {
		states = append(states, n.Status)
	}
	assert.Equal(t, []string{"firing", "resolved"}, states, "one page, one resolve")
}
