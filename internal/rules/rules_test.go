package rules

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/decisiontrace/decisiontrace/internal/contract"
	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/storetest"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestParseValidatesWithFileGroupRuleAndField(t *testing.T) {
	_, err := Parse("r.yaml", []byte(`
groups:
  - name: claims
    interval: 0s
    rules:
      - alert: Stale
        kind: source_staleness
      - alert: bad name
        kind: override_rate
        window: 1h
        max_rate: 2
      - alert: Drift
        kind: confidence_drift
        window: 1h
        baseline: 30m
        max_drift: 0.1
      - alert: Custom
        kind: custom_sql
        annotations:
          summary: "{{ .Value "
`))
	require.Error(t, err)
	assert.Equal(t, `r.yaml: group claims: interval: required and must be positive
r.yaml: group claims: rule Stale: max_age: required unless the workflow's contract gives the budgets
r.yaml: group claims: rule bad name: alert: "bad name" is not a valid alert name
r.yaml: group claims: rule bad name: max_rate: 2 is outside (0, 1]
r.yaml: group claims: rule Drift: baseline: must be longer than window
r.yaml: group claims: rule Custom: annotations.summary: template: summary:1: unclosed action
r.yaml: group claims: rule Custom: sql: required for kind custom_sql`, err.Error())

	_, err = Parse("r.yaml", []byte("groups:\n  - name: g\n    interval: 15s\n    rules:\n      - alert: A\n        kind: source_staleness\n        max_age: 1m\n        treshold: 3\n"))
	assert.EqualError(t, err, "r.yaml: line 8: field treshold not found in type rules.Rule")
}

func TestDefaultsFromContract(t *testing.T) {
	ct, err := contract.LoadFile("../../deploy/contracts/claims-triage.yaml")
	require.NoError(t, err)
	rs, err := Defaults(ct)
	require.NoError(t, err)
	var names []string
	for _, r := range rs {
		names = append(names, r.Alert)
		assert.Equal(t, "claims-triage", r.Labels["workflow"])
		assert.Equal(t, "claims-oncall", r.Labels["team"])
		assert.Equal(t, "page", r.Labels["severity"])
	}
	assert.Equal(t, []string{"DecisionSourceStale", "DecisionQueueDepth", "DecisionQueueGrowth", "DecisionOverrideRate",
		"DecisionUnsupportedCertainty", "DecisionMissingContext", "DecisionLayerSilent"}, names)
	assert.Equal(t, 90*time.Second, rs[0].Budgets["policy-db"].D())
}

// store is a decision store on the real ClickHouse, filled through the
// decisionstore exporter the way the collector fills it.
type store struct{ *storetest.Store }

func newStore(t *testing.T) *store { return &store{storetest.New(t, "dt_rules", nil)} }

func (s *store) add(t *testing.T, ago time.Duration, attrs map[string]any) {
	t.Helper()
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(-ago)))
	require.NoError(t, lr.Attributes().FromRaw(attrs))
	s.Write(t, ld)
}

func labelsOf(samples []Sample, keys ...string) []string {
	var out []string
	for _, s := range samples {
		var parts []string
		for _, k := range keys {
			parts = append(parts, s.Labels[k])
		}
		out = append(out, fmt.Sprint(parts))
	}
	sort.Strings(out)
	return out
}

