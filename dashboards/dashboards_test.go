package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/storetest"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
	"github.com/decisiontrace/decisiontrace/processors/decisionprocessor"
	"github.com/decisiontrace/decisiontrace/receivers/alertrulesreceiver"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestCommittedJSONIsCurrent(t *testing.T) {
	files, err := Generate()
	require.NoError(t, err)
	for _, name := range Files(files) {
		committed, err := os.ReadFile(name)
		require.NoError(t, err, "%s is not committed: go run ./cmd/dtdashboards", name)
		assert.Equal(t, string(files[name]), string(committed), "%s is stale: go run ./cmd/dtdashboards", name)
	}
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	assert.Equal(t, string(Readme()), string(readme), "README.md is stale: go run ./cmd/dtdashboards")
	onDisk, err := filepath.Glob("*.json")
	require.NoError(t, err)
	assert.Len(t, onDisk, len(files), "every JSON file here is generated")
}

// loaded reads the committed dashboards into the foundation SDK's type.
func loaded(t *testing.T) map[string]dashboard.Dashboard {
	t.Helper()
	plugins.RegisterDefaultPlugins()
	Register()
	out := map[string]dashboard.Dashboard{}
	for _, s := range Specs() {
		b, err := os.ReadFile(s.UID + ".json")
		require.NoError(t, err)
		var d dashboard.Dashboard
		require.NoError(t, json.Unmarshal(b, &d), s.UID)
		out[s.UID] = d
	}
	return out
}

func TestJSONUnmarshalsIntoTheSDKDashboard(t *testing.T) {
	boards := loaded(t)
	for _, s := range Specs() {
		d := boards[s.UID]
		require.NotNil(t, d.Uid)
		assert.Equal(t, s.UID, *d.Uid)
		require.Len(t, d.Panels, len(s.Panels), s.UID)
		for i, p := range d.Panels {
			require.NotNil(t, p.Panel, "%s panel %d", s.UID, i)
			require.Len(t, p.Panel.Targets, 1)
			q, ok := p.Panel.Targets[0].(Query)
			require.True(t, ok, "%s panel %d: target decodes as the ClickHouse query, got %T", s.UID, i, p.Panel.Targets[0])
			assert.Equal(t, s.Panels[i].SQL, q.RawSQL)
			assert.Equal(t, DatasourceUID, *q.Datasource.Uid)
		}
	}
}

// TestEveryQueryRunsOnClickHouse runs every panel's, variable's and
// annotation's SQL from the committed JSON, expanded as Grafana and the
// plugin expand it, on the real ClickHouse holding decisions that went
// through the decision processor and rules the alertrules receiver
// evaluated. Each must return rows with the columns its panel expects,
// with every variable at All and with workflows selected.
func TestEveryQueryRunsOnClickHouse(t *testing.T) {
	s := storetest.New(t, "dt_dash", nil)
	now := time.Now().UTC()
	ids := load(t, s, now)
	evaluate(t, s)

	user, pass := testenv.ClickHouseAuth()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{s.Addr},
		Auth: clickhouse.Auth{Database: s.DB, Username: user, Password: pass}})
	require.NoError(t, err)
	defer conn.Close()

	expected := map[string]Panel{}
	for _, sp := range Specs() {
		for _, p := range sp.Panels {
			expected[sp.UID+"/"+p.Title] = p
		}
	}
	selections := map[string]map[string][]string{
		"all": {"workflow": nil, "model_version": nil, "source": nil, "decision_id": {ids[0]}},
		"selected": {"workflow": {"claims-triage", "loan-underwriting"}, "model_version": {"2025.11.0"},
			"source": {"policy-db", "credit-bureau"}, "decision_id": {ids[1]}},
	}
	for selName, vars := range selections {
		e := expansion{from: now.Add(-6 * time.Hour), to: now.Add(time.Minute), interval: time.Minute, vars: vars}
		for uid, d := range loaded(t) {
			for _, p := range d.Panels {
				title := *p.Panel.Title
				want, ok := expected[uid+"/"+title]
				require.True(t, ok, "%s: panel %q has no expectation", uid, title)
				t.Run(selName+"/"+uid+"/"+title, func(t *testing.T) {
					cols, rows := run(t, conn, e, p.Panel.Targets[0].(Query).RawSQL)
					assert.Equal(t, want.Columns, cols)
					assert.Positive(t, rows, "the panel shows data")
				})
			}
		}
		for _, v := range []string{"workflow", "model_version", "source"} {
			sql, _ := VariableSQL(v)
			t.Run(selName+"/variable/"+v, func(t *testing.T) {
				_, rows := run(t, conn, e, sql)
				assert.Positive(t, rows)
			})
		}
		// What two panels show, beyond their shape: a queue that grows in the
		// data grows on the panel, and the stale episode of policy-db (twenty
		// minutes at most 90 s budget) crosses the budget line while the
		// source is otherwise within it.
		if selName == "all" {
			growth := values(t, conn, e, panelSQL(t, "decisiontrace-workflow", "Queue growth per interval"), "growth", "1")
			assert.Positive(t, slices.Max(growth), "queue growth shows growth")
			// Over budget from 90 s into the twenty stale minutes, and never
			// because of a single old cached read.
			ratio := values(t, conn, e, panelSQL(t, "decisiontrace-data", "Source age ÷ budget"), "age_over_budget", "source = 'claims-triage/policy-db'")
			over := 0
			for _, v := range ratio {
				if v > 1 {
					over++
				}
			}
			assert.InDelta(t, 18, over, 2, "minutes of claims-triage/policy-db over its budget")
		}
		t.Run(selName+"/annotations", func(t *testing.T) {
			cols, rows := run(t, conn, e, AnnotationSQL)
			assert.Equal(t, AnnotationColumns, cols)
			assert.Positive(t, rows)
		})
	}
}

