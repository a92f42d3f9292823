package rules

import (
	"math"
	"strings"
	"time"
)

// interval: a percentile of the time between two signals of each decision,
// against a limit in seconds, per workflow and the conventions in by. Time
// from recommendation to human action, and decision latency (outcome time
// minus decision time):
//
//	kind: interval
//	from: {decision.event: model.output}
//	to: {decision.event: human.action}
//	quantile: 0.95
//	max: 1800
//	by: [model.version]
//
// A decision counts once, from its first from signal to its first to
// signal, in the window its to signal falls in: a resent signal or a second
// action changes no number. A decision still waiting counts nowhere: many
// decisions never get a to signal (auto-routed ones have no human action);
// a queue nobody works is queue_depth's and queue_growth's.
func init() {
	register(map[Kind]*kindSpec{KindInterval: {
		check:             checkInterval,
		query:             intervalQuery,
		examples:          intervalExamples,
		summary:           `{{ .Labels.workflow }}: {{ printf "%.0f" .Value }} s between signals is over the rule's limit`,
		heldBackBySilence: true,
	}})
}

func checkInterval(r *Rule, bad problem) {
	needWindow(r, bad)
	if r.Quantile <= 0 || r.Quantile >= 1 {
		bad("quantile", "%v is outside (0, 1), e.g. 0.95", r.Quantile)
	}
	if r.Max <= 0 {
		bad("max", "required: the limit in seconds, e.g. 1800")
	}
	if len(r.From) == 0 {
		bad("from", "required: the signal the interval starts at (e.g. {decision.event: model.output})")
	}
	if len(r.To) == 0 {
		bad("to", "required: the signal the interval ends at (e.g. {decision.event: human.action})")
	}
	if r.Count != "" || len(r.Denominator) > 0 || len(r.Numerator) > 0 {
		bad("count", "an interval rule has no count, denominator or numerator: it counts decisions, by from and to")
	}
	r.intervalSQL(bad)
}

// intervalSQL is an interval rule's filters and labels as SQL: the ratio's
// labels, denominator the from filter and numerator the to filter.
func (r *Rule) intervalSQL(bad problem) *ratioSQL {
	rs := &ratioSQL{labels: []string{"workflow"}, from: "events", time: "time"}
	rs.denominator, rs.denArgs = ratioFilter("from", r.From, eventFieldSet, bad)
	rs.numerator, rs.numArgs = ratioFilter("to", r.To, eventFieldSet, bad)
	w := *r
	w.Count, w.Denominator, w.Numerator = "", nil, nil
	rs.labels = w.ratioSQL(bad).labels
	return rs
}

// intervals is, per decision whose interval ended in the window, its
// labels (l_<column>), its interval v in seconds and, when ids, its ID.
// The start may precede the window by up to startLookback: of the
// lookback's start and end signals, those of the decisions with an end
// signal in the window (a set of them, IN) are aggregated. Grouping every
// decision of the lookback first took a quarter longer at 10M events; a
// join against those decisions, 1.5 to 2 times as long as the set at 100M
// (ClickHouse 25 and later may build the join's hash table from the
// lookback's side).
func (r *Rule) intervals(db string, f *filters, ids bool) (string, []any) {
	rs := r.intervalSQL(ignore)
	id, idCol := "", ""
	if ids {
		id, idCol = "any(decision_id) AS id, ", "decision_id, "
	}
	// A label is the decision's, as a ratio over decisions takes it.
	labels, labelArgs := rs.labelAs(decisionLabel, "l_", f)
	q := `SELECT ` + id + strings.Join(labels, ", ") + `,
    minIf(time, is_from) AS started, minIf(time, is_to) AS ended,
    (toUnixTimestamp64Milli(ended) - toUnixTimestamp64Milli(started)) / 1000 AS v
  FROM (
    SELECT cityHash64(decision_id) AS u, ` + idCol + `time, ` + strings.Join(rs.labels, ", ") + `,
      ` + rs.denominator + ` AS is_from, ` + rs.numerator + ` AS is_to
    FROM ` + db + `.events
    WHERE decision_id != '' AND ((` + rs.denominator + `) OR (` + rs.numerator + `))` + rs.within() + f.and() + `
      AND cityHash64(decision_id) IN (
        SELECT cityHash64(decision_id)
        FROM ` + db + `.events
        WHERE decision_id != '' AND ` + rs.numerator + rs.within() + f.and() + `
      )
  )
  GROUP BY u
  HAVING countIf(is_from) > 0 AND countIf(is_to) > 0 AND ended >= {now} - toIntervalSecond(?)`
	// Each filter's arguments, in the order its text appears.
	args := labelArgs
	for _, a := range [][]any{rs.denArgs, rs.numArgs, rs.denArgs, rs.numArgs} {
		args = append(args, a...)
	}
	args = append(args, seconds(r.Window)+r.startLookback())
	args = append(args, f.args...)
	args = append(args, rs.numArgs...)
	args = append(args, seconds(r.Window))
	args = append(args, f.args...)
	return q, append(args, seconds(r.Window))
}

// startLookback is how far before its window, in seconds, an interval's
// start signals are read: the lookback, or the rule's limit when that is
// longer. A decision whose start precedes what is read is not counted at
// all, so a limit over the lookback (a loan decided in three days) could
// never be seen exceeded; with the limit as the lookback, a decision just
// over it is counted. One slower than the window and the limit together
// still is not.
func (r *Rule) startLookback() int64 {
	return max(int64(Lookback/time.Second), int64(math.Ceil(r.Max)))
}

func intervalQuery(r *Rule, db string, f *filters) (string, []any) {
	rs := r.intervalSQL(ignore)
	f.on("workflow", r.Workflow)
	outer := rs.outerLabels()
	inner, args := r.intervals(db, f, false)
	// No decision whose interval ended in the window: the interval is
	// unknown (no row, no data).
	q := `SELECT ` + strings.Join(outer, ", ") + `, ` + percentile(r.Quantile) + `(v) AS value, toUInt8(count() >= ? AND value > ?) AS firing
FROM (
  ` + inner + `
)
GROUP BY ` + strings.Join(rs.labels, ", ") + groupsOnly
	return q, append([]any{r.MinCount, r.Max}, args...)
}

// The decisions of the alert's labels whose interval is over the limit,
// the longest first.
func intervalExamples(r *Rule, db string, labels map[string]string, n int) (string, []any) {
	rs := r.intervalSQL(ignore)
	f := &filters{}
	f.on("workflow", labels["workflow"])
	inner, args := r.intervals(db, f, true)
	where := "v > ?"
	args = append(args, r.Max)
	for _, col := range rs.labels[1:] {
		where += " AND l_" + col + " = ?"
		args = append(args, labels[col])
	}
	q := `SELECT id FROM (
  ` + inner + `
)
WHERE ` + where + `
ORDER BY v DESC, id
LIMIT ?`
	return q, append(args, n)
}
