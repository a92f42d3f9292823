package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/storetest"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// t0 is when the tests' decisions happen: a fixed day, far from today.
var t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

// rec is one log record: its event time and attributes.
type rec struct {
	at    time.Time
	attrs map[string]any
}

// request is one request of a producer (its service.name).
func request(service string, recs ...rec) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", service)
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for _, r := range recs {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(r.at))
		if err := lr.Attributes().FromRaw(r.attrs); err != nil {
			panic(err)
		}
	}
	return ld
}

// store is a decision store with the claims-triage and loan-underwriting
// contracts in force.
func newStore(t *testing.T) *storetest.Store {
	t.Helper()
	s := storetest.New(t, "dt_ctl")
	require.NoError(t, s.WriteContracts(context.Background(), storetest.WorkloadContracts(t), t0))
	return s
}

func sig(id, wf, layer, event string, m map[string]any) map[string]any {
	if id != "" {
		m[c.DecisionID] = id
	}
	m[c.DecisionWorkflow], m[c.DecisionLayer], m[c.DecisionEvent] = wf, layer, event
	return m
}

func read(id, wf, source string, at, asOf time.Time) rec {
	return rec{at, sig(id, wf, c.LayerData, c.EventContextRead, map[string]any{c.DataSource: source,
		c.DataAsOf: asOf.Format(time.RFC3339Nano), c.DataComplete: true, c.DataAvailable: true})}
}

func output(id, wf string, at time.Time, conf float64) rec {
	return rec{at, sig(id, wf, c.LayerModel, c.EventModelOutput, map[string]any{c.ModelName: wf + "-llm",
		c.ModelVersion: "2025.11.0", c.ModelConfidence: conf, c.ModelRecommendation: "approve"})}
}

func dtctl(t *testing.T, s *storetest.Store, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	all := append([]string{"--endpoint", "clickhouse://" + s.Addr, "--database", s.DB}, args...)
	code := run(context.Background(), all, &out, zerolog.Nop(), t0.Add(time.Minute))
	return out.String(), code
}

func decision(t *testing.T, s *storetest.Store, id string) decisionView {
	t.Helper()
	out, code := dtctl(t, s, "--json", "decision", id)
	require.Equal(t, 0, code, out)
	var v decisionView
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	return v
}

// timeline is the "layer/event" of each timeline line of dtctl's text.
func timeline(out string) []string {
	var order []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && strings.HasPrefix(f[0], "20") {
			order = append(order, f[2]+"/"+f[3])
		}
	}
	return order
}

