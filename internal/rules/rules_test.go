package rules

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/decisiontrace/decisiontrace/internal/alerting"
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
      - alert: Unresolved
        kind: unresolved_entity_rate
        max_rate: 0
      - alert: Ratio
        kind: ratio
        count: rows
        window: 1h
        max_rate: 0.1
        denominator: {decision.event: human.action, model.confidence: high, no.such: x}
        numerator: {data.complete: "false"}
        by: [decision.workflow, tenant]
      - alert: Verdicts
        kind: ratio
        count: verdicts
        window: 1h
        max_rate: 0.1
        numerator: {verdict.context: [stale, missing], decision.event: model.output}
        by: [model.version, data.source]
`))
	require.Error(t, err)
	assert.Equal(t, `r.yaml: group claims: interval: required and must be positive
r.yaml: group claims: rule Stale: max_age: required unless the workflow's contract gives the budgets
r.yaml: group claims: rule bad name: alert: "bad name" is not a valid alert name
r.yaml: group claims: rule bad name: max_rate: 2 is outside (0, 1]
r.yaml: group claims: rule Drift: baseline: must be longer than window
r.yaml: group claims: rule Custom: annotations.summary: template: summary:1: unclosed action
r.yaml: group claims: rule Custom: sql: required for kind custom_sql
r.yaml: group claims: rule Unresolved: window: required and must be positive for kind unresolved_entity_rate
r.yaml: group claims: rule Unresolved: max_rate: 0 is outside (0, 1]
r.yaml: group claims: rule Ratio: count: "rows" is not decisions, events or verdicts
r.yaml: group claims: rule Ratio: denominator.model.confidence: high: want a number
r.yaml: group claims: rule Ratio: denominator.no.such: not a stored convention (decision.event, human.action, business.outcome, data.complete, ...)
r.yaml: group claims: rule Ratio: numerator.data.complete: false: want true or false
r.yaml: group claims: rule Ratio: by[0]: "decision.workflow" cannot split a ratio (the workflow always does; a decision is what is counted)
r.yaml: group claims: rule Ratio: by[1]: "tenant" is not a stored convention (decision.event, human.action, business.outcome, data.complete, ...)
r.yaml: group claims: rule Verdicts: numerator.decision.event: not a verdict field (verdict.context, verdict.behaviour, verdict.unsupported_certainty, verdict.confidence_low, model.name, model.version)
r.yaml: group claims: rule Verdicts: by[1]: "data.source" is not a verdict field (verdict.context, verdict.behaviour, verdict.unsupported_certainty, verdict.confidence_low, model.name, model.version)`, err.Error())

	_, err = Parse("r.yaml", []byte("groups:\n  - name: g\n    interval: 15s\n    rules:\n      - alert: A\n        kind: source_staleness\n        max_age: 1m\n        treshold: 3\n"))
	assert.EqualError(t, err, "r.yaml: line 8: field treshold not found in type rules.Rule")
}

func TestDefaultsFromContract(t *testing.T) {
	ct, err := contract.LoadFile("../../deploy/contracts/claims-triage.yaml")
	require.NoError(t, err)
	rs, err := Defaults(ct)
	require.NoError(t, err)
	var names []string
	byName := map[string]Rule{}
	for _, r := range rs {
		names = append(names, r.Alert)
		byName[r.Alert] = r
		assert.Equal(t, "claims-triage", r.Labels["workflow"])
		assert.Equal(t, "claims-oncall", r.Labels["team"])
		want := "page"
		if r.Kind == KindWorkflowSilence || r.Alert == "DecisionSLOBurnSlow" {
			want = "ticket" // the contract's traffic.severity; a slow burn
		}
		assert.Equal(t, want, r.Labels["severity"], r.Alert)
	}
	// Workflow silence first: the evaluator holds back the workflow's
	// staleness and silence alerts from the round it fires in.
	assert.Equal(t, []string{"DecisionWorkflowSilent", "DecisionSourceStale", "DecisionQueueDepth", "DecisionQueueGrowth", "DecisionOverrideRate",
		"DecisionUnsupportedCertainty", "DecisionMissingContext", "DecisionLayerSilent",
		// The sections that answer the rest of the nine questions.
		"DecisionIncompleteContext", "DecisionSourceUnavailable", "DecisionUnsafeOutputs", "DecisionModelLatency", "DecisionInputTokens",
		"DecisionOutputTokens", "DecisionIdentityUnresolved", "DecisionTimeToAction", "DecisionRecommendationsIgnored", "DecisionRecommendationsEscalated", "DecisionBadOutcomes",
		"DecisionCycleTime", "DecisionOutcomeCost", "DecisionLatency", "DecisionRework", "DecisionExceptions", "DecisionSLOBurnFast", "DecisionSLOBurnSlow", "DecisionSLOBurnFast", "DecisionSLOBurnSlow"}, names)
	assert.Equal(t, 90*time.Second, byName["DecisionSourceStale"].Budgets["policy-db"].D())
	assert.Equal(t, 30*time.Minute, byName["DecisionWorkflowSilent"].SilentFor.D())
	assert.Equal(t, map[string]contract.Duration{"data": contract.Duration(15 * time.Minute), "workflow": contract.Duration(15 * time.Minute),
		"human": contract.Duration(15 * time.Minute), "business": contract.Duration(2 * time.Hour)}, byName["DecisionLayerSilent"].Lags)
	// A gap in decisions longer than the contract's max_silence is a
	// pause, after which layers' silence counts from the resume (so is
	// one longer than a layer's lag).
	assert.Equal(t, map[string]contract.Duration{"claims-triage": contract.Duration(30 * time.Minute)}, byName["DecisionLayerSilent"].pauses)

	// A batch workflow turns traffic off: no workflow-silence rule.
	batch, err := contract.Parse("batch.yaml", []byte("workflow: nightly-scoring\ntraffic: off\n"))
	require.NoError(t, err)
	rs, err = Defaults(batch)
	require.NoError(t, err)
	for _, r := range rs {
		assert.NotEqual(t, KindWorkflowSilence, r.Kind)
		if r.Kind == KindLayerSilence {
			assert.Empty(t, r.pauses, "traffic off: a gap is a pause when it is longer than a layer's lag")
		}
	}
}

// t0 is the evaluation time of the store tests, far from today: rules are
// evaluated at the time they are given, never the wall clock's.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// store is a decision store on the real ClickHouse, written the way the
// collector writes it.
type store struct {
	*storetest.Store
	evs []storetest.Event
}

func newStore(t *testing.T) *store { return &store{Store: storetest.New(t, "dt_rules")} }

// add stores one event at t0 - ago, and keeps it for a resend.
func (s *store) add(t *testing.T, ago time.Duration, attrs map[string]any) {
	t.Helper()
	e := storetest.Event{At: t0.Add(-ago), Attrs: attrs}
	s.evs = append(s.evs, e)
	s.WriteEvents(t, e)
}

func labelsOf(samples []alerting.Sample, keys ...string) []string {
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

func (s *store) run(t *testing.T, r Rule) []alerting.Sample {
	t.Helper()
	return s.runAt(t, r, t0)
}

// runAt evaluates the rule at an instant.
func (s *store) runAt(t *testing.T, r Rule, at time.Time) []alerting.Sample {
	t.Helper()
	// These tests are about what the queries find; which workflows a
	// rule alerts for is TestRulesAlertOnlyForKnownWorkflows'.
	if r.Workflow == "" && len(r.Workflows) == 0 {
		r.AnyWorkflow = true
	}
	require.Empty(t, r.validate())
	got, err := r.Run(context.Background(), s.Conn, s.DB, at)
	require.NoError(t, err)
	return got
}

// valuesBy keys each sample's value by its values of the labels keys,
// space-separated.
func valuesBy(samples []alerting.Sample, keys ...string) map[string]float64 {
	out := map[string]float64{}
	for _, smp := range samples {
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = smp.Labels[k]
		}
		out[strings.Join(parts, " ")] = smp.Value
	}
	return out
}

// verdictContracts: one required source, judged against 90 s; the
// confidence floor is 0.7.
const verdictContracts = `
workflow: v-claims
owner: claims-platform
sources:
  required:
    - {name: ledger, max_age: 90s}
confidence_floor: 0.7
---
workflow: v-loans
owner: lending-platform
sources:
  required:
    - {name: ledger, max_age: 90s}
confidence_floor: 0.7
---
workflow: v-late
owner: late-platform
sources:
  required:
    - {name: ledger, max_age: 90s}
