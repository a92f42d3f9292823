package rules

import (
	"strings"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
)

// unsupported_certainty_rate, missing_context_rate, low_confidence_share:
// the share of a workflow's judged decisions whose verdict has the finding.
func init() {
	spec := func(summary string) *kindSpec {
		return &kindSpec{
			check: func(r *Rule, bad problem) {
				needWindow(r, bad)
				needRate(r, bad)
			},
			// The verdict rates of a workflow over one window read the
			// same verdicts: one query.
			together: func(r *Rule) string { return togetherKey("verdicts", r.Window, r.Workflow) },
			merged:   verdictQuery,
			examples: verdictExamples,
			summary:  summary,
		}
	}
	register(map[Kind]*kindSpec{
		KindUnsupportedCertainty: spec(`{{ printf "%.1f" (mul100 .Value) }}% of {{ .Labels.workflow }} decisions are confident on stale or missing context`),
		KindMissingContext:       spec(`{{ printf "%.1f" (mul100 .Value) }}% of {{ .Labels.workflow }} decisions miss required context`),
		KindLowConfidence:        spec(""),
	})
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

func verdictQuery(rs []*Rule, db string, f *filters) (string, []any) {
	r := rs[0]
	f.on("workflow", r.Workflow)
	// Verdicts are derived by ClickHouse and kept in verdicts, one row
	// per decision (FINAL: its latest judgment), counted by decision
	// time. A pending decision (context that may still arrive) is in
	// neither the numerator nor the denominator.
	// While every decision of the window is pending (context on its
	// way), there is no row: the rate is unknown, not zero.
	cols := make([]string, len(rs))
	var args []any
	for i, ri := range rs {
		value := resultColumn("value", i, len(rs))
		cols[i] = `countIf(` + verdictCondition[ri.Kind] + `) / count() AS ` + value + `, toUInt8(count() >= ? AND ` + value + ` > ?) AS ` + resultColumn(firingColumn, i, len(rs))
		args = append(args, ri.MinCount, ri.MaxRate)
	}
	q := `SELECT workflow, ` + strings.Join(cols, ", ") + `
FROM ` + db + `.verdicts FINAL
WHERE ` + judgedIn + f.and() + `
GROUP BY workflow`
	return q, append(append(args, seconds(r.Window)), f.args...)
}

// The latest decisions of the window whose verdict shows it.
func verdictExamples(r *Rule, db string, labels map[string]string, n int) (string, []any) {
	q := `SELECT decision_id FROM ` + db + `.verdicts FINAL
WHERE workflow = ? AND ` + judgedIn + ` AND ` + verdictCondition[r.Kind] + `
ORDER BY decision_time DESC, decision_id
LIMIT ?`
	return q, []any{labels["workflow"], seconds(r.Window), n}
}
