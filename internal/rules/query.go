package rules

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/decisiontrace/decisiontrace/internal/alerting"
	"github.com/decisiontrace/decisiontrace/internal/chconn"
	"github.com/decisiontrace/decisiontrace/internal/contract"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
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

// judgedIn selects the verdicts of the decisions taken in a rule's window
// ({now} - ? seconds to {now}) whose context is known: pending ones are
// left out of every verdict rate.
const judgedIn = "decision_time >= {now} - toIntervalSecond(?) AND decision_time <= {now} AND context != '" + conventions.ContextPending + "'"

// verdictCondition is the finding each verdict kind counts.
var verdictCondition = map[Kind]string{
	KindUnsupportedCertainty: "unsupported_certainty",
	KindMissingContext:       "context = '" + conventions.ContextMissing + "'",
	KindLowConfidence:        "confidence_low",
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
	var where []string
	var args []any
	filter := func(col, v string) {
		if v != "" {
			where = append(where, col+" = ?")
			args = append(args, v)
		}
	}
	and := func() string {
		if len(where) == 0 {
			return ""
		}
		return " AND " + strings.Join(where, " AND ")
	}
	ev := db + ".events"
	switch r.Kind {
	case KindSourceStaleness:
		filter("workflow", r.Workflow)
		filter("source", r.Source)
		names, budgets := sortedSeconds(r.Budgets)
		if len(names) > 0 && r.MaxAge <= 0 {
			// Budgets from a contract, and no general max_age: only the
			// sources the contract budgets are judged.
			where = append(where, "has(?, source)")
			args = append(args, names)
		}
		// Staleness where it matters, in event time: how old the data the
		// workflow's latest decision read was when it read it (read time
		// - as_of), and how old the source was at its latest poll. A
		// workflow that reads nothing in the window reads nothing stale,
		// so a paused workflow pages no staleness; a poll says how fresh
		// the source itself is, traffic or not, and a poller that stops
		// is a silent data layer, not a stale source. Polls are read from
		// source_polls, not from among the data layer's reads.
		w := seconds(r.window())
		q := `SELECT workflow, source, toFloat64(max(age_ms)) / 1000 AS value
FROM (
  SELECT workflow, source, argMax(dateDiff('millisecond', assumeNotNull(as_of), time), time) AS age_ms
  FROM ` + ev + `
  WHERE layer = 'data' AND event = 'context.read' AND source != '' AND as_of IS NOT NULL
    AND time >= {now} - toIntervalSecond(?) AND time <= {now}` + and() + `
  GROUP BY workflow, source
  UNION ALL
  SELECT workflow, source, argMax(dateDiff('millisecond', assumeNotNull(as_of), time), time) AS age_ms
  FROM ` + db + `.source_polls
  WHERE as_of IS NOT NULL AND time >= {now} - toIntervalSecond(?) AND time <= {now}` + and() + `
  GROUP BY workflow, source
)
GROUP BY workflow, source
HAVING value > transform(source, ?, ?, ?)`
		out := append([]any{w}, args...)
		out = append(out, w)
		out = append(out, args...)
		return q, append(out, names, budgets, float64(seconds(r.MaxAge)))
	case KindQueueDepth, KindQueueGrowth:
		filter("workflow", r.Workflow)
		filter("queue", r.Queue)
		value, window, limit := "toFloat64(argMax(queue_depth, time))", int64(Lookback/time.Second), r.MaxDepth
		if r.Kind == KindQueueGrowth {
			value, window, limit = "toFloat64(argMax(queue_depth, time) - argMin(queue_depth, time))", seconds(r.Window), r.MaxGrowth
		}
		q := `SELECT workflow, queue, ` + value + ` AS value
FROM ` + ev + `
WHERE layer = 'workflow' AND event = 'queue.depth' AND queue != '' AND queue_depth IS NOT NULL
  AND time >= {now} - toIntervalSecond(?) AND time <= {now}` + and() + `
GROUP BY workflow, queue
HAVING value > ?`
		return q, append(append([]any{window}, args...), float64(limit))
	case KindOverrideRate:
		filter("workflow", r.Workflow)
		// Rates count decisions, each by its latest action in the window,
		// so that a resent action (the same event stored twice) or a
		// decision acted on twice changes no number.
		// The subqueries' aliases differ from column names: ClickHouse
		// resolves an alias before a column in WHERE.
		// Decisions are told apart by a 64-bit hash of their ID: grouping
		// on it instead of the string takes a third less time, and two of
		// a million decisions collide with a chance under one in 10^7.
		actions := `SELECT cityHash64(decision_id) AS d, any(workflow) AS wf, argMax(human_action, time) AS action
  FROM ` + ev + `
  WHERE layer = 'human' AND event = 'human.action' AND human_action != '' AND decision_id != ''
    AND time >= {now} - toIntervalSecond(?) AND time <= {now}` + and() + `
  GROUP BY d`
		if !r.ByModel {
			q := `SELECT wf AS workflow, countIf(action = 'overridden') / count() AS value
FROM (
  ` + actions + `
)
GROUP BY workflow
HAVING count() >= ? AND value > ?`
			return q, append(append([]any{seconds(r.Window)}, args...), r.MinCount, r.MaxRate)
		}
		// Human actions rarely carry the model version: it is the
		// decision's model output's, which may precede the action by up to
		// the lookback. Both sides count each decision once.
		// The workflow filter applies to both sides: a decision's model
		// output belongs to the same workflow, and the output side is the
		// larger scan.
		q := `SELECT h.wf AS workflow, o.mv AS model_version, countIf(h.action = 'overridden') / count() AS value
FROM (
  ` + actions + `
) AS h
INNER JOIN (
  SELECT cityHash64(decision_id) AS d, argMin(model_version, time) AS mv
  FROM ` + db + `.model_outputs
  WHERE time >= {now} - toIntervalSecond(?) AND time <= {now}` + and() + `
  GROUP BY d
) AS o USING (d)
GROUP BY workflow, model_version
HAVING count() >= ? AND value > ?`
		out := append([]any{seconds(r.Window)}, args...)
		out = append(out, seconds(r.Window)+int64(Lookback/time.Second))
		out = append(out, args...)
		return q, append(out, r.MinCount, r.MaxRate)
	case KindUnsupportedCertainty, KindMissingContext, KindLowConfidence:
		filter("workflow", r.Workflow)
		// Verdicts are derived by ClickHouse and kept in verdicts, one row
		// per decision (FINAL: its latest judgment), counted by decision
		// time. A pending decision (context that may still arrive) is in
		// neither the numerator nor the denominator.
		q := `SELECT workflow, countIf(` + verdictCondition[r.Kind] + `) / count() AS value
FROM ` + db + `.verdicts FINAL
WHERE ` + judgedIn + and() + `
GROUP BY workflow
HAVING count() >= ? AND value > ?`
		return q, append(append([]any{seconds(r.Window)}, args...), r.MinCount, r.MaxRate)
	case KindConfidenceDrift:
		filter("workflow", r.Workflow)
		w := seconds(r.Window)
		// model_outputs holds each output once (FINAL), however often it
		// was sent: a merge of sorted parts, where hashing every output's
		// ID in events cost ten times more.
		q := `SELECT workflow, abs(avgIf(confidence, time >= {now} - toIntervalSecond(?)) - avgIf(confidence, time < {now} - toIntervalSecond(?))) AS value
FROM ` + db + `.model_outputs FINAL
WHERE confidence IS NOT NULL AND time >= {now} - toIntervalSecond(?) AND time <= {now}` + and() + `
GROUP BY workflow
HAVING countIf(time >= {now} - toIntervalSecond(?)) >= ? AND countIf(time < {now} - toIntervalSecond(?)) >= ? AND value > ?`
		return q, append(append([]any{w, w, seconds(r.Baseline)}, args...), w, r.MinCount, w, r.MinCount, r.MaxDrift)
	case KindLayerSilence:
		filter("workflow", r.Workflow)
		// A layer is silent when its latest signal trails the workflow's
		// latest decision (model signal) by more than its lag, in event
		// time: while the workflow decides, a stopped feed stands out;
		// when the workflow stops, every layer stops with it and the gap
		// stays what it was (that is DecisionWorkflowSilent's to say).
		// The latest signals are the layers' watermarks, a row per layer.
		// A workflow with a watermark past {now} (a producer's clock
		// ahead, or a rule test evaluating the past) is read from its
		// events up to {now} instead, within the lookback.
		layers, lags := sortedSeconds(r.Lags)
		limit := "?"
		if len(layers) > 0 {
			limit = "transform(layer, ?, ?, ?)"
		}
		ahead := `SELECT workflow FROM ` + db + `.watermarks WHERE stream = 'layers' AND until > {now}`
		q := `SELECT workflow, tupleElement(l, 1) AS layer, toFloat64(dateDiff('millisecond', tupleElement(l, 2), decided)) / 1000 AS value
FROM (
  SELECT workflow, maxIf(last, layer = 'model') AS decided, groupArrayIf(tuple(layer, last), layer != 'model') AS layers
  FROM (
    SELECT workflow, source AS layer, max(until) AS last
    FROM ` + db + `.watermarks
    WHERE stream = 'layers' AND workflow NOT IN (` + ahead + `)` + and() + `
    GROUP BY workflow, layer
    UNION ALL
    SELECT toString(workflow) AS workflow, toString(layer) AS layer, max(time) AS last
    FROM ` + ev + `
    WHERE layer IN ('data', 'model', 'workflow', 'human', 'business') AND workflow != '' AND time >= {now} - toIntervalSecond(?) AND time <= {now}
      AND workflow IN (` + ahead + `)` + and() + `
    GROUP BY workflow, layer
  )
  WHERE last >= {now} - toIntervalSecond(?)
  GROUP BY workflow
  HAVING countIf(layer = 'model') > 0
)
ARRAY JOIN layers AS l
WHERE value > ` + limit + `
SETTINGS optimize_aggregation_in_order = 1`
		// (workflow, layer) leads the events table's sort key: aggregating in
		// that order streams instead of hashing a day of rows.
		lookback := int64(Lookback / time.Second)
		out := append([]any{}, args...)
		out = append(out, lookback)
		out = append(out, args...)
		out = append(out, lookback)
		if len(layers) > 0 {
			out = append(out, layers, lags)
		}
		return q, append(out, float64(seconds(r.SilentFor)))
	case KindWorkflowSilence:
		filter("workflow", r.Workflow)
		// How long since the workflow's latest decision, in event time:
		// its decisions' watermark, one row per workflow however long ago
		// it stopped. A watermark past {now} (a producer's clock ahead, or
		// a rule test evaluating the past) is replaced by the latest
		// output at or before {now} within the lookback, read only for
		// those workflows.
		q := `SELECT w.workflow AS workflow,
    toFloat64(dateDiff('millisecond', if(w.until <= {now}, w.until, e.last), {now})) / 1000 AS value
FROM (
  SELECT workflow, max(until) AS until FROM ` + db + `.watermarks
  WHERE stream = 'decisions'` + and() + `
  GROUP BY workflow
) AS w
LEFT JOIN (
  SELECT toString(workflow) AS workflow, max(time) AS last FROM ` + ev + `
  WHERE layer = 'model' AND event = 'model.output' AND time >= {now} - toIntervalSecond(?) AND time <= {now}
    AND workflow IN (SELECT workflow FROM ` + db + `.watermarks WHERE stream = 'decisions' AND until > {now})` + and() + `
  GROUP BY workflow
) AS e ON w.workflow = e.workflow
WHERE (w.until <= {now} OR e.last > toDateTime64(0, 9)) AND value > ?`
		out := append([]any{}, args...)
		out = append(out, int64(Lookback/time.Second))
		out = append(out, args...)
		return q, append(out, float64(seconds(r.SilentFor)))
	}
	// custom_sql: the operator's own query; {db} names the database.
	return strings.ReplaceAll(r.SQL, "{db}", db), nil
}