confidence_floor: 0.7
`

// decisionEvents is one decision's events: a model output at t0 - ago, and
// a read of ledger a second before it when read is not "none" ("fresh":
// as_of 30 s before; "stale": 20 minutes before; "unavailable": the source
// could not be read).
func decisionEvents(id, wf string, ago time.Duration, conf float64, read string) []storetest.Event {
	at := t0.Add(-ago)
	out := []storetest.Event{{At: at, Attrs: map[string]any{c.DecisionID: id, c.DecisionWorkflow: wf, c.DecisionLayer: c.LayerModel,
		c.DecisionEvent: c.EventModelOutput, c.ModelVersion: "v1", c.ModelConfidence: conf}}}
	if read == "none" {
		return out
	}
	attrs := map[string]any{c.DecisionID: id, c.DecisionWorkflow: wf, c.DecisionLayer: c.LayerData, c.DecisionEvent: c.EventContextRead,
		c.DataSource: "ledger", c.DataAvailable: read != "unavailable"}
	switch read {
	case "fresh":
		attrs[c.DataAsOf] = at.Add(-31 * time.Second).Format(time.RFC3339Nano)
	case "stale":
		attrs[c.DataAsOf] = at.Add(-20 * time.Minute).Format(time.RFC3339Nano)
	}
	return append(out, storetest.Event{At: at.Add(-time.Second), Attrs: attrs})
}

// verdictScenario stores the decisions of the verdict kinds' tests, each
// workflow in one request:
//
//	v-claims: 20 judged decisions: 6 confident on stale context (unsupported
//	          certainty), 2 low-confidence on stale context, 2
//	          low-confidence whose source was unavailable (missing), 10
//	          fine; then 10 low-confidence decisions whose reads have not
//	          arrived (pending). 20 earlier decisions, half an hour to an
//	          hour and a half before, at 0.4.
//	v-loans:  20 fine decisions.
//	v-late:   10 decisions, all pending.
func verdictScenario(t *testing.T, s *store) []storetest.Event {
	t.Helper()
	s.ContractsYAML(t, t0, strings.Split(verdictContracts, "---")...)
	var all []storetest.Event
	var claims []storetest.Event
	for i := 0; i < 30; i++ {
		conf, read := 0.9, "fresh"
		switch {
		case i < 6:
			read = "stale"
		case i < 8:
			conf, read = 0.5, "stale"
		case i < 10:
			conf, read = 0.5, "unavailable"
		case i >= 20:
			conf, read = 0.5, "none"
		}
		claims = append(claims, decisionEvents(fmt.Sprintf("c-%02d", i), "v-claims", 10*time.Minute-time.Duration(i)*10*time.Second, conf, read)...)
	}
	// A baseline of confidence for drift: 20 decisions 30 to 87 minutes
	// ago, at 0.4, outside every verdict window of these tests.
	for i := 0; i < 20; i++ {
		claims = append(claims, decisionEvents(fmt.Sprintf("cb-%02d", i), "v-claims", 30*time.Minute+time.Duration(i)*3*time.Minute, 0.4, "fresh")...)
	}
	var loans, late []storetest.Event
	for i := 0; i < 20; i++ {
		loans = append(loans, decisionEvents(fmt.Sprintf("l-%02d", i), "v-loans", 10*time.Minute-time.Duration(i)*10*time.Second, 0.9, "fresh")...)
	}
	// v-late's last read of ledger is 20 minutes old (outside the
	// window); its decisions since are waiting for theirs.
	late = append(late, decisionEvents("x-read", "v-late", 20*time.Minute, 0.9, "fresh")...)
	for i := 0; i < 10; i++ {
		late = append(late, decisionEvents(fmt.Sprintf("x-%02d", i), "v-late", 3*time.Minute-time.Duration(i)*10*time.Second, 0.9, "none")...)
	}
	for _, evs := range [][]storetest.Event{claims, loans, late} {
		s.WriteEvents(t, evs...)
		all = append(all, evs...)
	}
	s.Refresh(t)
	return all
}

func TestIntegrationVerdictKindsCountJudgedDecisionsByDecisionTime(t *testing.T) {
	s := newStore(t)
	verdictScenario(t, s)
	ctx := context.Background()
	window := contract.Duration(15 * time.Minute)

	unsup := s.run(t, Rule{Alert: "Unsup", Kind: KindUnsupportedCertainty, Window: window, MaxRate: 0.1, MinCount: 10})
	assert.Equal(t, []string{"[v-claims]"}, labelsOf(unsup, "workflow"))
	assert.InDelta(t, 6.0/20, unsup[0].Value, 1e-9)
	missing := s.run(t, Rule{Alert: "Missing", Kind: KindMissingContext, Window: window, MaxRate: 0.05, MinCount: 10})
	assert.Equal(t, []string{"[v-claims]"}, labelsOf(missing, "workflow"))
	assert.InDelta(t, 2.0/20, missing[0].Value, 1e-9)
	// Pending decisions are in neither side of the share: counted, the
	// share would be 14/30.
	low := s.run(t, Rule{Alert: "Low", Kind: KindLowConfidence, Window: window, MaxRate: 0.1, MinCount: 10})
	assert.Equal(t, []string{"[v-claims]"}, labelsOf(low, "workflow"))
	assert.InDelta(t, 4.0/20, low[0].Value, 1e-9)
	assert.Empty(t, s.run(t, Rule{Alert: "Low", Kind: KindLowConfidence, Window: window, MaxRate: 0.1, MinCount: 21}),
		"20 judged decisions are under a minimum of 21: pending ones do not count")
	assert.Empty(t, s.run(t, Rule{Alert: "Low", Kind: KindLowConfidence, Window: window, MaxRate: 0.3, MinCount: 10}))

	// The window is over decision time: 8 minutes hold claims' judged
	// decisions c-12 to c-19 (all fine) and its pending ones.
	assert.Empty(t, s.run(t, Rule{Alert: "Unsup", Kind: KindUnsupportedCertainty, Window: contract.Duration(8 * time.Minute), MaxRate: 0.01, MinCount: 1}))
	// An hour later the decisions are out of the window: no data, not zero.
	r := Rule{Alert: "Unsup", Kind: KindUnsupportedCertainty, Window: window, MaxRate: 0.1, MinCount: 10, Workflow: "v-claims"}
	_, has, err := r.Eval(ctx, s.Conn, s.DB, t0.Add(time.Hour))
	require.NoError(t, err)
	assert.False(t, has)

	// A workflow whose decisions are all pending has no data: its rate is
	// unknown until its context arrives (or the contract's lag passes).
	r = Rule{Alert: "Missing", Kind: KindMissingContext, Window: window, MaxRate: 0.05, MinCount: 1, Workflow: "v-late"}
	samples, has, err := r.Eval(ctx, s.Conn, s.DB, t0)
	require.NoError(t, err)
	assert.Empty(t, samples)
	assert.False(t, has, "only pending decisions: no data")
	r.Workflow = "v-loans"
	samples, has, err = r.Eval(ctx, s.Conn, s.DB, t0)
	require.NoError(t, err)
	assert.Empty(t, samples)
	assert.True(t, has, "judged decisions, none missing: data, and a healthy rate")

	// Example decisions: the latest of the window whose verdict shows it.
	for _, tt := range []struct {
		kind Kind
		want []string
	}{
		{KindUnsupportedCertainty, []string{"c-05", "c-04", "c-03"}},
		{KindMissingContext, []string{"c-09", "c-08"}},
		{KindLowConfidence, []string{"c-09", "c-08", "c-07"}},
	} {
		r := Rule{Alert: "X", Kind: tt.kind, Window: window, MaxRate: 0.1}
		ex, err := r.Examples(ctx, s.Conn, s.DB, t0, map[string]string{"workflow": "v-claims"}, 3)
		require.NoError(t, err)
		assert.Equal(t, tt.want, ex, "examples of %s", tt.kind)
	}
}

// A ratio over verdicts counts judged decisions by decision time, pending
// ones in neither side, and is what a contract's fresh_context SLO burns.
func TestIntegrationRatioOverVerdicts(t *testing.T) {
	s := newStore(t)
	verdictScenario(t, s)
	ctx := context.Background()
	notFresh := Rule{Alert: "NotFresh", Kind: KindRatio, Count: "verdicts", Window: contract.Duration(15 * time.Minute), MaxRate: 0.1, MinCount: 10,
		Numerator: map[string]any{"verdict.context": []any{c.ContextStale, c.ContextMissing}}, By: []string{c.ModelVersion}}
	got := s.run(t, notFresh)
	// v-claims: 8 stale and 2 missing of 20 judged; its 10 pending
	// decisions would make it 10 of 30. v-loans: all fresh.
	assert.Equal(t, []string{"[v-claims v1]"}, labelsOf(got, "workflow", "model_version"))
	assert.InDelta(t, 10.0/20, got[0].Value, 1e-9)
	ex, err := notFresh.Examples(ctx, s.Conn, s.DB, t0, map[string]string{"workflow": "v-claims", "model_version": "v1"}, 3)
	require.NoError(t, err)
	assert.Equal(t, []string{"c-09", "c-08", "c-07"}, ex)

	// A denominator filters the verdicts counted: only the confident
	// decisions, of which 6 of 16 were on stale context.
	confident := notFresh
	confident.Denominator = map[string]any{"verdict.confidence_low": false}
	got = s.run(t, confident)
	require.Len(t, got, 1)
	assert.InDelta(t, 6.0/16, got[0].Value, 1e-9)

	// Only pending decisions: no data, not a healthy zero.
	late := notFresh
	late.Workflow = "v-late"
	_, has, err := late.Eval(ctx, s.Conn, s.DB, t0)
	require.NoError(t, err)
	assert.False(t, has)

	// The contract's fresh_context SLO: 99% of decisions on fresh
	// context. Five minutes after the last judged decisions, both pairs
	// of windows burn for v-claims (10 of 20 in the short windows), none
	// for v-loans.
	ct, err := contract.Parse("v.yaml", []byte(`workflow: v-claims
owner: claims-platform
sources:
  required:
    - {name: ledger, max_age: 90s}
slos:
  - {name: fresh-claims, sli: fresh_context, objective: 0.99}