// A loan-underwriting decision whose document-store read reaches the store
// four minutes after its output (a log shipper that batches): pending
// while the read is on its way, fresh once it arrived, and every signal
// once on the timeline however often it was sent.
func TestDecisionWhoseContextArrivedAfterItsOutput(t *testing.T) {
	s := newStore(t)
	const wf, id = "loan-underwriting", "loan-7"
	decided := request("loan-underwriting-ai",
		read(id, wf, "credit-bureau", t0.Add(-time.Second), t0.Add(-2*time.Minute)),
		read(id, wf, "income-verification", t0.Add(-time.Second), t0.Add(-5*time.Minute)),
		output(id, wf, t0, 0.91),
		rec{t0.Add(time.Second), sig(id, wf, c.LayerWorkflow, c.EventWorkflowRouted, map[string]any{c.WorkflowRoute: "review", c.WorkflowQueue: "underwriter-review"})})
	late := request("document-shipper", read(id, wf, "document-store", t0.Add(-time.Second), t0.Add(-40*time.Second)))
	s.Write(t, decided)

	out, code := dtctl(t, s, "decision", id)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "decided  2026-01-05 10:00:00.000 UTC by loan-underwriting-llm 2025.11.0, confidence 0.91 (floor 0.75)")
	assert.Contains(t, out, "verdict  context pending (waiting for document-store), behaviour proceed")
	assert.Contains(t, out, "sources  pending document-store · freshness from reads · contract ")
	v := decision(t, s, id)
	require.NotNil(t, v.Verdict)
	assert.Equal(t, c.ContextPending, v.Verdict.Context)
	assert.Equal(t, []string{"document-store"}, v.Verdict.PendingSources)
	assert.False(t, v.Verdict.UnsupportedCertainty)

	// Four minutes later the read arrives; then the reviewer and the
	// outcome.
	s.Write(t, late)
	s.Write(t, request("review-tool", rec{t0.Add(2 * time.Minute), sig(id, wf, c.LayerHuman, c.EventHumanAction,
		map[string]any{c.HumanAction: c.ActionAccepted, c.HumanActor: "underwriter-3", c.DecisionEventID: "review-1"})}))
	s.Write(t, request("core-banking", rec{t0.Add(15 * time.Minute), sig(id, wf, c.LayerBusiness, c.EventBusinessOutcome,
		map[string]any{c.BusinessOutcome: "approved", c.BusinessCycleTimeS: 900.0})}))

	check := func(t *testing.T) {
		out, code := dtctl(t, s, "decision", id)
		require.Equal(t, 0, code, out)
		assert.Contains(t, out, "decision loan-7  workflow loan-underwriting")
		assert.Contains(t, out, "layers   data ✓  model ✓  workflow ✓  human ✓  business ✓")
		assert.Contains(t, out, "verdict  context fresh, behaviour proceed")
		assert.Contains(t, out, "sources  every required source fresh · freshness from reads · contract ")
		assert.NotContains(t, out, "decision.verdict")
		// In event time: the late read was made before the output it fed.
		assert.Equal(t, []string{"data/context.read", "data/context.read", "data/context.read", "model/model.output",
			"workflow/workflow.routed", "human/human.action", "business/business.outcome"}, timeline(out))
		assert.Contains(t, out, "source=document-store as_of=2026-01-05T09:59:20Z age=39s complete=true available=true")

		v := decision(t, s, id)
		require.NotNil(t, v.Verdict)
		assert.Equal(t, c.ContextFresh, v.Verdict.Context)
		assert.Empty(t, v.Verdict.PendingSources)
		assert.Empty(t, v.Verdict.MissingSources)
		assert.Equal(t, "reads", v.Verdict.ContextSource)
		assert.Equal(t, t0, v.Verdict.DecisionTime.UTC())
		assert.Equal(t, []string{"data", "model", "workflow", "human", "business"}, v.LayersSeen)
		assert.Empty(t, v.Missing)
		assert.Len(t, v.Timeline, 7)
	}
	t.Run("after the read arrived", check)

	// The producers resend: the AI service its request together with the
	// shipper's (another batch, so ClickHouse does not drop it), the review
	// tool its action.
	both := request("loan-underwriting-ai")
	decided.ResourceLogs().At(0).CopyTo(both.ResourceLogs().At(0))
	late.ResourceLogs().At(0).CopyTo(both.ResourceLogs().AppendEmpty())
	s.Write(t, both)
	s.Write(t, request("review-tool", rec{t0.Add(2 * time.Minute), sig(id, wf, c.LayerHuman, c.EventHumanAction,
		map[string]any{c.HumanAction: c.ActionAccepted, c.HumanActor: "underwriter-3", c.DecisionEventID: "review-1"})},
		rec{t0.Add(2 * time.Minute), sig("loan-8", wf, c.LayerHuman, c.EventHumanAction,
			map[string]any{c.HumanAction: c.ActionAccepted, c.HumanActor: "underwriter-3", c.DecisionEventID: "review-2"})}))
	require.Greater(t, s.Count(t, "SELECT count() FROM {db}.events WHERE decision_id = ?", id), uint64(7), "the resent events are stored again")
	t.Run("after redelivery", check)
}

