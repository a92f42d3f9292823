package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/decisiontrace/decisiontrace/internal/contract"
	"github.com/decisiontrace/decisiontrace/internal/rules"
	"github.com/decisiontrace/decisiontrace/internal/storetest"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
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

// base is when the test workload starts: a fixed day, so that nothing
// depends on today's date (the panels' range is the workload's).
var base = time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC)

// TestEveryQueryOnClickHouse runs every panel's SQL from the committed JSON
// and every variable's and annotation's (TestCommittedJSONIsCurrent keeps
// the JSON equal to them), expanded as Grafana and the plugin expand it, with every variable at All and with values selected,
// on two stores holding the same realistic workload (storetest.Workload):
// one with every request delivered once, one with every request delivered
// again in other batch compositions (and some a third time).
//
//   - runs: on the first, each query returns rows with the columns its
//     panel expects, and some panels show what the workload holds;
//   - redelivery: each query returns the same rows on both.
func TestEveryQueryOnClickHouse(t *testing.T) {
	w := storetest.NewWorkload(base)
	once, twice := storetest.New(t, "dt_dash"), storetest.New(t, "dt_dash")
	var wg sync.WaitGroup
	var errOnce, errTwice error
	wg.Add(2)
	go func() { defer wg.Done(); errOnce = once.LoadWorkload(context.Background(), w, w.Requests) }()
	go func() {
		defer wg.Done()
		errTwice = twice.LoadWorkload(context.Background(), w, storetest.Redelivered(w.Requests))
	}()
	wg.Wait()
	require.NoError(t, errOnce)
	require.NoError(t, errTwice)
	events := "SELECT count() FROM {db}.events"
	distinctEvents := "SELECT uniqExact(event_id) FROM {db}.events"
	require.Equal(t, once.Count(t, events), once.Count(t, distinctEvents), "delivered once: no duplicate rows")
	require.Equal(t, once.Count(t, distinctEvents), twice.Count(t, distinctEvents), "the same events")
	require.Greater(t, twice.Count(t, events), 2*twice.Count(t, distinctEvents), "delivered twice, some three times: duplicate rows landed")

	connOnce, connTwice := connect(t, once), connect(t, twice)
	expected := map[string]Panel{}
	for _, sp := range Specs() {
		for _, p := range sp.Panels {
			expected[sp.UID+"/"+p.Title] = p
		}
	}
	type query struct {
		name, sql string
		columns   []string // nil: not checked
	}
	var queries []query
	boards := loaded(t)
	for _, sp := range Specs() {
		for _, p := range boards[sp.UID].Panels {
			title := *p.Panel.Title
			want, ok := expected[sp.UID+"/"+title]
			require.True(t, ok, "%s: panel %q has no expectation", sp.UID, title)
			queries = append(queries, query{sp.UID + "/" + title, p.Panel.Targets[0].(Query).RawSQL, want.Columns})
		}
	}
	for _, v := range []string{"workflow", "model_version", "source"} {
		sql, _ := VariableSQL(v)
		queries = append(queries, query{"variable/" + v, sql, []string{v}})
	}
	queries = append(queries, query{"annotations", AnnotationSQL, AnnotationColumns})

	selections := []struct {
		name string
		vars map[string][]string
	}{
		{"all", map[string][]string{"workflow": nil, "model_version": nil, "source": nil, "decision_id": {w.Complete[0]}}},
		{"selected", map[string][]string{"workflow": {"claims-triage", "loan-underwriting"}, "model_version": {"2025.11.0"},
			"source": {"policy-db", "document-store"}, "decision_id": {w.LateContext}}},
	}
	for _, sel := range selections {
		e := expansion{from: w.Start, to: w.End, interval: time.Minute, vars: sel.vars}
		for _, q := range queries {
			t.Run("runs/"+sel.name+"/"+q.name, func(t *testing.T) {
				cols, rows := result(t, connOnce, e, q.sql)
				if q.columns != nil {
					assert.Equal(t, q.columns, cols)
				}
				assert.NotEmpty(t, rows, "the panel shows data")
			})
			t.Run("redelivery/"+sel.name+"/"+q.name, func(t *testing.T) {
				_, a := result(t, connOnce, e, q.sql)
				_, b := result(t, connTwice, e, q.sql)
				sameRows(t, a, b)
			})
		}
	}

	// What some panels show, beyond their shape.
	e := expansion{from: w.Start, to: w.End, interval: time.Minute, vars: selections[0].vars}
	t.Run("values", func(t *testing.T) {
		// A queue that grows in the data grows on the panel.
		growth := values(t, connOnce, e, panelSQL(t, "decisiontrace-workflow", "Queue growth per interval"), "growth", "1")
		assert.Positive(t, slices.Max(growth), "queue growth shows growth")
		// policy-db's stale episode (twenty minutes of data 20 minutes old,
		// 90 s budget) crosses the budget line from 90 s into it, and never
		// because of a single old cached read.
		ratio := values(t, connOnce, e, panelSQL(t, "decisiontrace-data", "Source age ÷ budget"), "age_over_budget", "source = 'claims-triage/policy-db'")
		over := 0
		for _, v := range ratio {
			if v > 1 {
				over++
			}
		}
		assert.InDelta(t, 18, over, 2, "minutes of claims-triage/policy-db over its budget")
		// document-store's reads arrive 4 minutes late: its lag shows, and
		// the last minutes' decisions wait for it.
		lag := values(t, connOnce, e, panelSQL(t, "decisiontrace-data", "Read lag and pending decisions"), "lag_s", "source = 'document-store'")
		assert.InDelta(t, 240, lag[0], 5)
		pending := values(t, connOnce, e, panelSQL(t, "decisiontrace-data", "Read lag and pending decisions"), "pending_decisions", "source = 'document-store'")
		assert.Equal(t, []float64{12}, pending, "four minutes of loan-underwriting decisions, three a minute")
		assert.Equal(t, []float64{12}, values(t, connOnce, e, panelSQL(t, "decisiontrace-overview", "Pending decisions"), "pending", "1"))
		contexts := values(t, connOnce, e, panelSQL(t, "decisiontrace-overview", "Verdicts by context"), "decisions", "context = 'pending'")
		assert.Equal(t, 12.0, sum(contexts))
		// Each decision's outcome comes 10 minutes after its output, its
		// action 30 s to 5.5 minutes after.
		for _, col := range []string{"p50_s", "p95_s"} {
			for _, v := range values(t, connOnce, e, panelSQL(t, "decisiontrace-business", "Decision latency (recommendation to outcome, p50 and p95, by outcome time)"), col, "1") {
				assert.InDelta(t, 600, v, 1e-6, col)
			}
			for _, v := range values(t, connOnce, e, panelSQL(t, "decisiontrace-human", "Time to action (p50, p95)"), col, "1") {
				assert.True(t, v >= 30 && v <= 330, "%s %v", col, v)
			}
		}
		// Each decision acted on counts once, by its latest action: the
		// shares of a model version add up to 1.
		_, trust := result(t, connOnce, e, panelSQL(t, "decisiontrace-human", "Trust by model version"))
		require.NotEmpty(t, trust)
		for _, r := range trust {
			assert.InDelta(t, 1, r[2].(float64)+r[3].(float64)+r[4].(float64)+r[5].(float64)+r[6].(float64), 1e-9, "%v", r[0])
		}
		// The unsupported-certainty share leaves the pending decisions out.
		share := values(t, connOnce, e, panelSQL(t, "decisiontrace-overview", "Unsupported certainty"), "unsupported", "1")
		judged := once.Count(t, "SELECT countIf(context != 'pending') FROM {db}.verdicts FINAL WHERE decision_time >= ? AND decision_time <= ?", w.Start, w.End)
		unsupported := once.Count(t, "SELECT countIf(unsupported_certainty) FROM {db}.verdicts FINAL WHERE decision_time >= ? AND decision_time <= ?", w.Start, w.End)
		assert.Positive(t, unsupported)
		assert.InDelta(t, float64(unsupported)/float64(judged), share[0], 1e-9)
	})
	t.Run("slo budgets", func(t *testing.T) {
		// The panel counts each SLO as the contract's burn-rate rules do:
		// the same bad share as their SLI over the range, and the budget
		// left that follows from it.
		title := "Decision SLOs: error budget left over the range"
		cols, rows := result(t, connOnce, e, panelSQL(t, "decisiontrace-overview", title))
		col := func(name string) int { return slices.Index(cols, name) }
		got, left := map[string]float64{}, map[string]float64{}
		for _, r := range rows {
			key := r[col("workflow")].(string) + "/" + r[col("slo")].(string)
			got[key] = r[col("bad_share")].(float64)
			objective := r[col("objective")].(float64)
			left[key] = r[col("budget_left")].(float64)
			assert.InDelta(t, 1-got[key]/(1-objective), left[key], 1e-9, key)
		}
		want := map[string]float64{}
		for wf, ct := range storetest.WorkloadContracts(t) {
			rs, err := rules.Defaults(ct)
			require.NoError(t, err)
			for _, r := range rs {
				if r.Alert != "DecisionSLOBurnFast" {
					continue
				}
				share := rules.Rule{Alert: "Share", Kind: rules.KindRatio, Count: r.Count, Denominator: r.Denominator, Numerator: r.Numerator,
					Workflow: wf, Window: contract.Duration(w.End.Sub(w.Start)), MaxRate: 1e-12, MinCount: 1}
				samples, err := share.Run(context.Background(), once.Conn, once.DB, w.End)
				require.NoError(t, err)
				v := 0.0
				if len(samples) == 1 {
					v = samples[0].Value
				}
				want[wf+"/"+r.Labels["slo"]] = v
			}
		}
		require.Len(t, want, 5, "every SLI of the workload's contracts")
		assert.InDeltaMapValues(t, want, got, 1e-9)
		for key, v := range got {
			if strings.HasSuffix(key, "/accepted") || strings.HasSuffix(key, "/good") || strings.HasSuffix(key, "/fresh") {
				assert.Positive(t, v, "%s: the workload has bad ones", key)
			}
		}
	})
	t.Run("explorer", func(t *testing.T) {
		// The decision whose reads have not arrived is pending, waiting for
		// document-store; the stale one is unsupported certainty.
		for id, want := range map[string][]string{
			w.Pending:     {"pending", "document-store", "no"},
			w.Unsupported: {"stale", "", "yes"},
		} {
			e := expansion{from: w.Start, to: w.End, interval: time.Minute, vars: map[string][]string{"decision_id": {id}}}
			_, rows := result(t, connOnce, e, "SELECT context, pending, if(unsupported_certainty, 'yes', 'no') FROM ("+panelSQL(t, "decisiontrace-explorer", "Verdict")+")")
			require.Len(t, rows, 1, id)
			assert.Equal(t, want, []string{rows[0][0].(string), rows[0][1].(string), rows[0][2].(string)}, id)
		}
		// The explorer's recent list is the unsupported decisions of the range.
		_, rows := result(t, connOnce, e, panelSQL(t, "decisiontrace-explorer", "Recent decisions confident on stale or missing context"))
		ids := make([]string, len(rows))
		for i, r := range rows {
			ids[i] = r[1].(string)
		}
		assert.Contains(t, ids, w.Unsupported)
	})
}