`))
	require.NoError(t, err)
	rs, err := Defaults(ct)
	require.NoError(t, err)
	fired := map[string]float64{}
	for _, r := range rs {
		if r.Kind != KindSLOBurnRate {
			continue
		}
		assert.Equal(t, "fresh_context", r.Labels["sli"], "an inhibition can tell a stale source's SLO burn by its sli")
		require.Empty(t, r.validate())
		samples, err := r.Run(ctx, s.Conn, s.DB, t0.Add(-5*time.Minute))
		require.NoError(t, err)
		for _, smp := range samples {
			fired[r.Alert+"/"+smp.Labels["severity"]] = smp.Value
		}
		r.Workflow = "v-loans"
		samples, err = r.Run(ctx, s.Conn, s.DB, t0.Add(-5*time.Minute))
		require.NoError(t, err)
		assert.Empty(t, samples, "v-loans' context is fresh")
	}
	// Long windows: 1 h holds c-00..c-19 and the 12 fresh baseline
	// decisions of the last hour (10 of 32 bad); 6 h holds all 40 judged
	// (10 of 40), against a 1% budget.
	assert.InDeltaMapValues(t, map[string]float64{"DecisionSLOBurnFast/page": 1000.0 / 32, "DecisionSLOBurnSlow/ticket": 25}, fired, 1e-9)
}

// kindScenario stores events for every built-in kind (the verdict
// scenario's among them), in a few requests, and returns them all.
func kindScenario(t *testing.T, s *store) []storetest.Event {
	t.Helper()
	var evs []storetest.Event
	add := func(ago time.Duration, attrs map[string]any) {
		evs = append(evs, storetest.Event{At: t0.Add(-ago), Attrs: attrs})
	}
	fresh, old := t0.Add(-30*time.Second).Format(time.RFC3339Nano), t0.Add(-20*time.Minute).Format(time.RFC3339Nano)
	for _, wf := range []struct{ name, asOf string }{{"claims", old}, {"loans", fresh}} {
		add(time.Minute, map[string]any{c.DecisionWorkflow: wf.name, c.DecisionLayer: "data", c.DecisionEvent: "source.freshness",
			c.DataSource: "policy-db", c.DataAsOf: wf.asOf})
	}
	// fraud-signals is 20 minutes old too; no contract budgets it.
	add(time.Minute, map[string]any{c.DecisionWorkflow: "claims", c.DecisionLayer: "data", c.DecisionEvent: "source.freshness",
		c.DataSource: "fraud-signals", c.DataAsOf: old})
	// Queues: claims' queue grows from 100 to 480; loans' stays at 50.
	for i, d := range []int64{100, 250, 480} {
		add(time.Duration(10-3*i)*time.Minute, map[string]any{c.DecisionWorkflow: "claims", c.DecisionLayer: "workflow",
			c.DecisionEvent: "queue.depth", c.WorkflowQueue: "manual-review", c.WorkflowQueueDepth: d})
		add(time.Duration(10-3*i)*time.Minute, map[string]any{c.DecisionWorkflow: "loans", c.DecisionLayer: "workflow",
			c.DecisionEvent: "queue.depth", c.WorkflowQueue: "underwriter-review", c.WorkflowQueueDepth: int64(50)})
	}
	// Human actions: claims' reviewers override model v2 8 times out of 10,
	// v1 once in 10; loans never. A decision's latest action counts: h-12
	// was overridden, then accepted; h-13 accepted twice, then overridden.
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
		add(5*time.Minute, map[string]any{c.DecisionID: id, c.DecisionWorkflow: wf, c.DecisionLayer: "model",
			c.DecisionEvent: "model.output", c.ModelVersion: version, c.ModelConfidence: 0.9})
		add(4*time.Minute, map[string]any{c.DecisionID: id, c.DecisionWorkflow: wf, c.DecisionLayer: "human",
			c.DecisionEvent: "human.action", c.HumanAction: action})
	}
	add(4*time.Minute+time.Second, map[string]any{c.DecisionID: "h-12", c.DecisionWorkflow: "claims", c.DecisionLayer: "human",
		c.DecisionEvent: "human.action", c.HumanAction: c.ActionOverridden})
	add(4*time.Minute-time.Second, map[string]any{c.DecisionID: "h-13", c.DecisionWorkflow: "claims", c.DecisionLayer: "human",
		c.DecisionEvent: "human.action", c.HumanAction: c.ActionAccepted})
	// The confidence baseline (30 to 90 minutes ago): claims' outputs were
	// 0.6 on average (half 0.5, half 0.7), loans' 0.9.
	for i := 0; i < 40; i++ {
		wf, conf := "claims", 0.5
		switch {
		case i >= 20:
			wf, conf = "loans", 0.9
		case i >= 10:
			conf = 0.7
		}
		add(30*time.Minute+time.Duration(i%20)*3*time.Minute, map[string]any{c.DecisionID: fmt.Sprintf("b-%d", i), c.DecisionWorkflow: wf,
			c.DecisionLayer: "model", c.DecisionEvent: "model.output", c.ModelVersion: "v1", c.ModelConfidence: conf})
	}
	// Identity: claims' reads of crm identifiers resolve 12 times in 20
	// (u-0..7 do not), of policy-admin identifiers always; loans' reads
	// of bureau identifiers fail once in 10. A read without a judgement
	// (no alias map) counts nowhere.
	for i := 0; i < 40; i++ {
		wf, system, resolved := "claims", "crm", i >= 8
		switch {
		case i >= 30:
			wf, system, resolved = "loans", "bureau", i != 30
		case i >= 20:
			system = "policy-admin"
		}
		add(2*time.Minute, map[string]any{c.DecisionID: fmt.Sprintf("u-%d", i), c.DecisionWorkflow: wf, c.DecisionLayer: "data",
			c.DecisionEvent: "context.read", c.DataEntitySystem: system, c.DataEntityID: fmt.Sprintf("E-%d", i), c.DataEntityResolved: resolved})
	}
	add(2*time.Minute, map[string]any{c.DecisionID: "u-unjudged", c.DecisionWorkflow: "claims", c.DecisionLayer: "data",
		c.DecisionEvent: "context.read", c.DataEntitySystem: "crm", c.DataEntityID: "E-x"})
	// Evaluations: claims' groundedness scores 6 decisions in 20 under 0.5
	// (e-1..e-6); e-0 scored 0.2, then 0.9 when evaluated again (its
	// latest counts); claims' relevance and loans' groundedness pass. The
	// evaluator names no workflow: the scored outputs (6 minutes ago,
	// without a confidence) do.
	for i := 0; i < 30; i++ {
		wf, score := "claims", 0.8
		if i >= 20 {
			wf = "loans"
		}
		add(6*time.Minute, map[string]any{c.DecisionID: fmt.Sprintf("e-%d", i), c.DecisionWorkflow: wf, c.DecisionLayer: "model",
			c.DecisionEvent: "model.output", c.ModelVersion: "v1"})
		switch {
		case i >= 20:
			wf, score = "loans", 0.9
		case i >= 1 && i <= 6:
			score = 0.3
		case i == 0:
			add(3*time.Minute, map[string]any{c.DecisionID: "e-0", c.GenAIEvaluationName: "groundedness", c.GenAIEvaluationScoreValue: 0.2})
			score = 0.9
		}
		add(2*time.Minute, map[string]any{c.DecisionID: fmt.Sprintf("e-%d", i),
			c.GenAIEvaluationName: "groundedness", c.GenAIEvaluationScoreValue: score, c.GenAIEvaluationScoreLabel: "scored"})
		if wf == "claims" {
			add(2*time.Minute, map[string]any{c.DecisionID: fmt.Sprintf("e-%d", i), c.GenAIEvaluationName: "relevance", c.GenAIEvaluationScoreValue: 0.95})
		}
	}
	// Business outcomes stopped for loans 2 hours ago.
	add(2*time.Hour, map[string]any{c.DecisionWorkflow: "loans", c.DecisionLayer: "business", c.DecisionEvent: "business.outcome", c.BusinessOutcome: "funded"})
	add(time.Minute, map[string]any{c.DecisionWorkflow: "claims", c.DecisionLayer: "business", c.DecisionEvent: "business.outcome", c.BusinessOutcome: "paid"})
	// h-13's second action is overridden, in a request of its own.
	s.WriteEvents(t, evs...)
	last := storetest.Event{At: t0.Add(-4*time.Minute + 2*time.Second), Attrs: map[string]any{c.DecisionID: "h-13", c.DecisionWorkflow: "claims",
		c.DecisionLayer: "human", c.DecisionEvent: "human.action", c.HumanAction: c.ActionOverridden}}
	s.WriteEvents(t, last)
	return append(append(evs, last), verdictScenario(t, s)...)
}

// kindRules are rules of every kind, with thresholds near the scenario's
// numbers: counting rows instead of decisions or events would change what
// they return when events are stored twice.
func kindRules() []Rule {
	hour, window, baseline := contract.Duration(time.Hour), contract.Duration(15*time.Minute), contract.Duration(2*time.Hour)
	return []Rule{
		{Alert: "Stale", Kind: KindSourceStaleness, MaxAge: contract.Duration(5 * time.Minute), Workflow: "claims"},
		{Alert: "StaleBudget", Kind: KindSourceStaleness, Budgets: map[string]contract.Duration{"policy-db": contract.Duration(time.Minute)}},
		{Alert: "Deep", Kind: KindQueueDepth, MaxDepth: 400},
		{Alert: "Grow", Kind: KindQueueGrowth, MaxGrowth: 300, Window: window},
		{Alert: "Over", Kind: KindOverrideRate, Window: hour, MaxRate: 0.3, MinCount: 5},
		{Alert: "OverAll", Kind: KindOverrideRate, Window: hour, MaxRate: 0.3, MinCount: 20},
		{Alert: "OverMany", Kind: KindOverrideRate, Window: hour, MaxRate: 0.3, MinCount: 21},
		{Alert: "OverModel", Kind: KindOverrideRate, Window: hour, MaxRate: 0.3, MinCount: 5, ByModel: true, Workflow: "claims"},
		{Alert: "OverModelMany", Kind: KindOverrideRate, Window: hour, MaxRate: 0.3, MinCount: 11, ByModel: true, Workflow: "claims"},
		{Alert: "Unsup", Kind: KindUnsupportedCertainty, Window: window, MaxRate: 0.1, MinCount: 10},
		{Alert: "UnsupMany", Kind: KindUnsupportedCertainty, Window: window, MaxRate: 0.1, MinCount: 21},
		{Alert: "Missing", Kind: KindMissingContext, Window: window, MaxRate: 0.05, MinCount: 10},
		{Alert: "Low", Kind: KindLowConfidence, Window: window, MaxRate: 0.1, MinCount: 10},
		{Alert: "Drift", Kind: KindConfidenceDrift, Window: window, Baseline: baseline, MaxDrift: 0.2, MinCount: 20},
		{Alert: "DriftMany", Kind: KindConfidenceDrift, Window: window, Baseline: baseline, MaxDrift: 0.2, MinCount: 21},
		{Alert: "Silent", Kind: KindLayerSilence, SilentFor: contract.Duration(30 * time.Minute)},
		{Alert: "Unresolved", Kind: KindUnresolvedEntity, Window: window, MaxRate: 0.2, MinCount: 10},
		{Alert: "UnresolvedMany", Kind: KindUnresolvedEntity, Window: window, MaxRate: 0.2, MinCount: 21},
		{Alert: "EvalLow", Kind: KindEvaluationScore, Window: window, MinScore: 0.5, MaxRate: 0.2, MinCount: 10},
		// The same, of one workflow: labelled as the others.
		{Alert: "EvalLowClaims", Kind: KindEvaluationScore, Window: window, MinScore: 0.5, MaxRate: 0.2, MinCount: 10, Workflow: "claims"},
		// The generic ratio, as override_rate and unresolved_entity_rate
		// count: it must find the same.
		{Alert: "RatioOverridden", Kind: KindRatio, Count: "decisions", Window: hour, MaxRate: 0.3, MinCount: 5,
			Denominator: map[string]any{"decision.event": "human.action"}, Numerator: map[string]any{"human.action": "overridden"}},
		// By model version, from the decisions' outputs: actions carry none.
		{Alert: "RatioOverriddenByModel", Kind: KindRatio, Count: "decisions", Window: hour, MaxRate: 0.3, MinCount: 5, Workflow: "claims",
			By: []string{"model.version"}, Denominator: map[string]any{"decision.event": "human.action"}, Numerator: map[string]any{"human.action": "overridden"}},
		{Alert: "RatioUnresolved", Kind: KindRatio, Count: "events", Window: window, MaxRate: 0.2, MinCount: 10, By: []string{"data.entity.system"},
			Denominator: map[string]any{"decision.event": "context.read", "data.entity.resolved": []any{true, false}},
			Numerator:   map[string]any{"data.entity.resolved": false}},
		// Shares of the units the three above count (one query each with
		// its twin): other numerators, thresholds and minimums.
		{Alert: "RatioAccepted", Kind: KindRatio, Count: "decisions", Window: hour, MaxRate: 0.6, MinCount: 5,
			Denominator: map[string]any{"decision.event": "human.action"}, Numerator: map[string]any{"human.action": "accepted"}},
		{Alert: "RatioAcceptedByModel", Kind: KindRatio, Count: "decisions", Window: hour, MaxRate: 0.15, MinCount: 10, Workflow: "claims",
			By: []string{"model.version"}, Denominator: map[string]any{"decision.event": "human.action"}, Numerator: map[string]any{"human.action": "accepted"}},
		// Shares of the same window's decisions that count other signals
		// (one query with the two above): of the decisions with an output
		// or an action, those whose latest is the action; of those with an
		// output, the share of model v2 (outputs alone: no lookup).
		{Alert: "RatioActedByModel", Kind: KindRatio, Count: "decisions", Window: hour, MaxRate: 0.5, MinCount: 5, Workflow: "claims",
			By: []string{"model.version"}, Denominator: map[string]any{"decision.event": []any{"model.output", "human.action"}},
			Numerator: map[string]any{"decision.event": "human.action"}},
		{Alert: "RatioV2ByModel", Kind: KindRatio, Count: "decisions", Window: hour, MaxRate: 0.5, MinCount: 5, Workflow: "claims",
			By: []string{"model.version"}, Denominator: map[string]any{"decision.event": "model.output"},
			Numerator: map[string]any{"model.version": "v2"}},
		{Alert: "RatioResolved", Kind: KindRatio, Count: "events", Window: window, MaxRate: 0.9, MinCount: 10, By: []string{"data.entity.system"},
			Denominator: map[string]any{"decision.event": "context.read", "data.entity.resolved": []any{true, false}},
			Numerator:   map[string]any{"data.entity.resolved": true}},
		// 90% of reviewed decisions accepted, burning at twice the pace.
		{Alert: "SLOAccepted", Kind: KindSLOBurnRate, Objective: 0.9, BurnRate: 2, Count: "decisions", MinCount: 5,
			LongWindow: hour, ShortWindow: window, Denominator: map[string]any{"decision.event": "human.action"},
			Numerator: map[string]any{"human.action": []any{"overridden", "ignored"}}},
		{Alert: "EvalLowGrounded", Kind: KindEvaluationScore, Evaluation: "groundedness", Window: window, MinScore: 0.5, MaxRate: 0.2, MinCount: 21},
		// Output to first action: a minute each, h-12 59 s; its low
		// tail moves if a decision counted twice.
		{Alert: "SlowAction", Kind: KindInterval, Window: hour, Quantile: 0.05, Max: 30, MinCount: 5, Workflow: "claims", By: []string{"model.version"},
			From: map[string]any{"decision.event": "model.output"}, To: map[string]any{"decision.event": "human.action"}},
	}
}

func TestIntegrationBuiltInKindsFireOnlyWhereTheConditionHolds(t *testing.T) {
	s := newStore(t)
	kindScenario(t, s)
	got := map[string][]alerting.Sample{}
	for _, r := range kindRules() {
		got[r.Alert] = s.run(t, r)
	}

	st := got["Stale"]
	assert.Equal(t, []string{"[claims fraud-signals]", "[claims policy-db]"}, labelsOf(st, "workflow", "source"))
	// As old as its latest poll, a minute ago, found it: 19 minutes.
	assert.InDelta(t, 19*60, st[0].Value, 1e-9)
	assert.Equal(t, "Stale", st[0].Labels["alertname"])
	// Budgets from a contract apply per source, and only to the sources it
	// budgets (fraud-signals, 20 minutes old, has none).
	assert.Equal(t, []string{"[claims policy-db]"}, labelsOf(got["StaleBudget"], "workflow", "source"))
	assert.Empty(t, s.run(t, Rule{Alert: "Stale", Kind: KindSourceStaleness, Budgets: map[string]contract.Duration{"policy-db": contract.Duration(time.Hour)}}))

	assert.Equal(t, []string{"[claims manual-review]"}, labelsOf(got["Deep"], "workflow", "queue"))
	require.Len(t, got["Grow"], 1)
	assert.InDelta(t, 380, got["Grow"][0].Value, 1e-9)

	// claims: 20 decisions acted on, 10 of them last overridden (8 of v2,
	// h-10 and h-13 of v1).
	assert.Equal(t, []string{"[claims]"}, labelsOf(got["Over"], "workflow"))
	assert.InDelta(t, 0.5, got["Over"][0].Value, 1e-9)
	assert.Equal(t, labelsOf(got["Over"], "workflow"), labelsOf(got["OverAll"], "workflow"))
	assert.Empty(t, got["OverMany"], "20 decisions acted on (23 actions) are under a minimum of 21")
	assert.Equal(t, []string{"[claims v2]"}, labelsOf(got["OverModel"], "workflow", "model_version"))
	assert.InDelta(t, 0.8, got["OverModel"][0].Value, 1e-9)
	assert.Empty(t, got["OverModelMany"], "10 decisions of v2")

	assert.Equal(t, []string{"[v-claims]"}, labelsOf(got["Unsup"], "workflow"))
	assert.InDelta(t, 0.3, got["Unsup"][0].Value, 1e-9)
	assert.Empty(t, got["UnsupMany"])
	assert.Equal(t, []string{"[v-claims]"}, labelsOf(got["Missing"], "workflow"))
	assert.Equal(t, []string{"[v-claims]"}, labelsOf(got["Low"], "workflow"))

	// claims: 20 outputs at 0.9 in the window against 20 at 0.6 before;
	// v-claims (which has a contract: one verdict per decision) 16
	// decisions at 0.9 and 14 at 0.5 against 20 at 0.4.
	drift := map[string]float64{}
	for _, smp := range got["Drift"] {
		drift[smp.Labels["workflow"]] = smp.Value
	}
	assert.Len(t, drift, 2)
	assert.InDelta(t, 0.3, drift["claims"], 1e-9)
	assert.InDelta(t, (16*0.9+14*0.5)/30-0.4, drift["v-claims"], 1e-9)
	assert.Empty(t, got["DriftMany"], "20 outputs (or decisions) before the window are under a minimum of 21")

	assert.Equal(t, []string{"[loans business]"}, labelsOf(got["Silent"], "workflow", "layer"))

	// 8 of claims' 20 judged crm reads did not resolve; loans' 1 in 10
	// is under the rate, policy-admin's 0 too.
	assert.Equal(t, []string{"[claims crm]"}, labelsOf(got["Unresolved"], "workflow", "entity_system"))
	assert.InDelta(t, 0.4, got["Unresolved"][0].Value, 1e-9)
	assert.Empty(t, got["UnresolvedMany"], "20 judged reads are under a minimum of 21")
	unresolved := Rule{Alert: "Unresolved", Kind: KindUnresolvedEntity, Window: contract.Duration(15 * time.Minute), MaxRate: 0.2, MinCount: 10}
	ex, err := unresolved.Examples(context.Background(), s.Conn, s.DB, t0, got["Unresolved"][0].Labels, 3)
	require.NoError(t, err)
	assert.Equal(t, []string{"u-0", "u-1", "u-2"}, ex, "decisions whose crm identifiers did not resolve")

	// 6 of claims' 20 decisions scored under 0.5 on groundedness by their
	// latest evaluation; relevance and loans pass.
	assert.Equal(t, []string{"[claims groundedness]"}, labelsOf(got["EvalLow"], "workflow", "evaluation"))
	assert.InDelta(t, 0.3, got["EvalLow"][0].Value, 1e-9)
	require.Equal(t, []string{"[claims groundedness]"}, labelsOf(got["EvalLowClaims"], "workflow", "evaluation"))
	assert.InDelta(t, 0.3, got["EvalLowClaims"][0].Value, 1e-9)
	assert.Empty(t, got["EvalLowGrounded"], "20 evaluated decisions are under a minimum of 21")
	evalLow := Rule{Alert: "EvalLow", Kind: KindEvaluationScore, Window: contract.Duration(15 * time.Minute), MinScore: 0.5, MaxRate: 0.2, MinCount: 10}
	ex, err = evalLow.Examples(context.Background(), s.Conn, s.DB, t0, got["EvalLow"][0].Labels, 3)
	require.NoError(t, err)
	assert.Equal(t, []string{"e-1", "e-2", "e-3"}, ex, "decisions whose latest groundedness is under the floor (not e-0)")

	// claims' reviewers override half its decisions: 5 times the pace a
	// 90% objective allows.
	assert.Equal(t, []string{"[claims]"}, labelsOf(got["SLOAccepted"], "workflow"))
	assert.InDelta(t, 0.5/0.1, got["SLOAccepted"][0].Value, 1e-9)

	// The generic ratio finds what the named kinds find.
	assert.Equal(t, labelsOf(got["Over"], "workflow"), labelsOf(got["RatioOverridden"], "workflow"))
	assert.InDelta(t, got["Over"][0].Value, got["RatioOverridden"][0].Value, 1e-9)
	assert.Equal(t, labelsOf(got["OverModel"], "workflow", "model_version"), labelsOf(got["RatioOverriddenByModel"], "workflow", "model_version"))
	assert.InDelta(t, got["OverModel"][0].Value, got["RatioOverriddenByModel"][0].Value, 1e-9)
	assert.Equal(t, []string{"[claims crm]"}, labelsOf(got["RatioUnresolved"], "workflow", "entity_system"))
	assert.InDelta(t, got["Unresolved"][0].Value, got["RatioUnresolved"][0].Value, 1e-9)
	var ratioUnresolved Rule
	for _, r := range kindRules() {
		if r.Alert == "RatioUnresolved" {
			ratioUnresolved = r
		}
	}
	ex, err = ratioUnresolved.Examples(context.Background(), s.Conn, s.DB, t0, got["RatioUnresolved"][0].Labels, 3)
	require.NoError(t, err)
	assert.Equal(t, []string{"u-0", "u-1", "u-2"}, ex)
	// The other shares of the same units: claims' decisions last accepted
	// are the half not overridden (under 0.6), loans' all of them; by
	// model version v1's 8 of 10 and v2's 2 of 10 (both over 0.15);
	// policy-admin's reads always resolve (crm's 12 of 20 are under 0.9).
	assert.Equal(t, []string{"[loans]"}, labelsOf(got["RatioAccepted"], "workflow"))
	assert.InDelta(t, 1, got["RatioAccepted"][0].Value, 1e-9)
	accepted := map[string]float64{}
	for _, smp := range got["RatioAcceptedByModel"] {
		accepted[smp.Labels["model_version"]] = smp.Value
	}
	assert.InDeltaMapValues(t, map[string]float64{"v1": 0.8, "v2": 0.2}, accepted, 1e-9)
	resolved := map[string]float64{}
	for _, smp := range got["RatioResolved"] {
		resolved[smp.Labels["workflow"]+" "+smp.Labels["entity_system"]] = smp.Value
	}
	assert.Equal(t, 1.0, resolved["claims policy-admin"])
	assert.NotContains(t, resolved, "claims crm")
	for _, r := range kindRules() {
		if r.Alert == "RatioOverriddenByModel" {
			// v2's overridden decisions, all acted on 4 minutes ago.
			ex, err = r.Examples(context.Background(), s.Conn, s.DB, t0, got["RatioOverriddenByModel"][0].Labels, 3)
			require.NoError(t, err)
			assert.Equal(t, []string{"h-0", "h-1", "h-2"}, ex)
		}
	}

	// claims v1: h-12 at 59 s and nine at 60; v2: ten at 60.
	slow := got["SlowAction"]
	assert.Equal(t, []string{"[claims v1]", "[claims v2]"}, labelsOf(slow, "workflow", "model_version"))
	for _, smp := range slow {
		want := 60.0
		if smp.Labels["model_version"] == "v1" {
			want = 59.45
		}
		assert.InDelta(t, want, smp.Value, 1e-9, "%v", smp.Labels)
	}

	custom := s.run(t, Rule{Alert: "Custom", Kind: KindCustomSQL, SQL: "SELECT workflow, toFloat64(count()) AS value FROM {db}.events WHERE layer = 'business' GROUP BY workflow HAVING value >= 1"})
	assert.Equal(t, []string{"[claims]", "[loans]"}, labelsOf(custom, "workflow"))

	// A rule's queries carry its name in ClickHouse's log_comment, where
	// query_log and system.processes show it.
	tagged := s.run(t, Rule{Alert: "WhoLoadsTheStore", Kind: KindCustomSQL, SQL: "SELECT toString(getSetting('log_comment')) AS comment, toFloat64(1) AS value"})
	assert.Equal(t, []string{"[decisiontrace rule WhoLoadsTheStore]"}, labelsOf(tagged, "comment"))
}

// Layer silence reads the layers' watermarks; signals stamped after the
// evaluation instant (a producer's clock ahead, or a rule test evaluating
// the past) move a watermark past it, and are then left out as they are
// from every other kind: the same alert, the same value.
func TestIntegrationLayerSilenceLeavesOutSignalsAfterTheInstant(t *testing.T) {
	s := newStore(t)
	kindScenario(t, s)
	silent := Rule{Alert: "Silent", Kind: KindLayerSilence, SilentFor: contract.Duration(30 * time.Minute)}
	before := s.run(t, silent)
	require.Equal(t, []string{"[loans business]"}, labelsOf(before, "workflow", "layer"))
	// loans' latest outcome 2 hours ago; it decided from 87 minutes ago
	// (after no decision for longer than a pause) to 5 minutes ago.
	assert.InDelta(t, (82 * time.Minute).Seconds(), before[0].Value, 1e-9)

	s.WriteEvents(t, storetest.Event{At: t0.Add(10 * time.Minute), Attrs: map[string]any{c.DecisionWorkflow: "loans", c.DecisionLayer: "business",
		c.DecisionEvent: "business.outcome", c.BusinessOutcome: "funded"}},
		storetest.Event{At: t0.Add(time.Minute), Attrs: map[string]any{c.DecisionID: "later", c.DecisionWorkflow: "claims", c.DecisionLayer: "model",
			c.DecisionEvent: "model.output", c.ModelConfidence: 0.9}})
	assert.Equal(t, before, s.run(t, silent), "at the same instant")
	later, err := silent.Run(context.Background(), s.Conn, s.DB, t0.Add(11*time.Minute))
	require.NoError(t, err)
	assert.Empty(t, later, "once the instant passes them, the outcome counts")
}

// pauseScenario: claims decided every minute from 10 to 8 hours before t0,
// paused for the night and resumed 10 minutes before t0, and no action or
// outcome answers a decision since; loans decides every 5 minutes, with
// an hour without decisions (90 to 30 minutes before t0), and its
// outcomes stopped 100 minutes before t0. Each decision has a read at
// once, and (but for those) a human action a minute later and an outcome
// 20 minutes later.
func pauseScenario(t *testing.T, s *store) {
	t.Helper()
	var evs []storetest.Event
	at := func(ago time.Duration, wf, layer, event string, more map[string]any) {
		attrs := map[string]any{c.DecisionWorkflow: wf, c.DecisionLayer: layer, c.DecisionEvent: event}
		for k, v := range more {
			attrs[k] = v
		}
		evs = append(evs, storetest.Event{At: t0.Add(-ago), Attrs: attrs})
	}
	// decide makes a decision every step from `from` ago to `to` ago
	// (negative: after t0), each with a read at once, a human action a
	// minute later and an outcome 20 minutes later; actions only for the
	// decisions made at least actionsUntil ago, outcomes for those made
	// at least outcomesUntil ago.
	decide := func(wf string, from, to, step, actionsUntil, outcomesUntil time.Duration) {
		for ago := from; ago >= to; ago -= step {
			id := fmt.Sprintf("%s-%d", wf, ago/time.Second)
			at(ago, wf, "model", "model.output", map[string]any{c.DecisionID: id, c.ModelConfidence: 0.9})
			at(ago, wf, "data", "context.read", map[string]any{c.DecisionID: id})
			if ago >= actionsUntil {
				at(ago-time.Minute, wf, "human", "human.action", map[string]any{c.DecisionID: id, c.HumanAction: c.ActionAccepted})
			}
			if ago >= outcomesUntil {
				at(ago-20*time.Minute, wf, "business", "business.outcome", map[string]any{c.DecisionID: id, c.BusinessOutcome: "paid"})
			}
		}
	}
	// claims decided from 10 to 8 hours ago, paused for the night and
	// resumed 10 minutes ago: no action or outcome answers a decision
	// since.
	decide("claims", 10*time.Hour, 8*time.Hour, time.Minute, 0, 0)
	decide("claims", 10*time.Minute, -10*time.Minute, time.Minute, 24*time.Hour, 24*time.Hour)
	// loans decides every 5 minutes, with an hour without decisions (90
	// to 30 minutes ago); its outcomes stopped 100 minutes ago.
	decide("loans", 3*time.Hour, 90*time.Minute, 5*time.Minute, 0, 120*time.Minute)
	decide("loans", 30*time.Minute, -10*time.Minute, 5*time.Minute, -time.Hour, 24*time.Hour)
	s.WriteEvents(t, evs...)
}

// A workflow that pauses (overnight, or a demo stopped and started again)
// resumes with decisions that its human actions and outcomes have not yet
// answered. Their silence counts from the first decision after the pause,
// so the resume pages no one; a layer that stays quiet after it does, its
// silence counted from the resume. A pause is a gap in decisions longer
// than the layer's lag or than the workflow's contract's max_silence, or
// than a rule's paused_after; a shorter gap is no pause, and a feed that
// stopped before it pages with the whole of its silence.
func TestIntegrationLayerSilenceCountsFromTheResumeAfterAPause(t *testing.T) {
	s := newStore(t)
	pauseScenario(t, s)

	lag := contract.Duration(15 * time.Minute)
	silent := Rule{Alert: "Silent", Kind: KindLayerSilence, Lags: map[string]contract.Duration{"data": lag, "human": lag, "business": lag}}
	values := func(r Rule, at time.Time) map[string]float64 {
		t.Helper()
		return valuesBy(s.runAt(t, r, at), "workflow", "layer")
	}
	// claims resumed 10 minutes ago, under its layers' lag of 15; loans'
	// outcomes stopped before its hour without decisions, longer than
	// the lag: silent from its resume, 30 minutes ago.
	assert.Equal(t, map[string]float64{"loans business": 1800}, values(silent, t0))
	// 10 minutes on, claims' human actions and outcomes are still missing
	// 20 minutes into the resume; its reads kept up.
	assert.Equal(t, map[string]float64{"claims business": 1200, "claims human": 1200, "loans business": 2400},
		values(silent, t0.Add(10*time.Minute)))

	// With a lag of 90 minutes, loans' hour is not a pause, and its
	// outcomes are silent for the 100 minutes since the last one...
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "r.yaml")
	require.NoError(t, os.WriteFile(rulesFile, []byte("groups:\n  - name: g\n    interval: 1m\n    rules:\n"+
		"      - {alert: Silent, kind: layer_silence, silent_for: 90m}\n"), 0o600))
	groups, err := Load([]string{rulesFile}, nil, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"loans business": 6000}, values(groups[0].Rules[0], t0))
	// ... unless its contract calls an hour without decisions a pause.
	claims, loans := filepath.Join(dir, "claims.yaml"), filepath.Join(dir, "loans.yaml")
	require.NoError(t, os.WriteFile(claims, []byte("workflow: claims\n"), 0o600))
	require.NoError(t, os.WriteFile(loans, []byte("workflow: loans\ntraffic: {max_silence: 45m}\n"), 0o600))
	cs, err := contract.Load([]string{claims, loans})
	require.NoError(t, err)
	groups, err = Load([]string{rulesFile}, cs, time.Minute)
	require.NoError(t, err)
	assert.Empty(t, values(groups[0].Rules[0], t0))
	// A rule's own paused_after decides alone: 2 hours, and loans' hour
	// is no pause even with a lag of 15 minutes; 9 hours, and claims'
	// night is none either: its last action answered its decision of 8
	// hours ago, a minute later.
	own := silent
	own.PausedAfter = contract.Duration(2 * time.Hour)
	assert.Equal(t, map[string]float64{"loans business": 6000}, values(own, t0))
	own.PausedAfter = contract.Duration(9 * time.Hour)
	assert.Equal(t, (8*time.Hour - time.Minute).Seconds(), values(own, t0)["claims human"])
}

// A workflow that decides less often than a layer's lag makes every gap a
// pause; a layer that stops answering it is still silent, from the first
// decision after the last gap it was keeping up at.
func TestIntegrationLayerSilenceSeesASparseWorkflow(t *testing.T) {
	s := newStore(t)
	var evs []storetest.Event
	// A decision every 20 minutes for 6 hours; human actions a minute
	// after each, until 3 hours ago.
	for ago := 6 * time.Hour; ago >= 0; ago -= 20 * time.Minute {
		id := fmt.Sprintf("sparse-%d", ago/time.Second)
		evs = append(evs, storetest.Event{At: t0.Add(-ago), Attrs: map[string]any{c.DecisionWorkflow: "sparse", c.DecisionLayer: "model",
			c.DecisionEvent: "model.output", c.DecisionID: id, c.ModelConfidence: 0.9}})
		if ago >= 3*time.Hour {
			evs = append(evs, storetest.Event{At: t0.Add(-ago + time.Minute), Attrs: map[string]any{c.DecisionWorkflow: "sparse", c.DecisionLayer: "human",
				c.DecisionEvent: "human.action", c.DecisionID: id, c.HumanAction: c.ActionAccepted}})
		}
	}
	s.WriteEvents(t, evs...)
	silent := Rule{Alert: "Silent", Kind: KindLayerSilence, Lags: map[string]contract.Duration{"human": contract.Duration(15 * time.Minute)}}
	// The last action answered the decision of 3 hours ago; the next one,
	// 2h40m ago, was never answered.
	assert.Equal(t, map[string]float64{"sparse human": (2*time.Hour + 40*time.Minute).Seconds()}, valuesBy(s.runAt(t, silent, t0), "workflow", "layer"))
	// Before the actions stopped, the layer kept up: nothing is silent.
	assert.Empty(t, valuesBy(s.runAt(t, silent, t0.Add(-3*time.Hour+2*time.Minute)), "workflow", "layer"))
}

// A rule's window that holds a resume after a pause has no data because
// of the pause: in the morning, the night's window holds decisions whose
// outcomes have not come yet. That is idle (no DecisionRuleNoData), as a
// window without decisions is; a workflow that decided through the
// window without the rule's signals is not. A gap is a pause when it is
// longer than the workflow's contract's max_silence (30 minutes without
// one), or than the rule's paused_after.
func TestIntegrationNoDataIsIdleWhileTheWindowHoldsAResume(t *testing.T) {
	s := newStore(t)
	pauseScenario(t, s)
	outcomes := func(wf string, window time.Duration) Rule {
		return Rule{Alert: "BadOutcomes", Kind: KindRatio, Count: "decisions", Window: contract.Duration(window), MaxRate: 0.5, MinCount: 1,
			Workflow: wf, Denominator: map[string]any{"decision.event": "business.outcome"}, Numerator: map[string]any{"business.outcome": "reopened"}}
	}
	idle := func(r Rule, pauses map[string]contract.Duration) bool {
		t.Helper()
		r.pauses = pauses
		require.Empty(t, r.validate())
		res := EvalAll(t.Context(), s.Conn, s.DB, t0, []*Rule{&r}, 1, time.Minute)
		require.NoError(t, res[0].Err)
		require.False(t, res[0].HasData, "no outcome in the window")
		return res[0].Idle
	}
	// claims resumed 10 minutes ago, after 8 hours: its 6 hours of
	// outcomes have not come.
	assert.True(t, idle(outcomes("claims", 6*time.Hour), nil))
	// loans' outcomes stopped 100 minutes ago; over the last hour it
	// resumed 30 minutes ago after an hour's gap, a pause by default...
	assert.True(t, idle(outcomes("loans", time.Hour), nil))
	// ... but not by a contract that allows 3 hours without a decision,
	// or a rule's paused_after of 2 hours: it decided through the hour.
	assert.False(t, idle(outcomes("loans", time.Hour), map[string]contract.Duration{"loans": contract.Duration(3 * time.Hour)}))
	own := outcomes("loans", time.Hour)
	own.PausedAfter = contract.Duration(2 * time.Hour)
	assert.False(t, idle(own, nil))
	// Over 90 minutes, its window begins before the gap: it decided,
	// then paused, then resumed; its decisions before the gap have no
	// outcome (they stopped 100 minutes ago).
	assert.False(t, idle(outcomes("loans", 90*time.Minute+time.Minute), nil))
	// A rule over every workflow is idle only when each is.
	assert.False(t, idle(outcomes("", 90*time.Minute+time.Minute), nil))
	assert.True(t, idle(outcomes("", time.Hour), nil))
}

// outcome is everything a rule gives at one instant: its samples, whether
// it has data, and the example decisions of each sample.
type outcome struct {
	Samples  []string
	HasData  bool
	Examples map[string][]string
}

func (s *store) outcome(t *testing.T, r Rule) outcome {
	t.Helper()
	ctx := context.Background()
	samples, has, err := r.Eval(ctx, s.Conn, s.DB, t0)
	require.NoError(t, err)
	o := outcome{HasData: has, Examples: map[string][]string{}}
	for _, smp := range samples {
		key := fmt.Sprintf("%v=%.9f", smp.Labels, smp.Value)
		o.Samples = append(o.Samples, key)
		ex, err := r.Examples(ctx, s.Conn, s.DB, t0, smp.Labels, 5)
		require.NoError(t, err)
		o.Examples[key] = ex
	}
	sort.Strings(o.Samples)
	return o
}

// A producer that resends its requests stores every event twice (same
// event IDs, other rows); one that resends some stores some twice. Every
// kind gives the same numbers, the same no-data and the same examples as
// one delivery.
func TestIntegrationEveryKindSameWhenEventsAreStoredTwice(t *testing.T) {
	once, twice, some := newStore(t), newStore(t), newStore(t)
	evs := kindScenario(t, once)
	kindScenario(t, twice)
	twice.Resend(t, evs...)
	twice.Refresh(t)
	// Resent: every overridden action, the lower half of claims' baseline
	// confidences, a queue depth and the first verdict decisions' events.
	all := kindScenario(t, some)
	var resent []storetest.Event
	for _, e := range all {
		id, _ := e.Attrs[c.DecisionID].(string)
		if e.Attrs[c.HumanAction] == c.ActionOverridden || e.Attrs[c.ModelConfidence] == 0.5 && strings.HasPrefix(id, "b-") ||
			e.Attrs[c.WorkflowQueueDepth] == int64(480) || strings.HasPrefix(id, "c-0") || e.Attrs[c.DataEntityResolved] == false ||
			e.Attrs[c.GenAIEvaluationScoreValue] == 0.3 || e.Attrs[c.GenAIEvaluationScoreValue] == 0.2 {
			resent = append(resent, e)
		}
	}
	require.Greater(t, len(resent), 30)
	some.Resend(t, resent...)
	some.Refresh(t)

	for _, r := range kindRules() {
		want := once.outcome(t, r)
		assert.Equal(t, want, twice.outcome(t, r), "%s: every event stored twice", r.Alert)
		assert.Equal(t, want, some.outcome(t, r), "%s: some events stored twice", r.Alert)
	}
}

// One query says what fires and whether there is anything to judge. Where
// the scenario's signals are, every kind has data, whether it fires or not
// (the ...Many rules' minimums are over what is there); two days later,
// past every window and lookback, the kinds about something present have
// none, and those about absence (staleness, depth, silence) still judge. A
// custom query tells the two apart the same way with a firing column.
func TestIntegrationEveryKindKnowsWhetherItHasData(t *testing.T) {
	s := newStore(t)
	kindScenario(t, s)
	ctx := context.Background()
	absence := map[Kind]bool{KindSourceStaleness: true, KindQueueDepth: true, KindLayerSilence: true, KindWorkflowSilence: true}
	recent := "SELECT workflow, toFloat64(count()) AS value, toUInt8(count() > ?) AS firing FROM {db}.events WHERE workflow IN ('claims', 'loans') AND time >= {now} - INTERVAL 1 HOUR AND time <= {now} GROUP BY workflow"
	ruleset := append(kindRules(),
		Rule{Alert: "CustomQuiet", Kind: KindCustomSQL, SQL: strings.Replace(recent, "?", "1000000", 1)},
		Rule{Alert: "CustomBusy", Kind: KindCustomSQL, SQL: strings.Replace(recent, "?", "0", 1)})
	for _, r := range ruleset {
		r.AnyWorkflow = true
		samples, has, err := r.Eval(ctx, s.Conn, s.DB, t0)
		require.NoError(t, err, r.Alert)
		assert.True(t, has, "%s: its signals are in the window", r.Alert)
		if strings.HasSuffix(r.Alert, "Many") || r.Alert == "CustomQuiet" {
			assert.Empty(t, samples, "%s: there, and under its minimum", r.Alert)
		}
		if r.Alert == "CustomBusy" {
			assert.Equal(t, []string{"[claims]", "[loans]"}, labelsOf(samples, "workflow"))
			assert.NotContains(t, samples[0].Labels, "firing", "firing is not a label")
		}
		samples, has, err = r.Eval(ctx, s.Conn, s.DB, t0.Add(48*time.Hour))
		require.NoError(t, err, r.Alert)
		assert.Equal(t, absence[r.Kind], has, "%s: two days later", r.Alert)
		if !has {
			assert.Empty(t, samples, r.Alert)
		}
		// Of one workflow, its label is the filter's value, a constant
		// the queries group by: an empty window is still no row.
		if r.Kind == KindCustomSQL {
			continue
		}
		r.AnyWorkflow, r.Workflow = false, "claims"
		samples, has, err = r.Eval(ctx, s.Conn, s.DB, t0.Add(48*time.Hour))
		require.NoError(t, err, r.Alert)
		assert.Equal(t, absence[r.Kind], has, "%s of claims: two days later", r.Alert)
		if !has {
			assert.Empty(t, samples, r.Alert)
		}
	}
}

// On a clustered store (Distributed tables over local ones) every kind
// finds what it finds on one server, examples included: each subquery and
// join of its queries is one a cluster runs.
func TestIntegrationEveryKindSameOnACluster(t *testing.T) {
	single, cluster := newStore(t), &store{Store: storetest.NewCluster(t, "dt_rules")}
	kindScenario(t, single)
	kindScenario(t, cluster)
	for _, r := range kindRules() {
		assert.Equal(t, single.outcome(t, r), cluster.outcome(t, r), r.Alert)
	}
}

// Rules evaluated side by side (the receiver's rule_query_concurrency)
// give each the results it gives alone, in the rules' order, idle checks
// included.
func TestIntegrationEvalAllSameAsOneByOne(t *testing.T) {
	s := newStore(t)
	kindScenario(t, s)
	ctx := context.Background()
	var ruleset []*Rule
	for _, r := range kindRules() {
		r.AnyWorkflow = r.Workflow == "" // as run does: what the queries find
		ruleset = append(ruleset, &r)
	}
	// A rule with no data whose workflow made no decision: idle.
	ruleset = append(ruleset, &Rule{Alert: "Quiet", Kind: KindOverrideRate, Window: contract.Duration(time.Hour), MaxRate: 0.3, MinCount: 1, Workflow: "quiet"})
	// What one query evaluates together: the verdict rates of one window,
	// the shares of the same units; every other rule alone.
	var together []string
	for _, part := range Together(ruleset) {
		if len(part) > 1 {
			var names []string
			for _, i := range part {
				names = append(names, ruleset[i].Alert)
			}
			together = append(together, strings.Join(names, " "))
		}
	}
	assert.Equal(t, []string{"Unsup UnsupMany Missing Low", "RatioOverridden RatioAccepted",
		"RatioOverriddenByModel RatioAcceptedByModel RatioActedByModel RatioV2ByModel", "RatioUnresolved RatioResolved"}, together)
	results := EvalAll(ctx, s.Conn, s.DB, t0, ruleset, 8, time.Minute)
	require.Len(t, results, len(ruleset))
	fired := 0
	for i, r := range ruleset {
		samples, has, err := r.Eval(ctx, s.Conn, s.DB, t0)
		require.NoError(t, err)
		idle := false
		if !has {
			idle, err = r.Idle(ctx, s.Conn, s.DB, t0)
			require.NoError(t, err)
		}
		got := results[i]
		require.NoError(t, got.Err, r.Alert)
		assert.Equal(t, has, got.HasData, r.Alert)
		assert.Equal(t, idle, got.Idle, r.Alert)
		assert.ElementsMatch(t, samples, got.Samples, r.Alert)
		assert.Positive(t, got.Took, r.Alert)
		fired += len(got.Samples)
	}
	assert.Greater(t, fired, 20, "enough alerts to compare")
	last := results[len(results)-1]
	assert.False(t, last.HasData)
	assert.True(t, last.Idle, "the quiet workflow's rule: no data because it made no decision")
}

// Label values come from event data; they reach ClickHouse only as bound
// parameters or result columns, so a hostile value cannot change a rule.
func TestIntegrationLabelValuesCannotChangeARulesSQL(t *testing.T) {
	s := newStore(t)
	hostile := "x' OR 1=1 --"
	s.add(t, time.Minute, map[string]any{c.DecisionWorkflow: hostile, c.DecisionLayer: "data", c.DecisionEvent: "source.freshness",
		c.DataSource: "src'); DROP TABLE events; --", c.DataAsOf: t0.Add(-time.Hour).Format(time.RFC3339)})
	s.add(t, time.Minute, map[string]any{c.DecisionWorkflow: "claims", c.DecisionLayer: "data", c.DecisionEvent: "source.freshness",
		c.DataSource: "policy-db", c.DataAsOf: t0.Add(-time.Hour).Format(time.RFC3339)})

	r := Rule{Alert: "Stale", Kind: KindSourceStaleness, MaxAge: contract.Duration(time.Minute), Workflow: hostile}
	got, err := r.Run(context.Background(), s.Conn, s.DB, t0)
	require.NoError(t, err)
	assert.Equal(t, []string{"[x' OR 1=1 -- src'); DROP TABLE events; --]"}, labelsOf(got, "workflow", "source"),
		"the filter matched the hostile value literally, and only it")

	// The alert's labels, which came from event data, go back into the
	// example-decisions query: as parameters too.
	s.add(t, time.Minute, map[string]any{c.DecisionID: "d-hostile", c.DecisionWorkflow: hostile, c.DecisionLayer: "data",
		c.DecisionEvent: "context.read", c.DataSource: "src'); DROP TABLE events; --"})
	s.add(t, time.Minute, map[string]any{c.DecisionID: "d-other", c.DecisionWorkflow: "claims", c.DecisionLayer: "data",
		c.DecisionEvent: "context.read", c.DataSource: "policy-db"})
	ex, err := r.Examples(context.Background(), s.Conn, s.DB, t0, got[0].Labels, 5)
	require.NoError(t, err)
	assert.Equal(t, []string{"d-hostile"}, ex)

	r.Workflow = "nobody' OR '1'='1"
	got, err = r.Run(context.Background(), s.Conn, s.DB, t0)
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

// A workflow name is whatever a producer sends: a rule without a workflow
// filter alerts for the workflows with a contract and those it lists, so
// an invented name pages no one, unless the rule says any_workflow.
func TestRulesAlertOnlyForKnownWorkflows(t *testing.T) {
	s := newStore(t)
	invented := []string{"x' OR 1=1 --", "nul\x00name", "bad\xffutf8", "typo-claims"}
	for _, wf := range append([]string{"claims", "listed"}, invented...) {
		s.add(t, time.Minute, map[string]any{c.DecisionWorkflow: wf, c.DecisionLayer: "workflow",
			c.DecisionEvent: "queue.depth", c.WorkflowQueue: "q", c.WorkflowQueueDepth: int64(500)})
	}
	dir := t.TempDir()
	contractFile := filepath.Join(dir, "claims.yaml")
	require.NoError(t, os.WriteFile(contractFile, []byte("workflow: claims\nowner: claims-platform\n"), 0o600))
	rulesFile := filepath.Join(dir, "r.yaml")
	require.NoError(t, os.WriteFile(rulesFile, []byte(`
