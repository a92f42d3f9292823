package rules

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/decision"
)

// ratio: the generic share, for what the named kinds miss. Its filters and
// labels name conventions; the field table says which column each is, and
// values reach ClickHouse only as bound parameters.
//
//	kind: ratio
//	count: decisions
//	denominator: {decision.event: business.outcome}
//	numerator: {business.outcome: [reopened, disputed]}
//	by: [model.version]
//
// With count: verdicts it counts judged decisions by their verdict instead
// (pending ones left out), so an SLO can hold decisions to fresh context:
//
//	kind: ratio
//	count: verdicts
//	numerator: {verdict.context: [stale, missing]}
func init() {
	register(map[Kind]*kindSpec{KindRatio: {
		check: checkRatio,
		// Shares of the same units over one window (of a workflow's human
		// actions, those ignored and those escalated): one scan. Shares
		// of a window's decisions share it whatever each counts (of its
		// decisions with an output, those reworked and those that raised
		// an exception): one scan of every signal any of them counts.
		together: func(r *Rule) string {
			rs := r.ratioSQL(ignore)
			if r.Count == countDecisions {
				return togetherKey("ratio", r.Count, r.Window, r.Workflow, rs.labels)
			}
			return togetherKey("ratio", r.Count, r.Window, r.Workflow, rs.denominator, rs.denArgs, rs.labels)
		},
		merged:   ratioQuery,
		examples: ratioExamples,
		summary:  `{{ printf "%.1f" (mul100 .Value) }}% of what {{ .Labels.alertname }} counts in {{ .Labels.workflow }} matches it`,
		// A ratio is of what the workflow does: no decisions, no ratio.
		heldBackBySilence: true,
	}})
}

// The counts of a ratio rule.
const (
	countDecisions = "decisions"
	countEvents    = "events"
	countVerdicts  = "verdicts"
)

// verdictFields are what a share over verdicts may filter or split by: the
// findings the store judges each decision with, and its model.
var verdictFields = map[string]struct{ column, typ string }{
	"verdict.context":               {"context", "String"},
	"verdict.behaviour":             {"behaviour", "String"},
	"verdict.unsupported_certainty": {"unsupported_certainty", "Bool"},
	"verdict.confidence_low":        {"confidence_low", "Bool"},
	c.ModelName:                     {"model_name", "String"},
	c.ModelVersion:                  {"model_version", "String"},
}

// fieldSet is what a share's filters and labels may name: a column per
// name, and what to tell a rule that names something else.
type fieldSet struct {
	column func(key string) (column, typ string, ok bool)
	what   string
}

var (
	eventFieldSet = fieldSet{ratioColumn,
		"not a stored convention (decision.event, human.action, business.outcome, data.complete, ...)"}
	verdictFieldSet = fieldSet{func(key string) (string, string, bool) {
		f, ok := verdictFields[key]
		return f.column, f.typ, ok
	}, "not a verdict field (verdict.context, verdict.behaviour, verdict.unsupported_certainty, verdict.confidence_low, model.name, model.version)"}
)

// ratioSQL is a ratio rule's filters and labels as SQL.
type ratioSQL struct {
	denominator, numerator string
	denArgs, numArgs       []any
	labels                 []string // columns, workflow first
	// from is the table counted and its time column: the events, or
	// the verdicts (one row per judged decision, by decision time).
	from, time string
}

// ratioColumn is the events column of a convention a ratio may filter or
// split by: a stored field, or the decision's layer and event.
func ratioColumn(key string) (column, typ string, ok bool) {
	f, alias, ok := decision.Lookup(key)
	if !ok || alias || f.Column == "" {
		return "", "", false
	}
	return f.Column, f.Type, true
}

