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
		check:             checkSLO,
		query:             sloQuery,
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

func sloQuery(r *Rule, db string, f *filters) (string, []any) {
	rs := r.ratioSQL(ignore)
	f.on("workflow", r.Workflow)
	budget := 1 - r.Objective
	shares, args := rs.shares(r, []*ratioSQL{rs}, db, seconds(r.LongWindow), seconds(r.ShortWindow), f)
	// What the SLI counts in the long window is the data: a label set
	// with nothing in the short window is there, and not burning now.
	// s.value is the share (value alone would be the burn rate's alias).
	q := `SELECT ` + strings.Join(rs.labels, ", ") + `, s.value / ? AS value,
    toUInt8(s.n >= ? AND s.value >= ? AND s.short_n > 0 AND s.short_value >= ?) AS firing
FROM (
  ` + shares + `
) AS s`
	threshold := r.BurnRate * budget
	return q, append([]any{budget, r.MinCount, threshold, threshold}, args...)
}

// The bad decisions of the short window: what is burning now.
func sloExamples(r *Rule, db string, labels map[string]string, n int) (string, []any) {
	w := *r
	w.Window = w.ShortWindow
	return ratioExamples(&w, db, labels, n)
}
