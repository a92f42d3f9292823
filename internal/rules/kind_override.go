package rules

import "time"

// override_rate: the share of a workflow's decisions whose latest human
// action overrode the recommendation, by model version if asked.
func init() {
	register(map[Kind]*kindSpec{KindOverrideRate: {
		check: func(r *Rule, bad problem) {
			needWindow(r, bad)
			needRate(r, bad)
		},
		query:    overrideQuery,
		examples: overrideExamples,
		summary:  `reviewers override {{ printf "%.0f" (mul100 .Value) }}% of {{ .Labels.workflow }} model {{ .Labels.model_version }} recommendations`,
	}})
}

func overrideQuery(r *Rule, db string, f *filters) (string, []any) {
	f.on("workflow", r.Workflow)
	// Rates count decisions, each by its latest action in the window,
	// so that a resent action (the same event stored twice) or a
	// decision acted on twice changes no number.
	// The subqueries' aliases differ from column names: ClickHouse
	// resolves an alias before a column in WHERE.
	// Decisions are told apart by a 64-bit hash of their ID: grouping
	// on it instead of the string takes a third less time, and two of
	// a million decisions collide with a chance under one in 10^7.
	wf, wfArgs := f.label("workflow", "any(workflow)")
	actions := `SELECT cityHash64(decision_id) AS d, ` + wf + ` AS wf, argMax(human_action, time) AS action
  FROM ` + db + `.events
  WHERE layer = 'human' AND event = 'human.action' AND human_action != '' AND decision_id != ''
    AND time >= {now} - toIntervalSecond(?) AND time <= {now}` + f.and() + `
  GROUP BY d`
	if !r.ByModel {
		q := `SELECT wf AS workflow, countIf(action = 'overridden') / count() AS value, toUInt8(count() >= ? AND value > ?) AS firing
FROM (
  ` + actions + `
)
GROUP BY workflow` + groupsOnly
		return q, append(append([]any{r.MinCount, r.MaxRate}, wfArgs...), append([]any{seconds(r.Window)}, f.args...)...)
	}
	// Human actions rarely carry the model version: it is the
	// decision's model output's, which may precede the action by up to
	// the lookback. Both sides count each decision once: the day of
	// outputs streams through a hash table of the window's acted
	// decisions (as a ratio's model labels do).
	// The workflow filter applies to both sides: a decision's model
	// output belongs to the same workflow, and the output side is the
	// larger scan.
	joinedWf, joinedArgs := f.label("workflow", "any(h.wf)")
	q := `SELECT wf AS workflow, mv AS model_version, countIf(action = 'overridden') / count() AS value, toUInt8(count() >= ? AND value > ?) AS firing
FROM (
  SELECT d, ` + joinedWf + ` AS wf, any(h.action) AS action, toString(argMin(o.model_version, o.time)) AS mv
  FROM (
    SELECT ` + outputUnit + ` AS d, time, model_version
    FROM ` + db + `.model_outputs
    WHERE time >= {now} - toIntervalSecond(?) AND time <= {now}` + f.and() + `
  ) AS o
  INNER JOIN (
    ` + actions + `
  ) AS h USING (d)
  GROUP BY d
)
GROUP BY workflow, model_version` + groupsOnly
	out := append([]any{r.MinCount, r.MaxRate}, joinedArgs...)
	out = append(out, seconds(r.Window)+int64(Lookback/time.Second))
	out = append(out, f.args...)
	out = append(out, wfArgs...)
	out = append(out, seconds(r.Window))
	return q, append(out, f.args...)
}

// The decisions overridden in the window, of the alert's model version.
func overrideExamples(r *Rule, db string, labels map[string]string, n int) (string, []any) {
	window := windowOrHour(r)
	return eventExamples(db, labels, n, window, func(e *examplesWhere) {
		e.add("layer = 'human'")
		e.add("event = 'human.action'")
		e.add("human_action = 'overridden'")
		if mv, has := labels["model_version"]; has {
			e.add(`decision_id IN (SELECT decision_id FROM `+db+`.events WHERE layer = 'model' AND event = 'model.output'
    AND model_version = ? AND time >= {now} - toIntervalSecond(?) AND time <= {now})`, mv, window+int64(Lookback/time.Second))
		}
	})
}