// Decisions confident on stale or missing context, one with low confidence,
// one whose workflow has no contract, and the command's errors.
func TestDecisionVerdicts(t *testing.T) {
	s := newStore(t)
	const wf = "claims-triage"
	claim := func(id string, at time.Time, conf float64, policyAsOf *time.Time) []rec {
		var rs []rec
		if policyAsOf != nil {
			rs = append(rs, read(id, wf, "policy-db", at.Add(-time.Second), *policyAsOf))
		}
		return append(rs,
			read(id, wf, "claims-history", at.Add(-time.Second), at.Add(-time.Minute)),
			read(id, wf, "fraud-signals", at.Add(-time.Second), at.Add(-time.Minute)),
			output(id, wf, at, conf))
	}
	stale, fresh := t0.Add(-10*time.Minute), t0.Add(50*time.Second)
	var recs []rec
	recs = append(recs, claim("claim-1", t0, 0.93, &stale)...)
	recs = append(recs, claim("claim-2", t0, 0.93, nil)...) // never read policy-db
	recs = append(recs, claim("claim-3", t0.Add(time.Minute), 0.5, &fresh)...)
	// A version-1 verdict record, as the decision processor wrote them: the
	// verdict now comes from the store, and the record is not shown.
	recs = append(recs, rec{t0, sig("claim-1", wf, c.LayerModel, c.EventVerdict, map[string]any{"verdict.context": "fresh"})})
	s.Write(t, request("claims-triage-ai", recs...))
	s.Write(t, request("support-ai", output("support-1", "support-assist", t0, 0.9)))

	for id, want := range map[string]string{
		// claim-3's read of policy-db at 10:00:59 is past claim-2: its read
		// is not on its way, it is missing.
		"claim-1":   "verdict  context stale (policy-db 600s old, budget 90s), UNSUPPORTED CERTAINTY, behaviour escalate",
		"claim-2":   "verdict  context missing (missing policy-db), UNSUPPORTED CERTAINTY, behaviour abstain",
		"claim-3":   "verdict  context fresh, low confidence, behaviour escalate",
		"support-1": "verdict  none (no model output yet, or no contract for the workflow)",
	} {
		out, code := dtctl(t, s, "decision", id)
		require.Equal(t, 0, code, out)
		assert.Contains(t, out, want, id)
	}
	out, _ := dtctl(t, s, "decision", "claim-1")
	assert.Contains(t, out, "sources  stale policy-db · freshness from reads · contract ")
	assert.Equal(t, []string{"data/context.read", "data/context.read", "data/context.read", "model/model.output"}, timeline(out))

	v := decision(t, s, "claim-1")
	require.NotNil(t, v.Verdict)
	assert.True(t, v.Verdict.UnsupportedCertainty)
	assert.Equal(t, "policy-db", v.Verdict.StaleSource)
	require.NotNil(t, v.Verdict.StaleAgeS)
	assert.InDelta(t, 600, *v.Verdict.StaleAgeS, 0.001)
	require.NotNil(t, v.Verdict.StaleBudgetS)
	assert.Equal(t, 90.0, *v.Verdict.StaleBudgetS)
	assert.Equal(t, []string{"data", "model"}, v.LayersSeen)
	assert.Equal(t, []string{"workflow", "human", "business"}, v.Missing)
	assert.Len(t, v.Timeline, 4)

	out, code := dtctl(t, s, "decision", "claim-2", "--json")
	require.Equal(t, 0, code, "flags after the command")
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	assert.Equal(t, "claim-2", v.DecisionID)
	assert.Equal(t, []string{"policy-db"}, v.Verdict.MissingSources)

	_, code = dtctl(t, s, "decision", "no-such-claim")
	assert.Equal(t, 1, code)
	_, code = dtctl(t, s, "decision")
	assert.Equal(t, 2, code, "decision needs an ID")
	_, code = dtctl(t, s, "decision", "")
	assert.Equal(t, 2, code, "an empty ID would list every signal without a decision")
}

func TestDecisionOnADatabaseWithoutVerdicts(t *testing.T) {
	s := storetest.New(t, "dt_ctl")
	require.NoError(t, s.Conn.Exec(context.Background(), "CREATE DATABASE "+s.DB+"_empty"))
	defer func() { _ = s.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+s.DB+"_empty") }()
	var logs bytes.Buffer
	code := run(context.Background(), []string{"--endpoint", "clickhouse://" + s.Addr, "--database", s.DB + "_empty", "decision", "x"},
		&bytes.Buffer{}, zerolog.New(&logs), t0)
	assert.Equal(t, 1, code)
	assert.Contains(t, logs.String(), "schema version 0, need 2")
}