// ratioFilter renders one filter map: each key's column equal to its value
// or among its values.
func ratioFilter(field string, m map[string]any, fields fieldSet, bad problem) (string, []any) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var where []string
	var args []any
	for _, k := range keys {
		col, typ, ok := fields.column(k)
		if !ok {
			bad(field+"."+k, "%s", fields.what)
			continue
		}
		vals, ok := m[k].([]any)
		if !ok {
			vals = []any{m[k]}
		}
		if len(vals) == 0 {
			bad(field+"."+k, "no value")
			continue
		}
		var cond []string
		for _, v := range vals {
			if msg := fits(typ, v); msg != "" {
				bad(field+"."+k, "%v: %s", v, msg)
				continue
			}
			cond = append(cond, "ifNull("+col+" = ?, 0)")
			args = append(args, v)
		}
		if len(cond) > 0 {
			where = append(where, "("+strings.Join(cond, " OR ")+")")
		}
	}
	if len(where) == 0 {
		return "1", nil
	}
	return strings.Join(where, " AND "), args
}

// fits says why v cannot be compared with a column of type typ, "" when it
// can.
func fits(typ string, v any) string {
	switch {
	case strings.Contains(typ, "Bool"):
		if _, ok := v.(bool); !ok {
			return "want true or false"
		}
	case strings.Contains(typ, "Float"), strings.Contains(typ, "Int"):
		switch v.(type) {
		case int, int64, float64, uint64:
		default:
			return "want a number"
		}
	default:
		if _, ok := v.(string); !ok {
			return "want a string"
		}
	}
	return ""
}

func checkRatio(r *Rule, bad problem) {
	needWindow(r, bad)
	needRate(r, bad)
	checkShare(r, bad, "what is counted (e.g. {decision.event: human.action})", "what share of it pages (e.g. {human.action: ignored})")
}

// checkShare checks the count and filters of a share (a ratio, an SLI);
// den and num say what each filter is for.
func checkShare(r *Rule, bad problem, den, num string) {
	switch r.Count {
	case countDecisions, countEvents:
	case countVerdicts:
		// Every judged decision of the workflow, unless filtered.
		den = ""
	default:
		bad("count", "%q is not decisions, events or verdicts", r.Count)
	}
	if len(r.Denominator) == 0 && den != "" {
		bad("denominator", "required: "+den)
	}
	if len(r.Numerator) == 0 {
		bad("numerator", "required: "+num)
	}
	r.ratioSQL(bad)
}

// ratioSQL renders the rule's filters and labels, reporting each problem
// to bad (validation already reported them before any query is built).
func (r *Rule) ratioSQL(bad problem) *ratioSQL {
	rs := &ratioSQL{labels: []string{"workflow"}, from: "events", time: "time"}
	fields := eventFieldSet
	if r.Count == countVerdicts {
		fields = verdictFieldSet
		rs.from, rs.time = "verdicts FINAL", "decision_time"
	}
	rs.denominator, rs.denArgs = ratioFilter("denominator", r.Denominator, fields, bad)
	rs.numerator, rs.numArgs = ratioFilter("numerator", r.Numerator, fields, bad)
	if r.Count == countVerdicts {
		// A pending decision's context may still arrive: it is in
		// neither the numerator nor the denominator.
		rs.denominator += " AND context != '" + c.ContextPending + "'"
	}
	for i, k := range r.By {
		col, _, ok := fields.column(k)
		switch {
		case !ok:
			bad(fmt.Sprintf("by[%d]", i), "%q is %s", k, fields.what)
		case col == "workflow" || col == "decision_id":
			bad(fmt.Sprintf("by[%d]", i), "%q cannot split a ratio (the workflow always does; a decision is what is counted)", k)
		default:
			rs.labels = append(rs.labels, col)
		}
	}
	return rs
}

func ignore(string, string, ...any) {}

// outerLabels are the outer query's label columns: each l_<column> of
// the inner query, named as the label.
func (rs *ratioSQL) outerLabels() []string {
	out := make([]string, len(rs.labels))
	for i, col := range rs.labels {
		out[i] = "l_" + col + " AS " + col
	}
	return out
}