func TestIntegrationBuiltInKindsFireOnlyWhereTheConditionHolds(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	now := time.Now()
	fresh, old := now.Add(-30*time.Second).Format(time.RFC3339Nano), now.Add(-20*time.Minute).Format(time.RFC3339Nano)
	for _, wf := range []struct{ name, asOf string }{{"claims", old}, {"loans", fresh}} {
		s.add(t, time.Minute, map[string]any{c.DecisionWorkflow: wf.name, c.DecisionLayer: "data", c.DecisionEvent: "source.freshness",
			c.DataSource: "policy-db", c.DataAsOf: wf.asOf})
	}
	// Queues: claims' queue grows from 100 to 480; loans' stays at 50.
	for i, d := range []int64{100, 250, 480} {
		s.add(t, time.Duration(10-3*i)*time.Minute, map[string]any{c.DecisionWorkflow: "claims", c.DecisionLayer: "workflow",
			c.DecisionEvent: "queue.depth", c.WorkflowQueue: "manual-review", c.WorkflowQueueDepth: d})
		s.add(t, time.Duration(10-3*i)*time.Minute, map[string]any{c.DecisionWorkflow: "loans", c.DecisionLayer: "workflow",
			c.DecisionEvent: "queue.depth", c.WorkflowQueue: "underwriter-review", c.WorkflowQueueDepth: int64(50)})
	}
	// Human actions: claims' reviewers override model v2 8 times out of 10,
	// v1 once in 10; loans overrides rarely.
	for i := 0; i < 40; i++ {
		wf, version, action := "claims", "v1", c.ActionAccepted
		switch {
		case i < 10:
			version = "v2"
			if i < 8 {
				action = c.ActionOverridden
			}
		case i < 20:
			if i == 10 {
				action = c.ActionOverridden
			}
		default:
			wf = "loans"
		}
		id := fmt.Sprintf("h-%d", i)
		s.add(t, 5*time.Minute, map[string]any{c.DecisionID: id, c.DecisionWorkflow: wf, c.DecisionLayer: "model",
			c.DecisionEvent: "model.output", c.ModelVersion: version, c.ModelConfidence: 0.9})
		s.add(t, 4*time.Minute, map[string]any{c.DecisionID: id, c.DecisionWorkflow: wf, c.DecisionLayer: "human",
			c.DecisionEvent: "human.action", c.HumanAction: action})
	}
	// Verdicts: claims has 6 unsupported certainty out of 20.
	for i := 0; i < 40; i++ {
		wf := "claims"
		if i >= 20 {
			wf = "loans"
		}
		s.add(t, 3*time.Minute, map[string]any{c.DecisionID: fmt.Sprintf("v-%d", i), c.DecisionWorkflow: wf, c.DecisionLayer: "model",
			c.DecisionEvent: c.EventVerdict, c.VerdictContext: "fresh", c.VerdictUnsupportedCertainty: wf == "claims" && i < 6,
			c.VerdictConfidenceLow: false})
	}
	// Business outcomes stopped for loans 2 hours ago.
	s.add(t, 2*time.Hour, map[string]any{c.DecisionWorkflow: "loans", c.DecisionLayer: "business", c.DecisionEvent: "business.outcome", c.BusinessOutcome: "funded"})
	s.add(t, time.Minute, map[string]any{c.DecisionWorkflow: "claims", c.DecisionLayer: "business", c.DecisionEvent: "business.outcome", c.BusinessOutcome: "paid"})

	run := func(r Rule) []Sample {
		t.Helper()
		errs := r.validate()
		require.Empty(t, errs)
		got, err := r.Run(ctx, s.Conn, s.DB, time.Now())
		require.NoError(t, err)
		return got
	}
	st := run(Rule{Alert: "Stale", Kind: KindSourceStaleness, MaxAge: contract.Duration(5 * time.Minute)})
	assert.Equal(t, []string{"[claims policy-db]"}, labelsOf(st, "workflow", "source"))
	assert.InDelta(t, 20*60, st[0].Value, 90)
	assert.Equal(t, "Stale", st[0].Labels["alertname"])

	// Budgets from a contract apply per source, and only to the sources it
	// budgets (fraud-signals, 20 minutes old, has none).
	s.add(t, time.Minute, map[string]any{c.DecisionWorkflow: "claims", c.DecisionLayer: "data", c.DecisionEvent: "source.freshness",
		c.DataSource: "fraud-signals", c.DataAsOf: old})
	assert.Empty(t, run(Rule{Alert: "Stale", Kind: KindSourceStaleness, Budgets: map[string]contract.Duration{"policy-db": contract.Duration(time.Hour)}}))
	st = run(Rule{Alert: "Stale", Kind: KindSourceStaleness, Budgets: map[string]contract.Duration{"policy-db": contract.Duration(time.Minute)}})
	assert.Equal(t, []string{"[claims policy-db]"}, labelsOf(st, "workflow", "source"))

	assert.Equal(t, []string{"[claims manual-review]"}, labelsOf(run(Rule{Alert: "Deep", Kind: KindQueueDepth, MaxDepth: 400}), "workflow", "queue"))
	grow := run(Rule{Alert: "Grow", Kind: KindQueueGrowth, MaxGrowth: 300, Window: contract.Duration(15 * time.Minute)})
	require.Len(t, grow, 1)
	assert.InDelta(t, 380, grow[0].Value, 1e-9)

	over := run(Rule{Alert: "Over", Kind: KindOverrideRate, Window: contract.Duration(time.Hour), MaxRate: 0.3, MinCount: 5})
	assert.Equal(t, []string{"[claims]"}, labelsOf(over, "workflow"))
	assert.InDelta(t, 0.45, over[0].Value, 1e-9)
	byModel := run(Rule{Alert: "Over", Kind: KindOverrideRate, Window: contract.Duration(time.Hour), MaxRate: 0.3, MinCount: 5, ByModel: true, Workflow: "claims"})
	assert.Equal(t, []string{"[claims v2]"}, labelsOf(byModel, "workflow", "model_version"))
	assert.InDelta(t, 0.8, byModel[0].Value, 1e-9)
	assert.Empty(t, run(Rule{Alert: "Over", Kind: KindOverrideRate, Window: contract.Duration(time.Hour), MaxRate: 0.3, MinCount: 50}),
		"below the minimum count nothing fires")

	unsup := run(Rule{Alert: "Unsup", Kind: KindUnsupportedCertainty, Window: contract.Duration(time.Hour), MaxRate: 0.1, MinCount: 10})
	assert.Equal(t, []string{"[claims]"}, labelsOf(unsup, "workflow"))
	assert.InDelta(t, 0.3, unsup[0].Value, 1e-9)
	assert.Empty(t, run(Rule{Alert: "Missing", Kind: KindMissingContext, Window: contract.Duration(time.Hour), MaxRate: 0.1, MinCount: 10}))

	silent := run(Rule{Alert: "Silent", Kind: KindLayerSilence, SilentFor: contract.Duration(30 * time.Minute)})
	assert.Equal(t, []string{"[loans business]"}, labelsOf(silent, "workflow", "layer"))

	custom := run(Rule{Alert: "Custom", Kind: KindCustomSQL, SQL: "SELECT workflow, toFloat64(count()) AS value FROM {db}.events WHERE layer = 'business' GROUP BY workflow HAVING value >= 1"})
	assert.Equal(t, []string{"[claims]", "[loans]"}, labelsOf(custom, "workflow"))
}