func TestSourcesAgainstTheContractsInForce(t *testing.T) {
	s := newStore(t)
	now := t0.Add(time.Minute) // dtctl's clock in these tests
	poll := func(wf, source string, asOf *time.Time, err string) rec {
		m := map[string]any{c.DataSource: source, c.DataAvailable: err == ""}
		if asOf != nil {
			m[c.DataAsOf] = asOf.Format(time.RFC3339Nano)
		}
		if err != "" {
			m[c.DataError] = err
		}
		return rec{now.Add(-5 * time.Second), sig("", wf, c.LayerData, c.EventSourceFreshness, m)}
	}
	at := func(d time.Duration) *time.Time { x := now.Add(-d); return &x }
	s.Write(t, request("freshness-poller",
		poll("claims-triage", "policy-db", at(10*time.Minute), ""),
		poll("claims-triage", "claims-history", at(time.Minute), ""),
		poll("claims-triage", "fraud-signals", nil, "dial tcp: connection refused"),
		poll("support-assist", "crm-profile", at(0), ""),
		// document-store itself is fresh...
		poll("loan-underwriting", "document-store", at(30*time.Second), "")))
	// ...but its reads trail loan-underwriting's decisions by 12 minutes.
	const wf = "loan-underwriting"
	var recs []rec
	for i := 0; i <= 15; i++ {
		id := "loan-" + string(rune('a'+i))
		d := now.Add(-time.Duration(15-i)*time.Minute - 5*time.Second)
		recs = append(recs, read(id, wf, "credit-bureau", d.Add(-time.Second), d.Add(-time.Minute)), output(id, wf, d, 0.9))
		if i <= 3 {
			recs = append(recs, read(id, wf, "document-store", d.Add(-time.Second), d.Add(-time.Minute)))
		}
	}
	s.Write(t, request("loan-underwriting-ai", recs...))

	out, code := dtctl(t, s, "--json", "sources")
	require.Equal(t, 0, code, out)
	var v sourcesView
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	status := map[string]string{}
	byName := map[string]sourceState{}
	for _, src := range v.Sources {
		status[src.Workflow+"/"+src.Source] = src.Status
		byName[src.Workflow+"/"+src.Source] = src
	}
	assert.Equal(t, map[string]string{
		"claims-triage/policy-db":          "stale", // 10 minutes against 90 s
		"claims-triage/claims-history":     "ok",
		"claims-triage/fraud-signals":      "unavailable",
		"support-assist/crm-profile":       "no_budget",
		"loan-underwriting/credit-bureau":  "ok",
		"loan-underwriting/document-store": "lagging",
		// In the loan-underwriting contract, never heard of.
		"loan-underwriting/income-verification": "silent",
	}, status)
	ds := byName["loan-underwriting/document-store"]
	require.NotNil(t, ds.LagS)
	assert.InDelta(t, 721, *ds.LagS, 0.001, "the last read at 09:48:54, the last output at 10:00:55")
	require.NotNil(t, ds.MaxContextLagS)
	assert.Equal(t, 600.0, *ds.MaxContextLagS)
	assert.Equal(t, "documents-team", ds.Owner)
	require.NotNil(t, ds.Required)
	assert.True(t, *ds.Required)
	fs := byName["claims-triage/fraud-signals"]
	require.NotNil(t, fs.Required)
	assert.False(t, *fs.Required, "optional sources have budgets too")
	require.NotNil(t, fs.BudgetS)
	assert.Equal(t, 300.0, *fs.BudgetS)
	assert.Nil(t, byName["support-assist/crm-profile"].BudgetS)
	pd := byName["claims-triage/policy-db"]
	require.NotNil(t, pd.AgeS)
	assert.InDelta(t, 600, *pd.AgeS, 0.001)

	out, code = dtctl(t, s, "sources")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "⚠ stale")
	assert.Contains(t, out, "⚠ lagging")
	assert.Contains(t, out, "12m1s (max 10m0s)")
	assert.Contains(t, out, "dial tcp: connection refused")
	assert.Contains(t, out, "policy-admin-team")
}