// labelAs is the label columns, each taken with pick (argMax(%s, time),
// any(%s)) as prefix<column> unless a filter pins it, and their
// parameters.
func (rs *ratioSQL) labelAs(pick, prefix string, f *filters) ([]string, []any) {
	out := make([]string, len(rs.labels))
	var args []any
	for i, col := range rs.labels {
		expr, a := f.label(col, fmt.Sprintf(pick, "toString("+col+")"))
		out[i] = expr + " AS " + prefix + col
		args = append(args, a...)
	}
	return out, args
}

// outputsOnly says whether a denominator counts model outputs alone: their
// model labels are the outputs' own, and looking them up again would only
// cost a join (a quarter of a second per rule over 10M events).
func outputsOnly(den map[string]any) bool {
	if len(den) != 1 {
		return false
	}
	switch v := den[c.DecisionEvent].(type) {
	case string:
		return v == c.EventModelOutput
	case []any:
		return len(v) == 1 && v[0] == c.EventModelOutput
	}
	return false
}

// decisionLabel is a decision's label, from the latest of its counted
// signals that has one: a rework carries no model version, the output it
// reworks does.
const decisionLabel = "ifNull(argMaxIf(%[1]s, time, ifNull(%[1]s, '') != ''), '')"

// decisionLabelIf is decisionLabel among the signals a condition selects.
const decisionLabelIf = "ifNull(argMaxIf(%[1]s, time, %[2]s AND ifNull(%[1]s, '') != ''), '')"

// matchLabels selects the rows of one alert: each label column equal to
// the alert's label.
func (rs *ratioSQL) matchLabels(labels map[string]string) (string, []any) {
	var match string
	var args []any
	for _, col := range rs.labels {
		match += " AND toString(" + col + ") = ?"
		args = append(args, labels[col])
	}
	return match, args
}

// within selects the window ending at {now} (its length the next argument).
func (rs *ratioSQL) within() string {
	return " AND " + rs.time + " >= {now} - toIntervalSecond(?) AND " + rs.time + " <= {now}"
}

func ratioQuery(rules []*Rule, db string, f *filters) (string, []any) {
	r := rules[0]
	rs := r.ratioSQL(ignore)
	f.on("workflow", r.Workflow)
	nums := make([]*ratioSQL, len(rules))
	for i, ri := range rules {
		nums[i] = ri.ratioSQL(ignore)
	}
	dens, of := denominators(nums)
	cols := make([]string, len(rules))
	var args []any
	for i, ri := range rules {
		value := resultColumn("value", i, len(rules))
		cols[i] = value + `, toUInt8(n >= ? AND ` + value + ` > ?) AS ` + resultColumn(firingColumn, i, len(rules))
		if len(dens) > 1 {
			cols[i] += fmt.Sprintf(`, toUInt8(den = %d) AS `, of[i]) + resultColumn(dataColumn, i, len(rules))
		}
		args = append(args, ri.MinCount, ri.MaxRate)
	}
	var shares string
	var sharesArgs []any
	if len(dens) > 1 {
		shares, sharesArgs = rs.sharesByDenominator(rules, nums, dens, of, db, seconds(r.Window), f)
	} else {
		shares, sharesArgs = rs.shares(r, nums, db, seconds(r.Window), f)
	}
	q := `SELECT ` + strings.Join(rs.labels, ", ") + `, ` + strings.Join(cols, ", ") + `
FROM (
  ` + shares + `
)`
	return q, append(args, sharesArgs...)
}

// modelLabels are the labels a decision takes from its model output
// when none of the signals a share counts carries them.
func (rs *ratioSQL) modelLabels() []string {
	var out []string
	for _, col := range rs.labels {
		if col == "model_version" || col == "model_name" {
			out = append(out, col)
		}
	}
	return out
}

// denominators are the distinct denominators of nums (rules sharing a
// query), in the order they first appear, and of[i] the index of nums[i]'s.
func denominators(nums []*ratioSQL) (dens []*ratioSQL, of []int) {
	of = make([]int, len(nums))
	at := map[string]int{}
	for i, n := range nums {
		key := togetherKey(n.denominator, n.denArgs)
		j, seen := at[key]
		if !seen {
			j = len(dens)
			at[key] = j
			dens = append(dens, n)
		}
		of[i] = j
	}
	return dens, of
}

