package rules

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/decisiontrace/decisiontrace/internal/alerting"
	"github.com/decisiontrace/decisiontrace/internal/chconn"
	"github.com/decisiontrace/decisiontrace/internal/contract"
)

// bindNow turns each {now} of a query into a bound parameter holding the
// evaluation time, in order among the query's other parameters.
func bindNow(q string, args []any, now time.Time) (string, []any) {
	var b strings.Builder
	out := make([]any, 0, len(args)+4)
	next := 0
	for i := 0; i < len(q); i++ {
		switch {
		case strings.HasPrefix(q[i:], "{now}"):
			b.WriteString(chconn.MilliParam)
			out = append(out, now.UnixMilli())
			i += len("{now}") - 1
		case q[i] == '?':
			b.WriteByte('?')
			if next < len(args) {
				out = append(out, args[next])
				next++
			}
		default:
			b.WriteByte(q[i])
		}
	}
	return b.String(), out
}

// Lookback bounds how far back the freshness, queue and silence kinds look
// for the latest signal: a source or layer silent for longer has no data,
// which the evaluator reports as such rather than as healthy.
const Lookback = 24 * time.Hour

// Query returns the rule's ClickHouse query over database db and its
// parameters. {now} stands for the evaluation time, bound by Run, so a rule
// can be evaluated at any instant: now in the evaluator, a test's virtual
// time in rule tests. Every query returns label columns (String) and a Float64
// column named value, one row per label set for which the condition holds.
// db must be a plain identifier (the caller validates it); everything that
// comes from configuration or data is a parameter.
func (r *Rule) Query(db string) (string, []any) {
	spec, ok := registry[r.Kind]
	if !ok {
		// The evaluator's own alerts (store unavailable, rule failing)
		// are rules without a kind, never queried.
		return "", nil
	}
	if spec.query == nil {
		return spec.merged([]*Rule{r}, db, &filters{})
	}
	return spec.query(r, db, &filters{})
}

// sortedSeconds returns a map's keys, sorted, and their durations in
// seconds: the arrays of a transform() from names to limits.
func sortedSeconds(m map[string]contract.Duration) ([]string, []float64) {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	secs := make([]float64, len(names))
	for i, n := range names {
		secs[i] = float64(seconds(m[n]))
	}
	return names, secs
}

// firingColumn is the optional UInt8 column of a query that tells its
// rows apart: 1 for a label set whose condition holds (a sample), 0 for
// one whose signals are there but do not meet it. A query that returns the
// column has data exactly when it returns a row, so one query answers both
// "what fires" and "is there anything to judge" (a separate count of the
// window's signals cost a quarter of every round). A query without it
// returns only the rows that fire, and always has data.
const firingColumn = "firing"

// dataColumn is the optional UInt8 column of a query that evaluates
// several rules whose rows are not all data for every one of them (burn
// rates over longer and shorter windows of one scan): 0 where the rule
// has nothing to judge, as if its own query had returned no row.
const dataColumn = "data"

// Run executes the rule's query and returns its firing rows. String
// columns become labels; the column named value is the value.
func (r *Rule) Run(ctx context.Context, conn driver.Conn, db string, now time.Time) ([]alerting.Sample, error) {
	samples, _, err := r.run(ctx, conn, db, now)
	return samples, err
}

// tagged names the rules in the log_comment of their query (ClickHouse's
// system.query_log, and system.processes' Settings while it runs): which
// rule loads the store is a GROUP BY away. A query that evaluates several
// rules names them all, space-separated. It replaces the context's query
// settings; rule queries carry none.
func tagged(ctx context.Context, rs ...*Rule) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"log_comment": "decisiontrace rule " + alerts(rs, " ")}))
}

// alerts is the rules' alert names, joined by sep.
func alerts(rs []*Rule, sep string) string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.Alert
	}
	return strings.Join(names, sep)
}

// resultColumn is the name of the i-th of n rules' value or firing column
// in their one query: the name itself for a query of one rule (a
// custom_sql rule's, say), name_<i> for several.
func resultColumn(name string, i, n int) string {
	if n == 1 {
		return name
	}
	return fmt.Sprintf("%s_%d", name, i)
}

