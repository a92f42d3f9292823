package rules

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/decisiontrace/decisiontrace/internal/contract"
)

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
			quiet: layerSilenceQuiet,
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
			quiet: workflowSilenceQuiet,
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
	//
	// When the workflow resumes after a pause, a layer cannot yet have
	// answered the decisions made since: its silence counts from the
	// first decision after the pause, not from its last signal before
	// it. A pause is a gap in the decisions longer than the layer's lag
	// (it had nothing new to answer for longer than it may trail) or
	// than the workflow's contract's pause, unless the rule sets its
	// own; it counts for a layer only if the layer was keeping up when
	// it began (its last signal within its lag of the gap's start): a
	// workflow that decides less often than a layer's lag makes every
	// gap a pause, and a layer that stopped answering it would otherwise
	// never be silent for longer than the last gap. The gaps are read
	// from the decisions' times, per minute, from the earliest layer's
	// latest signal on (a gap that ended before a layer's last signal
	// changes nothing for it): while every layer keeps up, that is
	// seconds of decisions. The bound is read from the watermarks, not
	// from the trailing layers: a second reading of those would cost as
	// much as the rest of the query.
	layers, lags := sortedSeconds(r.Lags)
	limit, limitArgs := "?", []any{float64(seconds(r.SilentFor))}
	if len(layers) > 0 {
		limit, limitArgs = "transform(layer, ?, ?, ?)", []any{layers, lags, float64(seconds(r.SilentFor))}
	}
	// The shortest and longest gap that can be a pause: the scan starts
	// the longest before the earliest layer's last signal, and keeps no
	// gap shorter than the shortest.
	limits := lags
	if len(lags) == 0 || r.SilentFor > 0 {
		limits = append(slices.Clone(lags), float64(seconds(r.SilentFor)))
	}
	shortest, longest := slices.Min(limits), slices.Max(limits)
	pause, pauseArgs, pauses := r.pause(math.Inf(1))
	if r.PausedAfter > 0 {
		shortest, longest = pauses[0], pauses[0]
	} else {
		pause, pauseArgs = "least("+limit+", "+pause+")", append(slices.Clone(limitArgs), pauseArgs...)
		shortest = min(shortest, slices.Min(pauses))
	}
	ahead := `SELECT workflow FROM ` + db + `.watermarks WHERE stream = 'layers' AND until > {now}`
	q := `WITH trailing AS (
  SELECT workflow, tupleElement(l, 1) AS layer, tupleElement(l, 2) AS last, decided
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
  WHERE toFloat64(dateDiff('millisecond', last, decided)) / 1000 > ` + limit + `
)
SELECT t.workflow AS workflow, t.layer AS layer,
    toFloat64(dateDiff('millisecond', arrayMax(arrayPushFront(arrayMap(g -> g.1, arrayFilter(g -> g.2 > ` + pause + `
      AND toFloat64(dateDiff('millisecond', t.last, g.1)) / 1000 - g.2 <= ` + limit + `, p.gaps)), t.last)), t.decided)) / 1000 AS value
FROM trailing AS t
LEFT JOIN (
  SELECT workflow, groupArray((first, gap)) AS gaps
  FROM (` + decisionGaps(db, `time >= (
          SELECT if(count() = 0, {now}, min(if(until > {now}, {now} - toIntervalSecond(?), until)))
          FROM (
            SELECT max(until) AS until FROM `+db+`.watermarks
            WHERE stream = 'layers'`+f.and()+`
            GROUP BY workflow, source
          )
          WHERE until >= {now} - toIntervalSecond(?)
        ) - toIntervalSecond(?) AND time <= {now}`+f.and()) + `)
  WHERE gap > ?
  GROUP BY workflow
) AS p ON t.workflow = p.workflow
WHERE value > ` + limit + `
SETTINGS optimize_aggregation_in_order = 1`
	// (workflow, layer) leads the events table's sort key, (workflow,
	// time) the model outputs': aggregating in that order streams
	// instead of hashing a day of rows.
	lookback := int64(Lookback / time.Second)
	out := append([]any{}, f.args...)
	out = append(out, lookback)
	out = append(out, f.args...)
	out = append(out, lookback)
	out = append(out, limitArgs...)
	out = append(out, pauseArgs...)
	out = append(out, limitArgs...)
	out = append(out, lookback)
	out = append(out, f.args...)
	out = append(out, lookback, longest)
	out = append(out, f.args...)
	out = append(out, shortest)
	return q, append(out, limitArgs...)
}

