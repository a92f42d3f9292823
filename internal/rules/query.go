package rules

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
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

// Run executes the rule's query and returns its firing rows. String
// columns become labels; the column named value is the value.
func (r *Rule) Run(ctx context.Context, conn driver.Conn, db string, now time.Time) ([]alerting.Sample, error) {
	samples, _, err := r.run(ctx, conn, db, now)
	return samples, err
}

// tagged names the rule in the log_comment of its queries (ClickHouse's
// system.query_log, and system.processes' Settings while they run): which
// rule loads the store is a GROUP BY away. It replaces the context's
// query settings; rule queries carry none.
func (r *Rule) tagged(ctx context.Context) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"log_comment": "decisiontrace rule " + r.Alert}))
}

// run is Run that also says whether the rule had data: any row of a query
// with a firing column, always for one without.
func (r *Rule) run(ctx context.Context, conn driver.Conn, db string, now time.Time) (samples []alerting.Sample, hasData bool, err error) {
	q, args := r.Query(db)
	q, args = bindNow(q, args, now)
	rows, err := conn.Query(r.tagged(ctx), q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("rule %s: %w", r.Alert, err)
	}
	defer rows.Close()
	cols := rows.Columns()
	valueAt := slices.Index(cols, "value")
	if valueAt < 0 {
		return nil, false, fmt.Errorf("rule %s: the query returns no column named value", r.Alert)
	}
	firingAt := slices.Index(cols, firingColumn)
	hasData = firingAt < 0
	workflowAt := slices.Index(cols, "workflow")
	for rows.Next() {
		dest := make([]any, len(cols))
		strs := make([]string, len(cols))
		var value float64
		var firing uint8
		for i := range cols {
			switch i {
			case valueAt:
				dest[i] = &value
			case firingAt:
				dest[i] = &firing
			default:
				dest[i] = &strs[i]
			}
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, false, fmt.Errorf("rule %s: label columns must be String, value Float64 and firing UInt8: %w", r.Alert, err)
		}
		hasData = true
		if firingAt >= 0 && firing == 0 {
			continue
		}
		if workflowAt >= 0 && workflowAt != valueAt && !r.Alerts(strs[workflowAt]) {
			continue
		}
		s := alerting.Sample{Labels: make(map[string]string, len(cols)+len(r.Labels)+1), Value: value}
		for k, v := range r.Labels {
			s.Labels[k] = v
		}
		for i, c := range cols {
			if i != valueAt && i != firingAt {
				s.Labels[c] = strs[i]
			}
		}
		s.Labels["alertname"] = r.Alert
		samples = append(samples, s)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("rule %s: %w", r.Alert, err)
	}
	return samples, hasData, nil
}

// Idle reports whether the workflows the rule watches made no decision
// in its window: its signals stopped
// because the workflow stopped, which is the workflow's silence
// (DecisionWorkflowSilent), not the rule's missing data.
func (r *Rule) Idle(ctx context.Context, conn driver.Conn, db string, now time.Time) (bool, error) {
	q := "SELECT count() FROM " + db + ".events WHERE layer = 'model' AND event = 'model.output' AND time >= {now} - toIntervalSecond(?) AND time <= {now}"
	args := []any{seconds(r.Window)}
	if r.Workflow != "" {
		q += " AND workflow = ?"
		args = append(args, r.Workflow)
	}
	q, args = bindNow(q, args, now)
	var n uint64
	if err := conn.QueryRow(r.tagged(ctx), q, args...).Scan(&n); err != nil {
		return false, fmt.Errorf("rule %s idle: %w", r.Alert, err)
	}
	return n == 0, nil
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
	rows, err := conn.Query(r.tagged(ctx), q, args...)
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
	// others.
	Took time.Duration
}

// EvalAll evaluates the rules of one round at now, up to concurrency of
// them at once (Prometheus' rule_query_concurrency): their queries are
// independent of each other and of the alert state, so only the order in
// which the results are applied matters, and the caller applies them in
// the group's order. Each rule's queries get timeout.
func EvalAll(ctx context.Context, conn driver.Conn, db string, now time.Time, ruleset []*Rule, concurrency int, timeout time.Duration) []Result {
	out := make([]Result, len(ruleset))
	slots := make(chan struct{}, max(concurrency, 1))
	var wg sync.WaitGroup
	for i, r := range ruleset {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			started := time.Now()
			qctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			res := &out[i]
			res.Samples, res.HasData, res.Err = r.Eval(qctx, conn, db, now)
			if res.Err == nil && !res.HasData {
				// No data because the workflow stopped deciding is the
				// workflow's silence: no alert of its own.
				res.Idle, res.Err = r.Idle(qctx, conn, db, now)
			}
			res.Took = time.Since(started)
		})
	}
	wg.Wait()
	return out
}