func panelSQL(t *testing.T, uid, title string) string {
	t.Helper()
	for _, s := range Specs() {
		for _, p := range s.Panels {
			if s.UID == uid && p.Title == title {
				return p.SQL
			}
		}
	}
	t.Fatalf("no panel %s/%s", uid, title)
	return ""
}

// values returns one numeric column of a panel's rows.
func values(t *testing.T, conn driver.Conn, e expansion, sql, col, where string) []float64 {
	t.Helper()
	q, err := e.expand(sql)
	require.NoError(t, err)
	rows, err := conn.Query(context.Background(), "SELECT toFloat64("+col+") FROM ("+q+") WHERE "+col+" IS NOT NULL AND "+where)
	require.NoError(t, err)
	defer rows.Close()
	var out []float64
	for rows.Next() {
		var v float64
		require.NoError(t, rows.Scan(&v))
		out = append(out, v)
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, out, col)
	return out
}

func run(t *testing.T, conn driver.Conn, e expansion, sql string) ([]string, int) {
	t.Helper()
	q, err := e.expand(sql)
	require.NoError(t, err)
	rows, err := conn.Query(context.Background(), q)
	require.NoError(t, err, "query:\n%s", q)
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	require.NoError(t, rows.Err())
	return rows.Columns(), n
}

