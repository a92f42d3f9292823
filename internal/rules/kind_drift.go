package rules

// confidence_drift: how far a workflow's mean confidence over the window
// moved from the rest of the baseline.
func init() {
	register(map[Kind]*kindSpec{KindConfidenceDrift: {
		check: func(r *Rule, bad problem) {
			needWindow(r, bad)
			if r.Baseline <= r.Window {
				bad("baseline", "must be longer than window")
			}
			if r.MaxDrift <= 0 || r.MaxDrift > 1 {
				bad("max_drift", "%v is outside (0, 1]", r.MaxDrift)
			}
		},
		query: driftQuery,
		// The latest model outputs of the window.
		examples: func(r *Rule, db string, labels map[string]string, n int) (string, []any) {
			return eventExamples(db, labels, n, windowOrHour(r), func(e *examplesWhere) {
				e.add("layer = 'model'")
				e.add("event = 'model.output'")
				e.add("confidence IS NOT NULL")
			})
		},
	}})
}

func driftQuery(r *Rule, db string, f *filters) (string, []any) {
	f.on("workflow", r.Workflow)
	w := seconds(r.Window)
	// model_outputs holds each output once (FINAL), however often it
	// was sent: a merge of sorted parts, where hashing every output's
	// ID in events cost ten times more.
	// The window's outputs are the data, with a confidence or not: a
	// workflow without outputs in it has none, whatever its baseline
	// holds. The means and counts are of the confident ones; with an
	// empty side a mean is NaN, which fires nothing.
	q := `SELECT workflow, abs(avgIf(assumeNotNull(confidence), c AND recent) - avgIf(assumeNotNull(confidence), c AND NOT recent)) AS value,
    toUInt8(countIf(c AND recent) >= ? AND countIf(c AND NOT recent) >= ? AND value > ?) AS firing
FROM (
  SELECT workflow, confidence, confidence IS NOT NULL AS c, time >= {now} - toIntervalSecond(?) AS recent
  FROM ` + db + `.model_outputs FINAL
  WHERE time >= {now} - toIntervalSecond(?) AND time <= {now}` + f.and() + `
)
GROUP BY workflow
HAVING countIf(recent) > 0`
	args := append([]any{r.MinCount, r.MinCount, r.MaxDrift, w, seconds(r.Baseline)}, f.args...)
	return q, args
}