func sum(vs []float64) float64 {
	var s float64
	for _, v := range vs {
		s += v
	}
	return s
}

// connect opens a connection whose default database is the store's, as the
// datasource's is, with the defaults of the oldest ClickHouse the project
// supports (24.8) where they differ from the test server's.
func connect(t *testing.T, s *storetest.Store) driver.Conn {
	t.Helper()
	user, pass := testenv.ClickHouseAuth()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{s.Addr},
		Auth:     clickhouse.Auth{Database: s.DB, Username: user, Password: pass},
		Settings: clickhouse.Settings{"compatibility": "24.8"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
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

// result runs a query and returns its columns and rows, each value
// dereferenced (nil for NULL), times in UTC.
func result(t *testing.T, conn driver.Conn, e expansion, sql string) ([]string, [][]any) {
	t.Helper()
	q, err := e.expand(sql)
	require.NoError(t, err)
	rows, err := conn.Query(context.Background(), q)
	require.NoError(t, err, "query:\n%s", q)
	defer rows.Close()
	types := rows.ColumnTypes()
	var out [][]any
	for rows.Next() {
		ptrs := make([]any, len(types))
		for i, ct := range types {
			ptrs[i] = reflect.New(ct.ScanType()).Interface()
		}
		require.NoError(t, rows.Scan(ptrs...))
		row := make([]any, len(ptrs))
		for i, p := range ptrs {
			v := reflect.ValueOf(p).Elem()
			for v.Kind() == reflect.Pointer {
				if v.IsNil() {
					break
				}
				v = v.Elem()
			}
			switch {
			case v.Kind() == reflect.Pointer:
				row[i] = nil
			case v.Type() == reflect.TypeOf(time.Time{}):
				row[i] = v.Interface().(time.Time).UTC()
			default:
				row[i] = v.Interface()
			}
		}
		out = append(out, row)
	}
	require.NoError(t, rows.Err())
	return rows.Columns(), out
}

// sameRows compares two results as sets of rows; floating-point values
// may differ in their last bits (the order of a sum).
func sameRows(t *testing.T, a, b [][]any) {
	t.Helper()
	key := func(r []any) string {
		parts := make([]string, len(r))
		for i, v := range r {
			if f, ok := toFloat(v); ok {
				parts[i] = fmt.Sprintf("%.6g", f)
			} else {
				parts[i] = fmt.Sprint(v)
			}
		}
		return strings.Join(parts, "\x00")
	}
	sortRows := func(rs [][]any) {
		sort.SliceStable(rs, func(i, j int) bool { return key(rs[i]) < key(rs[j]) })
	}
	sortRows(a)
	sortRows(b)
	require.Equal(t, len(a), len(b), "rows")
	for i := range a {
		for j := range a[i] {
			fa, okA := toFloat(a[i][j])
			fb, okB := toFloat(b[i][j])
			if okA && okB {
				if !(math.IsNaN(fa) && math.IsNaN(fb)) {
					assert.InEpsilon(t, 1+fa, 1+fb, 1e-9, "row %d column %d: %v vs %v", i, j, a[i], b[i])
				}
				continue
			}
			assert.Equal(t, a[i][j], b[i][j], "row %d column %d: %v vs %v", i, j, a[i], b[i])
		}
	}
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	}
	return 0, false
}