// defaultStalenessWindow is how far back source_staleness looks for the
// workflow's reads and the source's polls when the rule sets no window.
const defaultStalenessWindow = 15 * time.Minute

func (r *Rule) window() contract.Duration {
	if r.Window <= 0 && r.Kind == KindSourceStaleness {
		return contract.Duration(defaultStalenessWindow)
	}
	return r.Window
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

// Run executes the rule's query and returns its rows. String columns
// become labels; the column named value is the value.
func (r *Rule) Run(ctx context.Context, conn driver.Conn, db string, now time.Time) ([]alerting.Sample, error) {
	q, args := r.Query(db)
	q, args = bindNow(q, args, now)
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("rule %s: %w", r.Alert, err)
	}
	defer rows.Close()
	cols := rows.Columns()
	valueAt := -1
	for i, c := range cols {
		if c == "value" {
			valueAt = i
		}
	}
	if valueAt < 0 {
		return nil, fmt.Errorf("rule %s: the query returns no column named value", r.Alert)
	}
	workflowAt := slices.Index(cols, "workflow")
	var out []alerting.Sample
	for rows.Next() {
		dest := make([]any, len(cols))
		strs := make([]string, len(cols))
		var value float64
		for i := range cols {
			if i == valueAt {
				dest[i] = &value
			} else {
				dest[i] = &strs[i]
			}
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("rule %s: label columns must be String and value Float64: %w", r.Alert, err)
		}
		s := alerting.Sample{Labels: make(map[string]string, len(cols)+len(r.Labels)+1), Value: value}
		for k, v := range r.Labels {
			s.Labels[k] = v
		}
		for i, c := range cols {
			if i != valueAt {
				s.Labels[c] = strs[i]
			}
		}
		if workflowAt >= 0 && workflowAt != valueAt && !r.Alerts(strs[workflowAt]) {
			continue
		}
		s.Labels["alertname"] = r.Alert
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rule %s: %w", r.Alert, err)
	}
	return out, nil
}

