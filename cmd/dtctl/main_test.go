package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/storetest"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
	"github.com/decisiontrace/decisiontrace/receivers/alertrulesreceiver"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type ev struct {
	ago   time.Duration
	attrs map[string]any
}

func write(t *testing.T, s *storetest.Store, evs ...ev) {
	t.Helper()
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	now := time.Now()
	for _, e := range evs {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(-e.ago)))
		require.NoError(t, lr.Attributes().FromRaw(e.attrs))
	}
	s.Write(t, ld)
}

// A claims decision as the demo makes it: every layer, and the verdict the
// decision processor adds (confident on stale policy data).
func claim(id string) []ev {
	base := map[string]any{c.DecisionID: id, c.DecisionWorkflow: "claims-triage"}
	with := func(m map[string]any) map[string]any {
		for k, v := range base {
			m[k] = v
		}
		return m
	}
	return []ev{
		{60 * time.Second, with(map[string]any{c.DecisionLayer: "data", c.DecisionEvent: "context.read", c.DataSource: "policy-db",
			c.DataAsOf: time.Now().Add(-10 * time.Minute).Format(time.RFC3339), c.DataEntitySystem: "claims-dw", c.DataEntityID: "CLM-1"})},
		{59 * time.Second, with(map[string]any{c.DecisionLayer: "model", c.DecisionEvent: "model.output", c.ModelName: "claims-triage-llm",
			c.ModelVersion: "2025.11.0", c.ModelConfidence: 0.93, c.ModelRecommendation: "approve"})},
		{59 * time.Second, with(map[string]any{c.DecisionLayer: "model", c.DecisionEvent: "decision.verdict", c.VerdictContext: "stale",
			c.VerdictStaleSource: "policy-db", c.VerdictStaleAgeS: 540.0, c.VerdictStaleBudgetS: 90.0,
			c.VerdictUnsupportedCertainty: true, c.VerdictBehaviour: "escalate"})},
		{58 * time.Second, with(map[string]any{c.DecisionLayer: "workflow", c.DecisionEvent: "workflow.routed", c.WorkflowRoute: "escalated",
			c.WorkflowQueue: "manual-review"})},
		{30 * time.Second, with(map[string]any{c.DecisionLayer: "human", c.DecisionEvent: "human.action", c.HumanAction: "overridden",
			c.HumanActor: "adjuster-7"})},
		{10 * time.Second, with(map[string]any{c.DecisionLayer: "business", c.DecisionEvent: "business.outcome", c.BusinessOutcome: "paid"})},
	}
}

func dtctl(t *testing.T, s *storetest.Store, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	all := append([]string{"--endpoint", "clickhouse://" + s.Addr, "--database", s.DB, "--contracts", "../../deploy/contracts/*.yaml"}, args...)
	code := run(context.Background(), all, &out, zerolog.Nop())
	return out.String(), code
}

func TestDecisionPrintsTheFiveLayerTimelineWithItsVerdict(t *testing.T) {
	s := storetest.New(t, "dt_ctl", nil)
	write(t, s, claim("claim-1")...)
	write(t, s, claim("claim-2")...)

	out, code := dtctl(t, s, "decision", "claim-1")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "decision claim-1  workflow claims-triage")
	assert.Contains(t, out, "layers   data ✓  model ✓  workflow ✓  human ✓  business ✓")
	assert.Contains(t, out, "verdict  context stale (policy-db 540s old, budget 90s), UNSUPPORTED CERTAINTY, behaviour escalate")
	var order []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && strings.HasPrefix(f[0], "20") {
			order = append(order, f[2]+"/"+f[3])
		}
	}
	assert.Equal(t, []string{"data/context.read", "model/model.output", "model/decision.verdict", "workflow/workflow.routed",
		"human/human.action", "business/business.outcome"}, order, "in time order, the verdict after the output it judges")
	assert.Contains(t, out, "action=overridden actor=adjuster-7")

	out, code = dtctl(t, s, "--json", "decision", "claim-1")
	require.Equal(t, 0, code)
	var v decisionView
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	assert.Equal(t, []string{"data", "model", "workflow", "human", "business"}, v.LayersSeen)
	assert.Empty(t, v.Missing)
	require.NotNil(t, v.Verdict)
	assert.True(t, v.Verdict.UnsupportedCertainty)
	assert.Len(t, v.Timeline, 6)

	out, code = dtctl(t, s, "decision", "claim-2", "--json")
	require.Equal(t, 0, code, "flags after the command")
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	assert.Equal(t, "claim-2", v.DecisionID)

	_, code = dtctl(t, s, "decision", "no-such-claim")
	assert.Equal(t, 1, code)
	_, code = dtctl(t, s, "decision")
	assert.Equal(t, 2, code, "decision needs an ID")
	_, code = dtctl(t, s, "decision", "")
	assert.Equal(t, 2, code, "an empty ID would list every signal without a decision")
}