// sharesByDenominator is shares for rules over a window's decisions that
// count different signals (count: decisions, the same window and labels):
// one scan of every signal any denominator counts, each decision in each
// denominator that has one of its signals, with the numerator and labels
// it has there (a decision's latest counted signal, and its label from
// the latest that carries one, are of the signals its rule counts), then
// a row per denominator (den) and label set, for ratioQuery's data_<i>.
func (rs *ratioSQL) sharesByDenominator(rules []*Rule, nums, dens []*ratioSQL, of []int, db string, window int64, f *filters) (string, []any) {
	units, args := rs.unitsByDenominator(rules, nums, dens, of, db, window, f)
	in := make([]string, len(dens))
	idx := make([]string, len(dens))
	for j := range dens {
		in[j], idx[j] = fmt.Sprintf("in_%d", j), fmt.Sprint(j)
	}
	joined := []string{`[` + strings.Join(idx, ", ") + `] AS den`, `[` + strings.Join(in, ", ") + `] AS counted`}
	for _, col := range rs.labels {
		per := make([]string, len(dens))
		for j := range dens {
			per[j] = fmt.Sprintf("l_%s_%d", col, j)
		}
		joined = append(joined, `[`+strings.Join(per, ", ")+`] AS l_`+col)
	}
	q := `SELECT den, ` + strings.Join(rs.outerLabels(), ", ") + `, ` + strings.Join(shareValues(len(nums)), ", ") + `, count() AS n
  FROM (
    ` + units + `
  )
  ARRAY JOIN ` + strings.Join(joined, ", ") + `
  WHERE counted
  GROUP BY den, ` + strings.Join(rs.labels, ", ") + groupsOnly
	return q, args
}

// unitsByDenominator is units for sharesByDenominator: per decision,
// in_<j> (it has a signal denominator j counts), num_<i> (rule i's
// numerator of its latest signal among those its denominator counts)
// and l_<column>_<j> (its label among them; a model label from its
// output when none of them has one and denominator j counts other
// signals than outputs, as units does).
func (rs *ratioSQL) unitsByDenominator(rules []*Rule, nums, dens []*ratioSQL, of []int, db string, window int64, f *filters) (string, []any) {
	modelCols := rs.modelLabels()
	fallback := make([]bool, len(dens))
	for i, ri := range rules {
		if len(modelCols) > 0 && !outputsOnly(ri.Denominator) {
			fallback[of[i]] = true
		}
	}
	anyFallback := slices.Contains(fallback, true)
	// Each signal flagged by the denominators and numerators it matches,
	// once, for the aggregates to read.
	var flags []string
	var flagArgs []any
	var counted []string
	var countedArgs []any
	for j, d := range dens {
		flags = append(flags, "("+d.denominator+fmt.Sprintf(") AS d_%d", j))
		flagArgs = append(flagArgs, d.denArgs...)
		counted = append(counted, "("+d.denominator+")")
		countedArgs = append(countedArgs, d.denArgs...)
	}
	for i, nu := range nums {
		flags = append(flags, "("+nu.numerator+fmt.Sprintf(") AS n_%d", i))
		flagArgs = append(flagArgs, nu.numArgs...)
	}
	var cols []string
	for j := range dens {
		cols = append(cols, fmt.Sprintf("toUInt8(countIf(d_%d) > 0) AS in_%d", j, j))
	}
	for i := range nums {
		cols = append(cols, fmt.Sprintf("argMaxIf(n_%d, time, d_%d) AS ", i, of[i])+resultColumn("num", i, len(nums)))
	}
	prefix := "l_"
	if anyFallback {
		prefix = "p_"
	}
	var labelArgs []any
	for j := range dens {
		for _, col := range rs.labels {
			c := "toString(" + col + ")"
			expr, a := f.label(col, fmt.Sprintf(decisionLabelIf, c, fmt.Sprintf("d_%d", j)))
			cols = append(cols, fmt.Sprintf("%s AS %s%s_%d", expr, prefix, col, j))
			labelArgs = append(labelArgs, a...)
		}
	}
	q := `SELECT u, ` + strings.Join(cols, ", ") + `
    FROM (
      SELECT cityHash64(decision_id) AS u, time, ` + strings.Join(append(slices.Clone(rs.labels), flags...), ", ") + `
      FROM ` + db + `.` + rs.from + `
      WHERE (` + strings.Join(counted, " OR ") + `) AND decision_id != ''` + rs.within() + f.and() + `
    )
    GROUP BY u`
	args := append(append(append(labelArgs, flagArgs...), countedArgs...), window)
	args = append(args, f.args...)
	if !anyFallback {
		return q, args
	}
	out := []string{"u"}
	for j := range dens {
		out = append(out, fmt.Sprintf("any(d.in_%d) AS in_%d", j, j))
	}
	for i := range nums {
		num := resultColumn("num", i, len(nums))
		out = append(out, "any(d."+num+") AS "+num)
	}
	outputCols := append([]string{outputUnit + " AS u", "time"}, modelCols...)
	var colArgs []any
	for j := range dens {
		for _, col := range rs.labels {
			p := fmt.Sprintf("d.p_%s_%d", col, j)
			expr := "any(" + p + ")"
			if fallback[j] && slices.Contains(modelCols, col) {
				expr = "if(any(" + p + ") != '', any(" + p + "), toString(argMin(o." + col + ", o.time)))"
			}
			expr, a := f.label(col, expr)
			out = append(out, fmt.Sprintf("%s AS l_%s_%d", expr, col, j))
			colArgs = append(colArgs, a...)
		}
	}
	return withOutputs(q, args, out, colArgs, outputCols, db, window, f)
}