// HasData runs the presence query at now; kinds without one always have
// data.
func (r *Rule) HasData(ctx context.Context, conn driver.Conn, db string, now time.Time) (bool, error) {
	q, args, ok := r.presenceQuery(db)
	if !ok {
		return true, nil
	}
	q, args = bindNow(q, args, now)
	var n uint64
	if err := conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		return false, fmt.Errorf("rule %s presence: %w", r.Alert, err)
	}
	return n > 0, nil
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
	if err := conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		return false, fmt.Errorf("rule %s idle: %w", r.Alert, err)
	}
	return n == 0, nil
}

// presenceQuery counts the signals a rule's kind is computed from in its
// window. Zero means no data: the evaluator then keeps every alert as it is
// and reports the silence instead of resolving. Kinds whose condition is
// itself about absence (staleness, queue depth, silence) and custom SQL
// have none (ok is false).
func (r *Rule) presenceQuery(db string) (q string, args []any, ok bool) {
	var layer, event string
	switch r.Kind {
	case KindOverrideRate:
		layer, event = "human", "human.action"
	case KindUnsupportedCertainty, KindMissingContext, KindLowConfidence:
		// The decisions judged in the window: while every one is pending
		// (context on its way), the rate is unknown, not zero.
		q = "SELECT count() FROM " + db + ".verdicts FINAL WHERE " + judgedIn
		args = []any{seconds(r.Window)}
		if r.Workflow != "" {
			q += " AND workflow = ?"
			args = append(args, r.Workflow)
		}
		return q, args, true
	case KindConfidenceDrift:
		layer, event = "model", "model.output"
	case KindQueueGrowth:
		layer, event = "workflow", "queue.depth"
	default:
		return "", nil, false
	}
	q = "SELECT count() FROM " + db + ".events WHERE layer = ? AND event = ? AND time >= {now} - toIntervalSecond(?) AND time <= {now}"
	args = []any{layer, event, seconds(r.Window)}
	if r.Workflow != "" {
		q += " AND workflow = ?"
		args = append(args, r.Workflow)
	}
	return q, args, true
}