// decisionGaps is a query of the workflows' decisions that where selects
// from the model outputs, a row per minute with decisions: the minute's
// first and last decision, and the gap in seconds from the previous
// minute's last decision to its first (the first minute's is unbounded:
// whatever came before was not read). A gap longer than a minute is
// between minutes, so the per-minute rows hold every gap that can be a
// pause, at a row a minute instead of a row a decision.
func decisionGaps(db, where string) string {
	return `
    SELECT workflow, first, last,
        toFloat64(dateDiff('millisecond', lagInFrame(last, 1, toDateTime64(0, 9)) OVER (PARTITION BY workflow ORDER BY first ASC ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), first)) / 1000 AS gap
    FROM (
      SELECT toString(workflow) AS workflow, toStartOfMinute(time) AS minute, min(time) AS first, max(time) AS last
      FROM ` + db + `.model_outputs
      WHERE ` + where + `
      GROUP BY workflow, minute
    )
  `
}

// contractPauses is a contract's pause by its workflow (Rule.pauses).
func contractPauses(c *contract.Contract) map[string]contract.Duration {
	if p := c.Pause(); p > 0 {
		return map[string]contract.Duration{c.Workflow: p}
	}
	return nil
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

// watermarksOf is the latest signal of each of the rule's workflows (all,
// or its own) in a stream of the watermarks table, by workflow and source.
func watermarksOf(ctx context.Context, conn driver.Conn, db, stream string, r *Rule) (map[string]map[string]time.Time, error) {
	f := &filters{}
	f.on("workflow", r.Workflow)
	rows, err := conn.Query(ctx, "SELECT workflow, source, max(until) FROM "+db+".watermarks WHERE stream = ?"+f.and()+" GROUP BY workflow, source",
		append([]any{stream}, f.args...)...)
	if err != nil {
		return nil, fmt.Errorf("read the watermarks: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]time.Time{}
	for rows.Next() {
		var workflow, source string
		var until time.Time
		if err := rows.Scan(&workflow, &source, &until); err != nil {
			return nil, fmt.Errorf("read the watermarks: %w", err)
		}
		if out[workflow] == nil {
			out[workflow] = map[string]time.Time{}
		}
		out[workflow][source] = until
	}
	return out, rows.Err()
}

// mayExceed reports whether an interval measured by the queries
// (dateDiff in milliseconds, which may count up to a millisecond more
// than elapsed) can be over limit, given in whole seconds as the queries
// compare it.
func mayExceed(elapsed time.Duration, limit contract.Duration) bool {
	return elapsed > time.Duration(seconds(limit))*time.Second-time.Millisecond
}

// layerSilenceQuiet: a layer fires only if its latest signal trails the
// latest decision by more than its limit (the query's trailing rows; a
// pause only shortens the silence), so when no layer's watermark trails
// that far, nothing fires.
func layerSilenceQuiet(ctx context.Context, conn driver.Conn, db string, now time.Time, r *Rule) (bool, error) {
	wm, err := watermarksOf(ctx, conn, db, "layers", r)
	if err != nil {
		return false, err
	}
	since := now.Add(-Lookback)
	for _, layers := range wm {
		for _, until := range layers {
			if until.After(now) {
				return false, nil // the query reads this workflow's events up to now
			}
		}
		decided, ok := layers["model"]
		if !ok || decided.Before(since) {
			continue
		}
		for layer, last := range layers {
			limit := r.SilentFor
			if lag, ok := r.Lags[layer]; ok {
				limit = lag
			}
			if layer != "model" && !last.Before(since) && mayExceed(decided.Sub(last), limit) {
				return false, nil
			}
		}
	}
	return true, nil
}

// workflowSilenceQuiet: nothing fires while every workflow's latest
// decision is within silent_for of now.
func workflowSilenceQuiet(ctx context.Context, conn driver.Conn, db string, now time.Time, r *Rule) (bool, error) {
	wm, err := watermarksOf(ctx, conn, db, "decisions", r)
	if err != nil {
		return false, err
	}
	for _, sources := range wm {
		for _, until := range sources {
			if until.After(now) || mayExceed(now.Sub(until), r.SilentFor) {
				return false, nil
			}
		}
	}
	return true, nil
}