// run is Run that also says whether the rule had data: any row of a query
// with a firing column, always for one without.
func (r *Rule) run(ctx context.Context, conn driver.Conn, db string, now time.Time) ([]alerting.Sample, bool, error) {
	res, err := runTogether(ctx, conn, db, now, []*Rule{r})
	if err != nil {
		return nil, false, err
	}
	return res[0].Samples, res[0].HasData, nil
}

// query is the one query of rs: a rule's own, or the merged query of
// rules with the same together key.
func query(rs []*Rule, db string) (string, []any) {
	if len(rs) == 1 {
		return rs[0].Query(db)
	}
	return registry[rs[0].Kind].merged(rs, db, &filters{})
}

// runTogether executes the one query of rs and returns each rule's firing
// rows (Samples) and whether it had data (HasData). String columns become
// labels; each rule's value and firing columns (resultColumn) are its own.
func runTogether(ctx context.Context, conn driver.Conn, db string, now time.Time, rs []*Rule) ([]Result, error) {
	named := func(err error) error {
		if len(rs) == 1 {
			return fmt.Errorf("rule %s: %w", rs[0].Alert, err)
		}
		return fmt.Errorf("rules %s (one query): %w", alerts(rs, ", "), err)
	}
	if spec := registry[rs[0].Kind]; len(rs) == 1 && spec != nil && spec.quiet != nil {
		quiet, err := spec.quiet(tagged(ctx, rs...), conn, db, now, rs[0])
		if err != nil {
			return nil, named(err)
		}
		if quiet {
			return []Result{{HasData: true}}, nil
		}
	}
	q, args := query(rs, db)
	q, args = bindNow(q, args, now)
	rows, err := conn.Query(tagged(ctx, rs...), q, args...)
	if err != nil {
		return nil, named(err)
	}
	defer rows.Close()
	cols := rows.Columns()
	n := len(rs)
	valueAt, firingAt, dataAt := make([]int, n), make([]int, n), make([]int, n)
	own := map[int]bool{}
	out := make([]Result, n)
	for i := range rs {
		valueAt[i] = slices.Index(cols, resultColumn("value", i, n))
		if valueAt[i] < 0 {
			return nil, named(fmt.Errorf("the query returns no column named %s", resultColumn("value", i, n)))
		}
		firingAt[i] = slices.Index(cols, resultColumn(firingColumn, i, n))
		dataAt[i] = slices.Index(cols, resultColumn(dataColumn, i, n))
		own[valueAt[i]] = true
		for _, at := range []int{firingAt[i], dataAt[i]} {
			if at >= 0 {
				own[at] = true
			}
		}
		out[i].HasData = firingAt[i] < 0
	}
	workflowAt := slices.Index(cols, "workflow")
	// Each row is scanned into the same variables: a label column's
	// string, a value's float, a firing column's flag.
	dest := make([]any, len(cols))
	strs := make([]string, len(cols))
	values := make([]float64, len(cols))
	flags := make([]uint8, len(cols))
	for i := range cols {
		switch {
		case !own[i]:
			dest[i] = &strs[i]
		case slices.Contains(firingAt, i), slices.Contains(dataAt, i):
			dest[i] = &flags[i]
		default:
			dest[i] = &values[i]
		}
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, named(fmt.Errorf("label columns must be String, value Float64, firing and data UInt8: %w", err))
		}
		for ri, r := range rs {
			if dataAt[ri] >= 0 && flags[dataAt[ri]] == 0 {
				continue
			}
			out[ri].HasData = true
			if firingAt[ri] >= 0 && flags[firingAt[ri]] == 0 {
				continue
			}
			if workflowAt >= 0 && !own[workflowAt] && !r.Alerts(strs[workflowAt]) {
				continue
			}
			s := alerting.Sample{Labels: make(map[string]string, len(cols)+len(r.Labels)+1), Value: values[valueAt[ri]]}
			for k, v := range r.Labels {
				s.Labels[k] = v
			}
			for i, c := range cols {
				if !own[i] {
					s.Labels[c] = strs[i]
				}
			}
			s.Labels["alertname"] = r.Alert
			out[ri].Samples = append(out[ri].Samples, s)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, named(err)
	}
	return out, nil
}

