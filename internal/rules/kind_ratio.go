package rules

import (
	"fmt"
	"sort"
	"strings"

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
func init() {
	register(map[Kind]*kindSpec{KindRatio: {
		check:    checkRatio,
		query:    ratioQuery,
		presence: ratioPresence,
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
)

// ratioSQL is a ratio rule's filters and labels as SQL.
type ratioSQL struct {
	denominator, numerator string
	denArgs, numArgs       []any
	labels                 []string // columns, workflow first
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
func ratioFilter(field string, m map[string]any, bad problem) (string, []any) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var where []string
	var args []any
	for _, k := range keys {
		col, typ, ok := ratioColumn(k)
		if !ok {
			bad(field+"."+k, "not a stored convention (decision.event, human.action, business.outcome, data.complete, ...)")
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
	default:
		bad("count", "%q is not decisions or events", r.Count)
	}
	if len(r.Denominator) == 0 {
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
	rs := &ratioSQL{labels: []string{"workflow"}}
	rs.denominator, rs.denArgs = ratioFilter("denominator", r.Denominator, bad)
	rs.numerator, rs.numArgs = ratioFilter("numerator", r.Numerator, bad)
	for i, k := range r.By {
		col, _, ok := ratioColumn(k)
		switch {
		case !ok:
			bad(fmt.Sprintf("by[%d]", i), "%q is not a stored convention", k)
		case col == "workflow" || col == "decision_id":
			bad(fmt.Sprintf("by[%d]", i), "%q cannot split a ratio (the workflow always does; a decision is what is counted)", k)
		default:
			rs.labels = append(rs.labels, col)
		}
	}
	return rs
}

func ignore(string, string, ...any) {}

// labelColumns are the inner query's label columns, each taken with pick
// ("argMax(%s, time)", "any(%s)") as l_<column>, and the outer query's,
// named as the labels.
func (rs *ratioSQL) labelColumns(pick string) (inner, outer []string) {
	inner = make([]string, len(rs.labels))
	outer = make([]string, len(rs.labels))
	for i, col := range rs.labels {
		inner[i] = fmt.Sprintf(pick, "toString("+col+")") + " AS l_" + col
		outer[i] = "l_" + col + " AS " + col
	}
	return inner, outer
}

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

func ratioQuery(r *Rule, db string, f *filters) (string, []any) {
	rs := r.ratioSQL(ignore)
	f.on("workflow", r.Workflow)
	shares, args := rs.shares(r, db, seconds(r.Window), f)
	q := `SELECT ` + strings.Join(rs.labels, ", ") + `, value
FROM (
  ` + shares + `
)
WHERE n >= ? AND value > ?`
	return q, append(args, r.MinCount, r.MaxRate)
}

// shares is the query of the share the numerator selects of what the
// denominator counts in the window ending at {now}, per label: the label
// columns, value and n (what was counted).
func (rs *ratioSQL) shares(r *Rule, db string, window int64, f *filters) (string, []any) {
	unit := "cityHash64(decision_id)"
	pick := "argMax(%s, time)" // each decision by its latest counted signal
	extra := " AND decision_id != ''"
	if r.Count == countEvents {
		unit, pick, extra = "event_id", "any(%s)", ""
	}
	inner, outer := rs.labelColumns(pick)
	q := `SELECT ` + strings.Join(outer, ", ") + `, countIf(num) / count() AS value, count() AS n
  FROM (
    SELECT ` + unit + ` AS u, ` + strings.Join(inner, ", ") + `, ` + fmt.Sprintf(pick, rs.numerator) + ` AS num
    FROM ` + db + `.events
    WHERE ` + rs.denominator + extra + ` AND time >= {now} - toIntervalSecond(?) AND time <= {now}` + f.and() + `
    GROUP BY u
  )
  GROUP BY ` + strings.Join(rs.labels, ", ")
	args := append([]any{}, rs.numArgs...)
	args = append(args, rs.denArgs...)
	args = append(args, window)
	return q, append(args, f.args...)
}

func ratioPresence(r *Rule, db string) (string, []any) {
	rs := r.ratioSQL(ignore)
	f := &filters{}
	f.on("workflow", r.Workflow)
	return "SELECT count() FROM " + db + ".events WHERE " + rs.denominator + " AND time >= {now} - toIntervalSecond(?) AND time <= {now}" + f.and(),
		append(append(append([]any{}, rs.denArgs...), seconds(r.Window)), f.args...)
}

// The latest decisions of the alert's labels whose counted signal the
// numerator selects (for count: decisions, by their latest one).
func ratioExamples(r *Rule, db string, labels map[string]string, n int) (string, []any) {
	rs := r.ratioSQL(ignore)
	match, matchArgs := rs.matchLabels(labels)
	args := append([]any{}, rs.denArgs...)
	args = append(args, windowOrHour(r))
	args = append(args, matchArgs...)
	having := "max(" + rs.numerator + ")"
	if r.Count == countDecisions {
		having = "argMax(" + rs.numerator + ", time)"
	}
	q := `SELECT decision_id FROM ` + db + `.events
WHERE ` + rs.denominator + ` AND decision_id != '' AND time >= {now} - toIntervalSecond(?) AND time <= {now}` + match + `
GROUP BY decision_id
HAVING ` + having + `
ORDER BY max(time) DESC, decision_id
LIMIT ?`
	args = append(args, rs.numArgs...)
	return q, append(args, n)
}