// withOutputs is units (q and its args) looked up by decision in the
// window's model outputs and the lookback before it (as o; the units as
// d), for labels that come from the decision's output: a day of outputs
// streams through a hash table of the window's decisions (the right side)
// and only the matches are aggregated. The other way round, grouping the
// day's outputs by decision first, took a third longer at 10M events. A
// decision without output keeps its one row, with empty output columns.
// cols are the result's columns, over d and o, colArgs their parameters,
// outputCols what is read of each output.
func withOutputs(q string, args []any, cols []string, colArgs []any, outputCols []string, db string, window int64, f *filters) (string, []any) {
	q = `SELECT ` + strings.Join(cols, ", ") + `
    FROM (
      SELECT ` + strings.Join(outputCols, ", ") + `
      FROM ` + db + `.model_outputs
      WHERE time >= {now} - toIntervalSecond(?) AND time <= {now}` + f.and() + `
    ) AS o
    RIGHT JOIN (
    ` + q + `
    ) AS d USING (u)
    GROUP BY u`
	return q, append(append(append(colArgs, window+int64(Lookback/time.Second)), f.args...), args...)
}

// shares is the query of the share the numerator selects of what the
// denominator counts in the window ending at {now}, per label: the label
// columns, value and n (what was counted); with several numerators (nums,
// of rules counting the same units), value_<i> for each.
func (rs *ratioSQL) shares(r *Rule, nums []*ratioSQL, db string, window int64, f *filters) (string, []any) {
	units, args := rs.units(r, nums, db, window, false, f)
	q := `SELECT ` + strings.Join(rs.outerLabels(), ", ") + `, ` + strings.Join(shareValues(len(nums)), ", ") + `, count() AS n
  FROM (
    ` + units + `
  )
  GROUP BY ` + strings.Join(rs.labels, ", ") + groupsOnly
	return q, args
}

// shareValues are the shares of n numerators (num_<i>) of the units a
// group counts, as value_<i>.
func shareValues(n int) []string {
	values := make([]string, n)
	for i := range values {
		values[i] = `countIf(` + resultColumn("num", i, n) + `) / count() AS ` + resultColumn("value", i, n)
	}
	return values
}