func TestAlertsWithExampleDecisions(t *testing.T) {
	s := newStore(t)
	s.InsertAlert(t, storetest.Alert{Name: "UnsupportedCertainty", State: c.AlertStateFiring,
		Labels:      map[string]string{"workflow": "claims-triage", "severity": "page", "team": "claims-oncall"},
		Annotations: map[string]string{"summary": "100% unsupported", "example_decisions": "claim-1 claim-2"},
		Value:       1, ActiveAt: t0, FiredAt: t0.Add(time.Minute)})
	s.InsertAlert(t, storetest.Alert{Name: "OverrideRate", State: c.AlertStatePending,
		Labels: map[string]string{"workflow": "loan-underwriting"}, Value: 0.3, ActiveAt: t0.Add(-time.Minute)})
	s.InsertAlert(t, storetest.Alert{Name: "QueueDepth", State: c.AlertStateResolved,
		Labels: map[string]string{"workflow": "claims-triage"}, Value: 10, ActiveAt: t0.Add(-time.Hour)})

	out, code := dtctl(t, s, "--json", "alerts")
	require.Equal(t, 0, code, out)
	var v alertsView
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	require.Len(t, v.Alerts, 2, "resolved alerts are not active")
	a := v.Alerts[0]
	assert.Equal(t, "UnsupportedCertainty", a.Name, "firing first")
	assert.Equal(t, "firing", a.State)
	assert.Equal(t, map[string]string{"workflow": "claims-triage", "severity": "page", "team": "claims-oncall"}, a.Labels)
	assert.Equal(t, []string{"claim-1", "claim-2"}, a.ExampleDecisions)
	assert.Equal(t, "100% unsupported", a.Summary)
	require.NotNil(t, a.FiredAt)
	assert.Equal(t, t0.Add(time.Minute), a.FiredAt.UTC())
	assert.Equal(t, "OverrideRate", v.Alerts[1].Name)
	assert.Nil(t, v.Alerts[1].FiredAt)

	out, code = dtctl(t, s, "alerts")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "firing   UnsupportedCertainty  severity=page,team=claims-oncall,workflow=claims-triage  2026-01-05 10:01:00")
	assert.Contains(t, out, "UnsupportedCertainty: 100% unsupported")
}

func TestAlertsWithoutTheEvaluatorsTables(t *testing.T) {
	s := storetest.New(t, "dt_ctl")
	out, code := dtctl(t, s, "alerts")
	require.Equal(t, 0, code, "a migrated store has the evaluator's tables")
	assert.Equal(t, "no active alerts\n", out)
	require.NoError(t, s.Conn.Exec(context.Background(), "DROP TABLE "+s.DB+".alert_state"))
	_, code = dtctl(t, s, "alerts")
	assert.Equal(t, 1, code)
}

// Stored data is whatever producers sent: an escape sequence, a NUL,
// a bidirectional override or invalid UTF-8 in it reaches the on-call
// engineer's terminal escaped, in every command, and JSON keeps it exact.
func TestStoredDataCannotDriveTheTerminal(t *testing.T) {
	s := newStore(t)
	hostile := "x\x1b]0;owned\x07\x00\u202e\xff\x9b2J"
	at := t0.Add(-time.Minute)
	out := output("d-hostile", "claims-triage", at, 0.9)
	out.attrs[c.ModelRecommendation] = hostile
	s.Write(t, request("svc", out, read("d-hostile", "claims-triage", hostile, at, at.Add(-time.Second))))
	s.Refresh(t)
	s.InsertAlert(t, storetest.Alert{Name: "DecisionSourceStale", State: "firing", ActiveAt: at, FiredAt: at, Value: 1,
		Labels: map[string]string{"workflow": "claims-triage", "source": hostile}, Annotations: map[string]string{"summary": hostile + " is stale"}})

	for _, args := range [][]string{{"decision", "d-hostile"}, {"sources"}, {"alerts"}} {
		text, code := dtctl(t, s, args...)
		require.Equal(t, 0, code, "%v: %s", args, text)
		for _, b := range []byte{0x1b, 0x07, 0x00, 0xff, 0x9b} {
			assert.NotContains(t, text, string([]byte{b}), "%v prints byte %#x raw", args, b)
		}
		assert.NotContains(t, text, "\u202e", args)
		assert.True(t, utf8.ValidString(text), args)
		assert.Contains(t, text, `x\x1b]0;owned\x07\x00\u{202e}\xff\x9b2J`, "%v shows it escaped", args)
	}
	js, code := dtctl(t, s, "--json", "decision", "d-hostile")
	require.Equal(t, 0, code, js)
	assert.Contains(t, js, `x\u001b]0;owned\u0007\u0000`, "JSON keeps the value, escaped by encoding/json")
}