func TestSourcesAgainstContractBudgets(t *testing.T) {
	s := storetest.New(t, "dt_ctl", nil)
	write(t, s,
		ev{5 * time.Second, map[string]any{c.DecisionWorkflow: "claims-triage", c.DecisionLayer: "data", c.DecisionEvent: "source.freshness",
			c.DataSource: "policy-db", c.DataAsOf: time.Now().Add(-10 * time.Minute).Format(time.RFC3339), c.DataAvailable: true}},
		ev{5 * time.Second, map[string]any{c.DecisionWorkflow: "claims-triage", c.DecisionLayer: "data", c.DecisionEvent: "source.freshness",
			c.DataSource: "claims-history", c.DataAsOf: time.Now().Add(-time.Minute).Format(time.RFC3339), c.DataAvailable: true}},
		ev{5 * time.Second, map[string]any{c.DecisionWorkflow: "claims-triage", c.DecisionLayer: "data", c.DecisionEvent: "source.freshness",
			c.DataSource: "fraud-signals", c.DataAvailable: false, c.DataError: "dial tcp: connection refused"}},
		ev{5 * time.Second, map[string]any{c.DecisionWorkflow: "support-assist", c.DecisionLayer: "data", c.DecisionEvent: "source.freshness",
			c.DataSource: "crm-profile", c.DataAsOf: time.Now().Format(time.RFC3339)}},
	)
	out, code := dtctl(t, s, "--json", "sources")
	require.Equal(t, 0, code, out)
	var v sourcesView
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	status := map[string]string{}
	for _, src := range v.Sources {
		status[src.Workflow+"/"+src.Source] = src.Status
	}
	assert.Equal(t, map[string]string{
		"claims-triage/policy-db":      "stale", // 10 minutes against 90 s
		"claims-triage/claims-history": "ok",
		"claims-triage/fraud-signals":  "unavailable",
		"support-assist/crm-profile":   "no_budget",
		// Budgeted by the loan-underwriting contract, never heard of.
		"loan-underwriting/credit-bureau":       "silent",
		"loan-underwriting/document-store":      "silent",
		"loan-underwriting/income-verification": "silent",
	}, status)

	out, code = dtctl(t, s, "sources")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "⚠ stale")
	assert.Contains(t, out, "dial tcp: connection refused")
}

func TestAlertsWithExampleDecisions(t *testing.T) {
	s := storetest.New(t, "dt_ctl", nil)
	write(t, s, claim("claim-1")...)
	write(t, s, claim("claim-2")...)

	// The alertrules receiver evaluates a rule over the store and keeps its
	// state there, as in the collector.
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(rules, []byte(`
groups:
  - name: g
    interval: 100ms
    rules:
      - alert: UnsupportedCertainty
        kind: unsupported_certainty_rate
        window: 10m
        max_rate: 0.5
        min_count: 1
        labels: {severity: page, team: claims-oncall}
        annotations:
          summary: '{{ printf "%.0f" (mul100 .Value) }}% unsupported'
          example_decisions: '{{ join .ExampleDecisions " " }}'
`), 0o600))
	f := alertrulesreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*alertrulesreceiver.Config)
	user, pass := testenv.ClickHouseAuth()
	cfg.Endpoint, cfg.Username, cfg.Password = "clickhouse://"+s.Addr, user, configopaque.String(pass)
	cfg.Database, cfg.RuleFiles = s.DB, []string{rules}
	sink := new(consumertest.LogsSink)
	rcv, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()

	var v alertsView
	require.Eventually(t, func() bool {
		out, code := dtctl(t, s, "--json", "alerts")
		return code == 0 && json.Unmarshal([]byte(out), &v) == nil && len(v.Alerts) == 1 && v.Alerts[0].State == "firing"
	}, 20*time.Second, 200*time.Millisecond)
	a := v.Alerts[0]
	assert.Equal(t, "UnsupportedCertainty", a.Name)
	assert.Equal(t, map[string]string{"workflow": "claims-triage", "severity": "page", "team": "claims-oncall"}, a.Labels)
	assert.ElementsMatch(t, []string{"claim-1", "claim-2"}, a.ExampleDecisions)
	assert.Equal(t, "100% unsupported", a.Summary)

	out, code := dtctl(t, s, "alerts")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "firing  UnsupportedCertainty")
	assert.Contains(t, out, "UnsupportedCertainty: 100% unsupported")
}

func TestAlertsWithoutTheEvaluatorsTables(t *testing.T) {
	s := storetest.New(t, "dt_ctl", nil)
	_, code := dtctl(t, s, "alerts")
	assert.Equal(t, 1, code)
}
