package rules

import "time"

// layer_silence and workflow_silence: a layer trailing its workflow's
// decisions, and a workflow that stopped deciding.
func init() {
	lookback := int64(Lookback / time.Second)
	register(map[Kind]*kindSpec{
		KindLayerSilence: {
			check: func(r *Rule, bad problem) {
				if r.SilentFor <= 0 && len(r.Lags) == 0 {
					bad("silent_for", "required and must be positive")
				}
			},
			query: layerSilenceQuery,
			// The layer's last decisions before it went quiet.
			examples: func(r *Rule, db string, labels map[string]string, n int) (string, []any) {
				return eventExamples(db, labels, n, lookback, func(e *examplesWhere) { e.match("layer", "layer") })
			},
			summary:           `no {{ .Labels.layer }} signals from {{ .Labels.workflow }} for {{ printf "%.0f" .Value }}s while it kept deciding`,
			heldBackBySilence: true,
		},
		KindWorkflowSilence: {
			check: func(r *Rule, bad problem) {
				if r.SilentFor <= 0 {
					bad("silent_for", "required and must be positive")
				}
			},
			query: workflowSilenceQuery,
			// The workflow's last decisions before it stopped.
			examples: func(r *Rule, db string, labels map[string]string, n int) (string, []any) {
				return eventExamples(db, labels, n, lookback, func(e *examplesWhere) {
					e.add("layer = 'model'")
					e.add("event = 'model.output'")
				})
			},
			summary: `{{ .Labels.workflow }} has made no decision since {{ since .Now .Value }} ({{ printf "%.0f" .Value }}s)`,
		},
	})
}

func layerSilenceQuery(r *Rule, db string, f *filters) (string, []any) {
	f.on("workflow", r.Workflow)
	// A layer is silent when its latest signal trails the workflow's
	// latest decision (model signal) by more than its lag, in event
	// time: while the workflow decides, a stopped feed stands out;
	// when the workflow stops, every layer stops with it and the gap
	// stays what it was (that is DecisionWorkflowSilent's to say).
	// The latest signals are the layers' watermarks, a row per layer.
	// A workflow with a watermark past {now} (a producer's clock
	// ahead, or a rule test evaluating the past) is read from its
	// events up to {now} instead, within the lookback.
	layers, lags := sortedSeconds(r.Lags)
	limit := "?"
	if len(layers) > 0 {
		limit = "transform(layer, ?, ?, ?)"
	}
	ahead := `SELECT workflow FROM ` + db + `.watermarks WHERE stream = 'layers' AND until > {now}`
	q := `SELECT workflow, tupleElement(l, 1) AS layer, toFloat64(dateDiff('millisecond', tupleElement(l, 2), decided)) / 1000 AS value
FROM (
  SELECT workflow, maxIf(last, layer = 'model') AS decided, groupArrayIf(tuple(layer, last), layer != 'model') AS layers
  FROM (
    SELECT workflow, source AS layer, max(until) AS last
    FROM ` + db + `.watermarks
    WHERE stream = 'layers' AND workflow NOT IN (` + ahead + `)` + f.and() + `
    GROUP BY workflow, layer
    UNION ALL
    SELECT toString(workflow) AS workflow, toString(layer) AS layer, max(time) AS last
    FROM ` + db + `.events
    WHERE layer IN ('data', 'model', 'workflow', 'human', 'business') AND event != 'model.evaluation' AND workflow != ''
      AND time >= {now} - toIntervalSecond(?) AND time <= {now}
      AND workflow IN (` + ahead + `)` + f.and() + `
    GROUP BY workflow, layer
  )
  WHERE last >= {now} - toIntervalSecond(?)
  GROUP BY workflow
  HAVING countIf(layer = 'model') > 0
)
ARRAY JOIN layers AS l
WHERE value > ` + limit + `
SETTINGS optimize_aggregation_in_order = 1`
	// (workflow, layer) leads the events table's sort key: aggregating in
	// that order streams instead of hashing a day of rows.
	lookback := int64(Lookback / time.Second)
	out := append([]any{}, f.args...)
	out = append(out, lookback)
	out = append(out, f.args...)
	out = append(out, lookback)
	if len(layers) > 0 {
		out = append(out, layers, lags)
	}
	return q, append(out, float64(seconds(r.SilentFor)))
}

func workflowSilenceQuery(r *Rule, db string, f *filters) (string, []any) {
	f.on("workflow", r.Workflow)
	// How long since the workflow's latest decision, in event time:
	// its decisions' watermark, one row per workflow however long ago
	// it stopped. A watermark past {now} (a producer's clock ahead, or
	// a rule test evaluating the past) is replaced by the latest
	// output at or before {now} within the lookback, read only for
	// those workflows.
	q := `SELECT w.workflow AS workflow,
    toFloat64(dateDiff('millisecond', if(w.until <= {now}, w.until, e.last), {now})) / 1000 AS value
FROM (
  SELECT workflow, max(until) AS until FROM ` + db + `.watermarks
  WHERE stream = 'decisions'` + f.and() + `
  GROUP BY workflow
) AS w
LEFT JOIN (
  SELECT toString(workflow) AS workflow, max(time) AS last FROM ` + db + `.events
  WHERE layer = 'model' AND event = 'model.output' AND time >= {now} - toIntervalSecond(?) AND time <= {now}
    AND workflow IN (SELECT workflow FROM ` + db + `.watermarks WHERE stream = 'decisions' AND until > {now})` + f.and() + `
  GROUP BY workflow
) AS e ON w.workflow = e.workflow
WHERE (w.until <= {now} OR e.last > toDateTime64(0, 9)) AND value > ?`
	out := append([]any{}, f.args...)
	out = append(out, int64(Lookback/time.Second))
	out = append(out, f.args...)
	return q, append(out, float64(seconds(r.SilentFor)))
}