// Idle reports whether the workflows the rule watches made no decision
// in its window (a burn rate's long window), or none in it before they
// resumed after a pause (a gap in decisions longer than the rule's
// pause): its signals stopped because the workflow stopped, which is the
// workflow's silence (DecisionWorkflowSilent), not the rule's missing
// data; and in the morning after a night's pause, the window holds only
// decisions whose actions and outcomes have not come yet.
func (r *Rule) Idle(ctx context.Context, conn driver.Conn, db string, now time.Time) (bool, error) {
	pause, args, pauses := r.pause(float64(seconds(contract.DefaultMaxSilence)))
	window := seconds(r.idleWindow())
	args = append(args, window)
	where := "time >= {now} - toIntervalSecond(?) AND time <= {now}"
	args = append(args, float64(window)+slices.Max(pauses))
	if r.Workflow != "" {
		where += " AND workflow = ?"
		args = append(args, r.Workflow)
	}
	q := `SELECT count() FROM (
  SELECT workflow, maxIf(first, gap > ` + pause + `) AS resumed, max(last) AS latest,
      minIf(last, last >= {now} - toIntervalSecond(?)) AS earliest
  FROM (` + decisionGaps(db, where) + `)
  GROUP BY workflow
)
WHERE latest >= {now} - toIntervalSecond(?) AND (resumed <= {now} - toIntervalSecond(?) OR earliest < resumed)`
	args = append(args, window, window)
	q, args = bindNow(q, args, now)
	var n uint64
	if err := conn.QueryRow(tagged(ctx, r), q, args...).Scan(&n); err != nil {
		return false, fmt.Errorf("rule %s idle: %w", r.Alert, err)
	}
	return n == 0, nil
}

// pause is the gap in a workflow's decisions that the rule takes for a
// pause (see Rule.PausedAfter): its own, else by workflow its contract's,
// else def; as an expression of the column workflow with its parameters,
// and every value it can take.
func (r *Rule) pause(def float64) (string, []any, []float64) {
	if r.PausedAfter > 0 {
		s := float64(seconds(r.PausedAfter))
		return "?", []any{s}, []float64{s}
	}
	names, secs := sortedSeconds(r.pauses)
	if len(names) == 0 {
		return "?", []any{def}, []float64{def}
	}
	return "transform(workflow, ?, ?, ?)", []any{names, secs, def}, append(secs, def)
}

// idleWindow is how far back Idle looks: the rule's window, a burn
// rate's long one (it has no other: looking back no time at all found
// every burn rate without data idle, so none ever reported no data).
func (r *Rule) idleWindow() contract.Duration {
	if r.Kind == KindSLOBurnRate {
		return r.LongWindow
	}
	return r.Window
}

// exampleQuery returns a query for the most recent decisions that show one
// alert's condition, so that whoever is paged can open a decision rather
// than start from a rate: the decisions that read the stale source, went to
// the deep queue, were overridden on that model version, were confident on
// stale context, and so on. Label values travel as parameters. Custom SQL
// has none (ok is false).
func (r *Rule) exampleQuery(db string, labels map[string]string, n int) (q string, args []any, ok bool) {
	spec, known := registry[r.Kind]
	if !known || spec.examples == nil {
		return "", nil, false
	}
	q, args = spec.examples(r, db, labels, n)
	return q, args, true
}

