package rules

import "time"

// evaluation_score: the share of a workflow's evaluated decisions whose
// latest score from an evaluator (a gen_ai.evaluation.result: groundedness,
// relevance, a judge model's verdict) is under min_score, per evaluator.
// A fluent answer that its own evaluators fail is the quality signal the
// model layer has besides confidence.
func init() {
	register(map[Kind]*kindSpec{KindEvaluationScore: {
		check: func(r *Rule, bad problem) {
			needWindow(r, bad)
			needRate(r, bad)
		},
		query:             evaluationQuery,
		examples:          evaluationExamples,
		summary:           `{{ printf "%.0f" (mul100 .Value) }}% of {{ .Labels.workflow }} decisions score under the floor on {{ .Labels.evaluation }}`,
		heldBackBySilence: true,
	}})
}

func evaluationQuery(r *Rule, db string, f *filters) (string, []any) {
	scores := &filters{}
	scores.on("evaluation_name", r.Evaluation)
	f.on("workflow", r.Workflow)
	// Each decision once per evaluator, by its latest score: an output
	// evaluated again, or an evaluation resent, changes no number. The
	// workflow is the scored output's: an evaluator (a separate service,
	// a judge model) need not know it. Outputs may precede their scores by
	// up to the lookback: the day of outputs streams through a hash table
	// of the window's scores (as a ratio's model labels do).
	wf, wfArgs := f.label("workflow", "any(o.workflow)")
	q := `SELECT wf AS workflow, name AS evaluation, countIf(score < ?) / count() AS value, toUInt8(count() >= ? AND value > ?) AS firing
FROM (
  SELECT d, e.name AS name, any(e.score) AS score, ` + wf + ` AS wf
  FROM (
    SELECT ` + outputUnit + ` AS d, workflow
    FROM ` + db + `.model_outputs
    WHERE time >= {now} - toIntervalSecond(?) AND time <= {now}` + f.and() + `
  ) AS o
  INNER JOIN (
    SELECT cityHash64(decision_id) AS d, evaluation_name AS name, argMax(evaluation_score, time) AS score
    FROM ` + db + `.events
    WHERE layer = 'model' AND event = 'model.evaluation' AND evaluation_score IS NOT NULL AND decision_id != ''
      AND time >= {now} - toIntervalSecond(?) AND time <= {now}` + scores.and() + `
    GROUP BY d, name
  ) AS e USING (d)
  GROUP BY d, name
)
GROUP BY workflow, evaluation` + groupsOnly
	out := append([]any{r.MinScore, r.MinCount, r.MaxRate}, wfArgs...)
	out = append(out, seconds(r.Window)+int64(Lookback/time.Second))
	out = append(out, f.args...)
	out = append(out, seconds(r.Window))
	return q, append(out, scores.args...)
}

// The latest decisions of the alert's workflow whose latest score from its
// evaluator is under the floor.
func evaluationExamples(r *Rule, db string, labels map[string]string, n int) (string, []any) {
	w := windowOrHour(r)
	q := `SELECT decision_id FROM ` + db + `.events
WHERE layer = 'model' AND event = 'model.evaluation' AND evaluation_score IS NOT NULL AND decision_id != ''
  AND time >= {now} - toIntervalSecond(?) AND time <= {now} AND evaluation_name = ?
  AND decision_id IN (SELECT decision_id FROM ` + db + `.model_outputs WHERE workflow = ? AND time >= {now} - toIntervalSecond(?) AND time <= {now})
GROUP BY decision_id
HAVING argMax(evaluation_score, time) < ?
ORDER BY max(time) DESC, decision_id
LIMIT ?`
	return q, []any{w, labels["evaluation"], labels["workflow"], w + int64(Lookback/time.Second), r.MinScore, n}
}