// units is the query of what a share counts in the window ending at {now},
// one row per unit (a decision, an event or a verdict): u, its decision
// id (id, when ids: only examples name decisions, and keeping a string per
// unit costs a tenth of a share), its latest time (last), whether the
// numerator selects it (num; with several numerators, nums, num_<i> for
// each) and its labels (l_<column>).
func (rs *ratioSQL) units(r *Rule, nums []*ratioSQL, db string, window int64, ids bool, f *filters) (string, []any) {
	unit := "cityHash64(decision_id)"
	pick := "argMax(%s, time)" // each decision by its latest counted signal
	labelPick := decisionLabel
	extra := " AND decision_id != ''"
	switch r.Count {
	case countEvents:
		unit, pick, labelPick, extra = "event_id", "any(%s)", "any(%s)", ""
	case countVerdicts:
		unit, pick, labelPick, extra = "cityHash64(decision_id)", "any(%s)", "any(%s)", "" // one verdict per decision
	}
	// A decision's model labels come from its model output when none of
	// its counted signals has them: a human action names no model version.
	var fallback []string
	if r.Count == countDecisions && !outputsOnly(r.Denominator) {
		fallback = rs.modelLabels()
	}
	prefix := "l_"
	if len(fallback) > 0 {
		prefix = "p_"
	}
	id := ""
	if ids {
		id = "any(decision_id) AS id, "
	}
	numCols := make([]string, len(nums))
	var numArgs []any
	for i, n := range nums {
		numCols[i] = fmt.Sprintf(pick, n.numerator) + ` AS ` + resultColumn("num", i, len(nums))
		numArgs = append(numArgs, n.numArgs...)
	}
	labels, labelArgs := rs.labelAs(labelPick, prefix, f)
	q := `SELECT ` + unit + ` AS u, ` + id + `max(` + rs.time + `) AS last, ` + strings.Join(numCols, ", ") + `, ` +
		strings.Join(labels, ", ") + `
    FROM ` + db + `.` + rs.from + `
    WHERE ` + rs.denominator + extra + rs.within() + f.and() + `
    GROUP BY u`
	args := append(append(numArgs, labelArgs...), rs.denArgs...)
	args = append(args, window)
	args = append(args, f.args...)
	if len(fallback) == 0 {
		return q, args
	}
	// The output may precede the counted signals by up to the lookback.
	cols := []string{"u", "any(d.last) AS last"}
	for i := range nums {
		num := resultColumn("num", i, len(nums))
		cols = append(cols, "any(d."+num+") AS "+num)
	}
	if ids {
		cols = append(cols, "any(d.id) AS id")
	}
	outputCols := []string{outputUnit + " AS u", "time"}
	var colArgs []any
	for _, col := range rs.labels {
		expr := "any(d.p_" + col + ")"
		if slices.Contains(fallback, col) {
			expr = "if(any(d.p_" + col + ") != '', any(d.p_" + col + "), toString(argMin(o." + col + ", o.time)))"
			outputCols = append(outputCols, col)
		}
		expr, a := f.label(col, expr)
		cols = append(cols, expr+" AS l_"+col)
		colArgs = append(colArgs, a...)
	}
	return withOutputs(q, args, cols, colArgs, outputCols, db, window, f)
}

// The latest decisions of the alert's labels whose counted signal the
// numerator selects (for count: decisions, by their latest one).
func ratioExamples(r *Rule, db string, labels map[string]string, n int) (string, []any) {
	rs := r.ratioSQL(ignore)
	f := &filters{}
	f.on("workflow", labels["workflow"])
	units, args := rs.units(r, []*ratioSQL{rs}, db, windowOrHour(r), true, f)
	where := "num AND id != ''"
	for _, col := range rs.labels {
		where += " AND l_" + col + " = ?"
		args = append(args, labels[col])
	}
	q := `SELECT id FROM (
  ` + units + `
)
WHERE ` + where + `
GROUP BY id
ORDER BY max(last) DESC, id
LIMIT ?`
	return q, append(args, n)
}