// exampleQuery returns a query for the most recent decisions that show one
// alert's condition, so that whoever is paged can open a decision rather
// than start from a rate: the decisions that read the stale source, went to
// the deep queue, were overridden on that model version, were confident on
// stale context, and so on. Label values travel as parameters. Custom SQL
// has none (ok is false).
func (r *Rule) exampleQuery(db string, labels map[string]string, n int) (q string, args []any, ok bool) {
	ev := db + ".events"
	window := seconds(r.Window)
	if cond, ok := verdictCondition[r.Kind]; ok {
		// The latest decisions of the window whose verdict shows it.
		q = `SELECT decision_id FROM ` + db + `.verdicts FINAL
WHERE workflow = ? AND ` + judgedIn + ` AND ` + cond + `
ORDER BY decision_time DESC, decision_id
LIMIT ?`
		return q, []any{labels["workflow"], window, n}, true
	}
	switch {
	case r.Kind == KindLayerSilence || r.Kind == KindWorkflowSilence:
		window = int64(Lookback / time.Second)
	case r.Kind == KindSourceStaleness:
		window = seconds(r.window())
	case window <= 0:
		window = int64(time.Hour / time.Second)
	}
	var where []string
	match := func(col, label string) {
		where = append(where, col+" = ?")
		args = append(args, labels[label])
	}
	where = append(where, "decision_id != ''", "time >= {now} - toIntervalSecond(?)", "time <= {now}")
	args = append(args, window)
	match("workflow", "workflow")
	switch r.Kind {
	case KindSourceStaleness:
		where = append(where, "layer = 'data'", "event = 'context.read'")
		match("source", "source")
	case KindQueueDepth, KindQueueGrowth:
		where = append(where, "layer = 'workflow'", "event != 'queue.depth'")
		match("queue", "queue")
	case KindOverrideRate:
		where = append(where, "layer = 'human'", "event = 'human.action'", "human_action = 'overridden'")
		if mv, has := labels["model_version"]; has {
			where = append(where, `decision_id IN (SELECT decision_id FROM `+ev+` WHERE layer = 'model' AND event = 'model.output'
    AND model_version = ? AND time >= {now} - toIntervalSecond(?) AND time <= {now})`)
			args = append(args, mv, window+int64(Lookback/time.Second))
		}
	case KindConfidenceDrift:
		where = append(where, "layer = 'model'", "event = 'model.output'", "confidence IS NOT NULL")
	case KindLayerSilence:
		// The layer's last decisions before it went quiet.
		match("layer", "layer")
	case KindWorkflowSilence:
		// The workflow's last decisions before it stopped.
		where = append(where, "layer = 'model'", "event = 'model.output'")
	default:
		return "", nil, false
	}
	q = `SELECT decision_id FROM ` + ev + `
WHERE ` + strings.Join(where, " AND ") + `
GROUP BY decision_id
ORDER BY max(time) DESC, decision_id
LIMIT ?`
	return q, append(args, n), true
}

// Examples returns up to n decision IDs that show the alert with these
// labels, most recent first; nil for kinds without examples.
func (r *Rule) Examples(ctx context.Context, conn driver.Conn, db string, now time.Time, labels map[string]string, n int) ([]string, error) {
	q, args, ok := r.exampleQuery(db, labels, n)
	if !ok || n <= 0 {
		return nil, nil
	}
	q, args = bindNow(q, args, now)
	rows, err := conn.Query(ctx, q, args...)
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

// Eval runs one evaluation of the rule at now, as the evaluator does: the
// rule's query, then, when nothing matched, whether its signals exist at
// all. hasData false means no data, which must not resolve anything.
func (r *Rule) Eval(ctx context.Context, conn driver.Conn, db string, now time.Time) (samples []alerting.Sample, hasData bool, err error) {
	samples, err = r.Run(ctx, conn, db, now)
	if err != nil || len(samples) > 0 {
		return samples, err == nil, err
	}
	hasData, err = r.HasData(ctx, conn, db, now)
	return nil, hasData, err
}