groups:
  - name: g
    interval: 15s
    rules:
      - {alert: Known, kind: queue_depth, max_depth: 100}
      - {alert: Listed, kind: queue_depth, max_depth: 100, workflows: [listed]}
      - {alert: Any, kind: queue_depth, max_depth: 100, any_workflow: true}
      - {alert: Named, kind: queue_depth, max_depth: 100, workflow: "x' OR 1=1 --"}
`), 0o600))
	contracts, err := contract.Load([]string{contractFile})
	require.NoError(t, err)
	groups, err := Load([]string{rulesFile}, contracts, time.Minute)
	require.NoError(t, err)
	found := map[string][]string{}
	for _, r := range groups[0].Rules {
		samples, err := r.Run(context.Background(), s.Conn, s.DB, t0)
		require.NoError(t, err)
		found[r.Alert] = labelsOf(samples, "workflow")
		sort.Strings(found[r.Alert])
	}
	assert.Equal(t, []string{"[claims]"}, found["Known"], "the contract's workflow only")
	assert.Equal(t, []string{"[claims]", "[listed]"}, found["Listed"])
	assert.Len(t, found["Any"], 2+len(invented), "any_workflow: every name sent")
	assert.Equal(t, []string{"[x' OR 1=1 --]"}, found["Named"], "a rule's own workflow filter is its choice")

	// Without contracts, a rule file's unfiltered rule alerts for what it lists.
	groups, err = Load([]string{rulesFile}, nil, time.Minute)
	require.NoError(t, err)
	samples, err := groups[0].Rules[0].Run(context.Background(), s.Conn, s.DB, t0)
	require.NoError(t, err)
	assert.Empty(t, samples)

	_, err = Parse("r.yaml", []byte(`