// load writes three hours of decisions of three workflows (two with
// contracts) through the decision processor: every layer, a stale-source
// episode, unresolved entity IDs, exceptions, rework, queue depths and
// source freshness. It returns two decision IDs with all five layers.
func load(t *testing.T, s *storetest.Store, now time.Time) []string {
	t.Helper()
	dir := t.TempDir()
	aliases := filepath.Join(dir, "aliases.csv")
	require.NoError(t, os.WriteFile(aliases, []byte("system,local_id,canonical_id\nclaims-dw,CLM-1,entity-1\nclaims-dw,CLM-2,entity-2\n"), 0o600))
	f := decisionprocessor.NewFactory()
	cfg := f.CreateDefaultConfig().(*decisionprocessor.Config)
	cfg.Contracts = []string{"../deploy/contracts/*.yaml"}
	cfg.Aliases.Files = []string{aliases}
	ctx := context.Background()
	proc, err := f.CreateLogs(ctx, processortest.NewNopSettings(f.Type()), cfg, s.Logs)
	require.NoError(t, err)
	require.NoError(t, proc.Start(ctx, componenttest.NewNopHost()))

	type wf struct {
		name, queue string
		sources     []string
		versions    []string
	}
	workflows := []wf{
		{"claims-triage", "manual-review", []string{"policy-db", "claims-history", "fraud-signals"}, []string{"2025.09.1", "2025.11.0"}},
		{"loan-underwriting", "underwriter-review", []string{"credit-bureau", "document-store", "income-verification"}, []string{"2025.10.2", "2025.11.0"}},
		{"support-assist", "", []string{"crm-profile"}, []string{"2025.08.0"}},
	}
	r := rand.New(rand.NewPCG(1, 2))
	var ids []string
	start := now.Add(-3 * time.Hour)
	for k := 0; k < 180; k++ {
		at := start.Add(time.Duration(k) * time.Minute)
		ld := plog.NewLogs()
		lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		add := func(ts time.Time, attrs map[string]any) {
			lr := lrs.AppendEmpty()
			lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
			require.NoError(t, lr.Attributes().FromRaw(attrs))
		}
		for wi, w := range workflows {
			for _, src := range w.sources {
				asOf := at.Add(-30 * time.Second)
				if src == "policy-db" && k >= 60 && k < 80 {
					asOf = start.Add(60 * time.Minute) // twenty minutes stale
				}
				add(at, map[string]any{c.DecisionWorkflow: w.name, c.DecisionLayer: "data", c.DecisionEvent: "source.freshness",
					c.DataSource: src, c.DataAsOf: asOf.Format(time.RFC3339Nano), c.DataAvailable: r.Float64() > 0.02})
			}
			if w.queue != "" {
				add(at, map[string]any{c.DecisionWorkflow: w.name, c.DecisionLayer: "workflow", c.DecisionEvent: "queue.depth",
					c.WorkflowQueue: w.queue, c.WorkflowQueueDepth: int64(100 + r.IntN(50) + k)})
			}
			for j := 0; j < 3; j++ {
				id := fmt.Sprintf("%s-%d-%d", w.name, k, j)
				if wi == 0 && j == 0 && len(ids) < 2 {
					ids = append(ids, id)
				}
				d := at.Add(time.Duration(j) * 10 * time.Second)
				base := func(layer, event string, m map[string]any) map[string]any {
					m[c.DecisionID], m[c.DecisionWorkflow], m[c.DecisionLayer], m[c.DecisionEvent] = id, w.name, layer, event
					return m
				}
				for _, src := range w.sources {
					asOf := d.Add(-20 * time.Second)
					if src == "policy-db" && k >= 60 && k < 80 {
						asOf = start.Add(60 * time.Minute)
					}
					if r.Float64() < 0.03 {
						asOf = d.Add(-3 * time.Hour) // a cached read: old, while the source is fresh
					}
					add(d, base("data", "context.read", map[string]any{c.DataSource: src, c.DataAsOf: asOf.Format(time.RFC3339Nano),
						c.DataComplete: r.Float64() > 0.05, c.DataEntitySystem: "claims-dw", c.DataEntityID: fmt.Sprintf("CLM-%d", 1+r.IntN(3))}))
				}
				add(d.Add(time.Second), base("model", "model.output", map[string]any{c.ModelName: w.name + "-llm",
					c.ModelVersion: w.versions[r.IntN(len(w.versions))], c.ModelConfidence: 0.5 + r.Float64()/2,
					c.ModelLatencyMS: 200 + r.Float64()*800, c.ModelUnsafe: r.Float64() < 0.05, c.ModelRecommendation: "approve",
					c.GenAIUsageInputTokens: int64(500 + r.IntN(500)), c.GenAIUsageOutputTokens: int64(50 + r.IntN(100))}))
				routed := map[string]any{c.WorkflowRoute: []string{"auto", "review", "escalated"}[r.IntN(3)]}
				if w.queue != "" && routed[c.WorkflowRoute] != "auto" {
					routed[c.WorkflowQueue] = w.queue
				}
				add(d.Add(2*time.Second), base("workflow", "workflow.routed", routed))
				if r.Float64() < 0.1 {
					add(d.Add(3*time.Second), base("workflow", "workflow.exception", map[string]any{c.WorkflowExceptionType: "timeout"}))
				}
				if r.Float64() < 0.1 {
					add(d.Add(4*time.Second), base("workflow", "workflow.rework", map[string]any{}))
				}
				add(d.Add(time.Duration(30+r.IntN(300))*time.Second), base("human", "human.action", map[string]any{
					c.HumanAction: []string{"accepted", "accepted", "modified", "overridden", "ignored", "escalated"}[r.IntN(6)],
					c.HumanActor:  fmt.Sprintf("reviewer-%d", r.IntN(8))}))
				add(d.Add(10*time.Minute), base("business", "business.outcome", map[string]any{
					c.BusinessOutcome: []string{"paid", "denied", "reopened"}[r.IntN(3)], c.BusinessCycleTimeS: 600 + r.Float64()*3600,
					c.BusinessCost: r.Float64() * 20}))
			}
		}
		require.NoError(t, proc.ConsumeLogs(ctx, ld))
	}
	// Shutdown judges every decision still open and writes its verdict.
	require.NoError(t, proc.Shutdown(ctx))
	return ids
}

// evaluate runs the alertrules receiver with the shipped rules and
// contracts until an alert fires, so alert_state, alert_history and
// source_budgets hold what a running collector keeps there.
func evaluate(t *testing.T, s *storetest.Store) {
	t.Helper()
	f := alertrulesreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*alertrulesreceiver.Config)
	user, pass := testenv.ClickHouseAuth()
	cfg.Endpoint, cfg.Username, cfg.Password, cfg.Database = "clickhouse://"+s.Addr, user, configopaque.String(pass), s.DB
	cfg.Contracts = []string{"../deploy/contracts/*.yaml"}
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(rules, []byte(`
groups:
  - name: g
    interval: 200ms
    rules:
      - alert: ClaimsOverridden
        kind: override_rate
        workflow: claims-triage
        window: 6h
        max_rate: 0.01
        min_count: 1
        labels: {severity: ticket, team: claims-ops}
        annotations: {summary: 'override rate {{ printf "%.2f" .Value }}'}
`), 0o600))
	cfg.RuleFiles = []string{rules}
	require.NoError(t, cfg.Validate())
	sink := new(consumertest.LogsSink)
	rcv, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()
	require.Eventually(t, func() bool {
		var n uint64
		err := s.Conn.QueryRow(context.Background(), "SELECT count() FROM "+s.DB+".alert_state FINAL WHERE state = 'firing'").Scan(&n)
		return err == nil && n > 0
	}, 30*time.Second, 100*time.Millisecond, "an alert fires")
}