// Label values come from event data; they reach ClickHouse only as bound
// parameters or result columns, so a hostile value cannot change a rule.
func TestIntegrationLabelValuesCannotChangeARulesSQL(t *testing.T) {
	s := newStore(t)
	hostile := "x' OR 1=1 --"
	s.add(t, time.Minute, map[string]any{c.DecisionWorkflow: hostile, c.DecisionLayer: "data", c.DecisionEvent: "source.freshness",
		c.DataSource: "src'); DROP TABLE events; --", c.DataAsOf: time.Now().Add(-time.Hour).Format(time.RFC3339)})
	s.add(t, time.Minute, map[string]any{c.DecisionWorkflow: "claims", c.DecisionLayer: "data", c.DecisionEvent: "source.freshness",
		c.DataSource: "policy-db", c.DataAsOf: time.Now().Add(-time.Hour).Format(time.RFC3339)})

	r := Rule{Alert: "Stale", Kind: KindSourceStaleness, MaxAge: contract.Duration(time.Minute), Workflow: hostile}
	got, err := r.Run(context.Background(), s.Conn, s.DB, time.Now())
	require.NoError(t, err)
	assert.Equal(t, []string{"[x' OR 1=1 -- src'); DROP TABLE events; --]"}, labelsOf(got, "workflow", "source"),
		"the filter matched the hostile value literally, and only it")

	// The alert's labels, which came from event data, go back into the
	// example-decisions query: as parameters too.
	s.add(t, time.Minute, map[string]any{c.DecisionID: "d-hostile", c.DecisionWorkflow: hostile, c.DecisionLayer: "data",
		c.DecisionEvent: "context.read", c.DataSource: "src'); DROP TABLE events; --"})
	s.add(t, time.Minute, map[string]any{c.DecisionID: "d-other", c.DecisionWorkflow: "claims", c.DecisionLayer: "data",
		c.DecisionEvent: "context.read", c.DataSource: "policy-db"})
	ex, err := r.Examples(context.Background(), s.Conn, s.DB, time.Now(), got[0].Labels, 5)
	require.NoError(t, err)
	assert.Equal(t, []string{"d-hostile"}, ex)

	r.Workflow = "nobody' OR '1'='1"
	got, err = r.Run(context.Background(), s.Conn, s.DB, time.Now())
	require.NoError(t, err)
	assert.Empty(t, got)

	var n uint64
	require.NoError(t, s.Conn.QueryRow(context.Background(), "SELECT count() FROM "+s.DB+".events").Scan(&n))
	assert.Equal(t, uint64(4), n, "the table is intact")
}

func TestAnnotationsRenderLabelsValueAndExamples(t *testing.T) {
	f, err := Parse("r.yaml", []byte(`
groups:
  - name: g
    interval: 15s
    rules:
      - alert: Stale
        kind: source_staleness
        max_age: 90s
        annotations:
          summary: '{{ .Labels.source }} of {{ .Labels.workflow }} is {{ printf "%.0f" .Value }}s old'
          examples: '{{ range $i, $id := .ExampleDecisions }}{{ if $i }}, {{ end }}{{ $id }}{{ end }}'
          dashboard: '{{ .DashboardURL }}'
          broken: '{{ index .ExampleDecisions 9 }}'
`))
	require.NoError(t, err)
	got := f.Groups[0].Rules[0].Annotate(TemplateData{
		Labels: map[string]string{"source": "policy-db", "workflow": "claims-triage"}, Value: 412.4,
		ExampleDecisions: []string{"d-1", "d-2"}, DashboardURL: "http://grafana/d/x?var-workflow=claims-triage",
	})
	assert.Equal(t, "policy-db of claims-triage is 412s old", got["summary"])
	assert.Equal(t, "d-1, d-2", got["examples"])
	assert.Equal(t, "http://grafana/d/x?var-workflow=claims-triage", got["dashboard"])
	assert.Contains(t, got["broken"], "<annotation broken failed:")
}