groups:
  - name: g
    interval: 15s
    rules:
      - {alert: A, kind: queue_depth, max_depth: 1, workflow: w, any_workflow: true}
      - {alert: B, kind: queue_depth, max_depth: 1, workflows: [w], any_workflow: true}
      - {alert: C, kind: queue_depth, max_depth: 1, workflows: [""]}
`))
	assert.EqualError(t, err, `r.yaml: group g: rule A: workflows: workflows and any_workflow are for rules without a workflow filter; this one sets workflow "w"
r.yaml: group g: rule B: any_workflow: set either workflows or any_workflow
r.yaml: group g: rule C: workflows[0]: empty`)
}

// Alert state is stored under a rule's key: its format must not change,
// or an upgraded evaluator would not find the alerts it had firing.
func TestRuleKeyIsTheStoredFormat(t *testing.T) {
	r := Rule{Alert: "DecisionSourceStale", Labels: map[string]string{"workflow": "claims-triage", "team": "claims", "severity": "page"}}
	assert.Equal(t, "DecisionSourceStale,severity=page,team=claims,workflow=claims-triage", r.Key())
	assert.Equal(t, "Bare", (&Rule{Alert: "Bare"}).Key())
}

// Every kind in the registry is whole: its settings are checked and it
// has a query; a contract's default rules all have a summary.
func TestEveryKindIsRegisteredWhole(t *testing.T) {
	for k, spec := range registry {
		assert.NotNil(t, spec.check, k)
		assert.True(t, spec.query != nil || spec.merged != nil, "%s has no query", k)
		assert.Equal(t, spec.together != nil, spec.merged != nil, "%s: rules that share a query need both together and merged", k)
	}
	c, err := contract.Parse("c.yaml", []byte(strings.Split(verdictContracts, "---")[0]))
	require.NoError(t, err)
	rs, err := Defaults(c)
	require.NoError(t, err)
	for _, r := range rs {
		assert.NotEmpty(t, registry[r.Kind].summary, "default rule %s (%s)", r.Alert, r.Kind)
	}
	assert.Len(t, kindNames(), 17)
}

// The silence kinds read only the watermarks while nothing trails, and
// the watermarks' bound is the queries' own: a layer 600.5 s behind the
// workflow's latest decision fires against a 600 s limit, one 599.5 s
// behind does not, and a workflow 600.5 s without a decision fires where
// 599.5 s does not.
func TestIntegrationSilenceKindsReadTheWatermarksFirst(t *testing.T) {
	s := newStore(t)
	decided := t0.Add(-time.Minute)
	var evs []storetest.Event
	at := func(when time.Time, layer, event string, more map[string]any) {
		attrs := map[string]any{c.DecisionWorkflow: "sw", c.DecisionLayer: layer, c.DecisionEvent: event}
		for k, v := range more {
			attrs[k] = v
		}
		evs = append(evs, storetest.Event{At: when, Attrs: attrs})
	}
	const decisions = 200
	for i := 0; i < decisions; i++ {
		when := decided.Add(-time.Duration(i) * 30 * time.Second)
		id := fmt.Sprintf("sw-%d", i)
		at(when, "model", c.EventModelOutput, map[string]any{c.DecisionID: id, c.ModelConfidence: 0.9})
		at(when, "data", c.EventContextRead, map[string]any{c.DecisionID: id, c.DataSource: "crm"})
		at(when, "workflow", c.EventWorkflowRouted, map[string]any{c.DecisionID: id, c.WorkflowRoute: "auto"})
	}
	at(decided.Add(-600*time.Second-500*time.Millisecond), "business", c.EventBusinessOutcome, map[string]any{c.DecisionID: "sw-b", c.BusinessOutcome: "paid"})
	at(decided.Add(-600*time.Second+500*time.Millisecond), "human", c.EventHumanAction, map[string]any{c.DecisionID: "sw-h", c.HumanAction: c.ActionAccepted})
	s.WriteEvents(t, evs...)

	layers := Rule{Alert: "LayerSilent", Kind: KindLayerSilence, SilentFor: contract.Duration(10 * time.Minute), AnyWorkflow: true}
	got := s.run(t, layers)
	require.Equal(t, []string{"[sw business]"}, labelsOf(got, "workflow", "layer"))
	assert.InDelta(t, 600.5, got[0].Value, 1e-9)

	stopped := Rule{Alert: "WorkflowSilent", Kind: KindWorkflowSilence, SilentFor: contract.Duration(10 * time.Minute), AnyWorkflow: true}
	for _, tc := range []struct {
		after time.Duration
		fires bool
	}{{600*time.Second + 500*time.Millisecond, true}, {600*time.Second - 500*time.Millisecond, false}} {
		got := s.runAt(t, stopped, decided.Add(tc.after))
		assert.Equal(t, tc.fires, len(got) == 1, "%v after the latest decision", tc.after)
	}

	// Nothing trails 15 minutes: both rules read the watermarks (a row a
	// layer, a few more before they merge), not the store's 600 signals.
	layers.SilentFor = contract.Duration(15 * time.Minute)
	stopped.SilentFor = contract.Duration(15 * time.Minute)
	for _, res := range EvalAll(context.Background(), s.Conn, s.DB, t0, []*Rule{&layers, &stopped}, 1, time.Minute) {
		require.NoError(t, res.Err)
		assert.True(t, res.HasData)
		assert.Empty(t, res.Samples)
		assert.Positive(t, res.ReadRows, "rows read: the watermarks")
		assert.Less(t, res.ReadRows, uint64(decisions), "rows read")
	}
}
