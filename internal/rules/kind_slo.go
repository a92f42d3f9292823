package rules

import (
	"strings"
)

// slo_burn_rate: a decision SLO's error budget burning too fast. The SLI is
// a ratio (count, denominator, numerator: the numerator selects the bad
// ones); the objective is the good share. The rule fires while the bad
// share over both windows is at least burn_rate times the budget
// (1 - objective): the long window says the burn is real, the short one
// that it is still going on, so the alert resolves minutes after the burn
// stops. Value: the burn rate over the long window.
//
//   - alert: ClaimsContextSLOPage          # 1% budget gone in about 2 days
//     kind: slo_burn_rate
//     objective: 0.99
//     count: decisions
//     denominator: {decision.event: model.output}
//     numerator: {model.unsafe: true}
//     long_window: 1h
//     short_window: 5m
//     burn_rate: 14.4
//     labels: {severity: page}
func init() {
	register(map[Kind]*kindSpec{KindSLOBurnRate: {
		check: checkSLO,
		// The burn rates of one SLI of a workflow (the workbook's fast
		// and slow pair) read the same units over their longest window.
		// Only with the workflow as their one label: a unit's other
		// labels come from its latest counted signal that has them, which
		// a longer scan may find where a window's own would not.
		together: func(r *Rule) string {
			rs := r.ratioSQL(ignore)
			if r.Workflow == "" || len(rs.labels) > 1 {
				return ""
			}
			return togetherKey("slo", r.Count, r.Workflow, rs.denominator, rs.denArgs, rs.numerator, rs.numArgs)
		},
		merged:            sloQuery,
		examples:          sloExamples,
		summary:           `{{ .Labels.workflow }} burns its error budget {{ printf "%.1f" .Value }} times as fast as its objective allows`,
		heldBackBySilence: true,
	}})
}

func checkSLO(r *Rule, bad problem) {
	if r.Objective <= 0 || r.Objective >= 1 {
		bad("objective", "%v is outside (0, 1): the share of good decisions or events, e.g. 0.99", r.Objective)
	}
	if r.BurnRate <= 0 {
		bad("burn_rate", "must be positive, got %v (the workbook's 14.4 pages, 6 opens a ticket)", r.BurnRate)
	}
	if r.LongWindow <= 0 {
		bad("long_window", "required and must be positive")
	}
	if r.ShortWindow <= 0 || r.ShortWindow >= r.LongWindow {
		bad("short_window", "required, positive and shorter than long_window")
	}
	if r.Window != 0 || r.MaxRate != 0 {
		bad("window", "an slo_burn_rate rule has long_window and short_window, and its rate follows from objective and burn_rate")
	}
	checkShare(r, bad, "what the SLI counts (e.g. {decision.event: model.output})", "which of it are bad (e.g. {model.unsafe: true})")
}

func sloQuery(rules []*Rule, db string, f *filters) (string, []any) {
	r := rules[0]
	rs := r.ratioSQL(ignore)
	f.on("workflow", r.Workflow)
	longest := r.LongWindow
	for _, ri := range rules {
		longest = max(longest, ri.LongWindow)
	}
	units, unitArgs := rs.units(r, []*ratioSQL{rs}, db, seconds(longest), false, f)
	outer := rs.outerLabels()
	// A window's share is of the units whose latest counted signal falls
	// in it: one scan for every window, each unit under one label in all.
	const in = "last >= {now} - toIntervalSecond(?)"
	var shares, cols []string
	var sharesArgs, args []any
	n := len(rules)
	for i, ri := range rules {
		col := func(name string) string { return resultColumn(name, i, n) }
		for _, w := range []struct {
			name   string
			window int64
		}{{"long", seconds(ri.LongWindow)}, {"short", seconds(ri.ShortWindow)}} {
			shares = append(shares, `countIf(num AND `+in+`) / countIf(`+in+`) AS `+col(w.name+"_value")+`, countIf(`+in+`) AS `+col(w.name+"_n"))
			sharesArgs = append(sharesArgs, w.window, w.window, w.window)
		}
		// What the SLI counts in the long window is the data: a label set
		// with nothing in the short window is there, and not burning now.
		// The shares are s.*: value alone would be the burn rate's alias.
		budget := 1 - ri.Objective
		threshold := ri.BurnRate * budget
		cols = append(cols, `s.`+col("long_value")+` / ? AS `+col("value")+`,
    toUInt8(s.`+col("long_n")+` >= ? AND s.`+col("long_value")+` >= ? AND s.`+col("short_n")+` > 0 AND s.`+col("short_value")+` >= ?) AS `+col(firingColumn))
		args = append(args, budget, ri.MinCount, threshold, threshold)
		if n > 1 {
			// A shorter long window than the scan's may hold nothing.
			cols = append(cols, `toUInt8(s.`+col("long_n")+` > 0) AS `+col(dataColumn))
		}
	}
	q := `SELECT ` + strings.Join(rs.labels, ", ") + `, ` + strings.Join(cols, ", ") + `
FROM (
  SELECT ` + strings.Join(outer, ", ") + `, ` + strings.Join(shares, ", ") + `
  FROM (
    ` + units + `
  )
  GROUP BY ` + strings.Join(rs.labels, ", ") + groupsOnly + `
) AS s`
	args = append(args, sharesArgs...)
	return q, append(args, unitArgs...)
}

// The bad decisions of the short window: what is burning now.
func sloExamples(r *Rule, db string, labels map[string]string, n int) (string, []any) {
	w := *r
	w.Window = w.ShortWindow
	return ratioExamples(&w, db, labels, n)
}
