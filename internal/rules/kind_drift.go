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
		query:    driftQuery,
		presence: eventPresence("model", "model.output"),
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
	q := `SELECT workflow, abs(avgIf(confidence, time >= {now} - toIntervalSecond(?)) - avgIf(confidence, time < {now} - toIntervalSecond(?))) AS value
FROM ` + db + `.model_outputs FINAL
WHERE confidence IS NOT NULL AND time >= {now} - toIntervalSecond(?) AND time <= {now}` + f.and() + `
GROUP BY workflow
HAVING countIf(time >= {now} - toIntervalSecond(?)) >= ? AND countIf(time < {now} - toIntervalSecond(?)) >= ? AND value > ?`
	return q, append(append([]any{w, w, seconds(r.Baseline)}, f.args...), w, r.MinCount, w, r.MinCount, r.MaxDrift)
}