// Examples returns up to n decision IDs that show the alert with these
// labels, most recent first; nil for kinds without examples.
func (r *Rule) Examples(ctx context.Context, conn driver.Conn, db string, now time.Time, labels map[string]string, n int) ([]string, error) {
	q, args, ok := r.exampleQuery(db, labels, n)
	if !ok || n <= 0 {
		return nil, nil
	}
	q, args = bindNow(q, args, now)
	rows, err := conn.Query(tagged(ctx, r), q, args...)
	if err != nil {
		return nil, fmt.Errorf("rule %s examples: %w", r.Alert, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("rule %s examples: %w", r.Alert, err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// Eval runs one evaluation of the rule at now, as the evaluator does.
// hasData false means no data, which must not resolve anything.
func (r *Rule) Eval(ctx context.Context, conn driver.Conn, db string, now time.Time) (samples []alerting.Sample, hasData bool, err error) {
	return r.run(ctx, conn, db, now)
}

// Result is one rule's evaluation in a round: Eval's samples and hasData,
// and, when it had no data, whether its workflow was idle.
type Result struct {
	Samples []alerting.Sample
	HasData bool
	Idle    bool
	Err     error
	// Took is the rule's own time: its queries, waiting for none of the
	// others; of a query that evaluates several rules, an equal share.
	Took time.Duration
	// ReadRows is how many rows ClickHouse read for the rule's queries
	// (their progress), shared as Took is, the first rule of a shared
	// query holding the remainder: unlike Took, the same on any machine.
	ReadRows uint64
}

// togetherKey is a kindSpec.together key of parts, each in Go syntax
// (strings quoted, lists with their elements' types): filters that differ
// never meet under one key, as two filters of "a b" and "a", "b" would
// printed plainly.
func togetherKey(parts ...any) string { return fmt.Sprintf("%#v", parts) }

// Together splits a group's rules into what one query each evaluates, in
// the group's order of their first rules: rules whose kind reads the same
// rows for them (see kindSpec.together) share one; every other rule has
// its own. Each part holds indexes into ruleset.
func Together(ruleset []*Rule) [][]int {
	var out [][]int
	at := map[string]int{}
	for i, r := range ruleset {
		key := ""
		if spec, ok := registry[r.Kind]; ok && spec.together != nil {
			key = spec.together(r)
		}
		if key == "" {
			out = append(out, []int{i})
			continue
		}
		if j, seen := at[key]; seen {
			out[j] = append(out[j], i)
			continue
		}
		at[key] = len(out)
		out = append(out, []int{i})
	}
	return out
}

// EvalAll evaluates the rules of one round at now, up to concurrency of
// their queries at once (Prometheus' rule_query_concurrency): the queries
// are independent of each other and of the alert state, so only the order
// in which the results are applied matters, and the caller applies them in
// the group's order. Rules that read the same rows are evaluated by one
// query (Together), which gives each what its own query gives. Each
// query, with the idle check after it, gets timeout.
func EvalAll(ctx context.Context, conn driver.Conn, db string, now time.Time, ruleset []*Rule, concurrency int, timeout time.Duration) []Result {
	out := make([]Result, len(ruleset))
	slots := make(chan struct{}, max(concurrency, 1))
	var wg sync.WaitGroup
	for _, part := range Together(ruleset) {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			started := time.Now()
			var read atomic.Uint64
			qctx, cancel := context.WithTimeout(clickhouse.Context(ctx, clickhouse.WithProgress(func(p *clickhouse.Progress) {
				read.Add(p.Rows)
			})), timeout)
			defer cancel()
			rs := make([]*Rule, len(part))
			for k, i := range part {
				rs[k] = ruleset[i]
			}
			res, err := runTogether(qctx, conn, db, now, rs)
			if err != nil {
				res = make([]Result, len(rs))
				for k := range res {
					res[k].Err = err
				}
			}
			// Rules evaluated together share their workflow: their
			// workflow was idle or not over a window for all of them.
			type idleness struct {
				idle bool
				err  error
			}
			idle := map[contract.Duration]idleness{}
			for k := range res {
				if res[k].Err != nil || res[k].HasData {
					continue
				}
				w := rs[k].idleWindow()
				if _, asked := idle[w]; !asked {
					// No data because the workflow stopped deciding is the
					// workflow's silence: no alert of its own.
					v, err := rs[k].Idle(qctx, conn, db, now)
					idle[w] = idleness{v, err}
				}
				res[k].Idle, res[k].Err = idle[w].idle, idle[w].err
			}
			took := time.Since(started) / time.Duration(len(rs))
			rows := read.Load()
			for k, i := range part {
				res[k].Took = took
				res[k].ReadRows = rows / uint64(len(rs))
				if k == 0 {
					res[k].ReadRows += rows % uint64(len(rs))
				}
				out[i] = res[k]
			}
		})
	}
	wg.Wait()
	return out
}
