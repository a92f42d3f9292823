package rules

import "time"

// queue_depth and queue_growth: a queue's latest depth, and how much it
// grew within a window.
func init() {
	examples := func(r *Rule, db string, labels map[string]string, n int) (string, []any) {
		// The decisions routed to the queue.
		return eventExamples(db, labels, n, windowOrHour(r), func(e *examplesWhere) {
			e.add("layer = 'workflow'")
			e.add("event != 'queue.depth'")
			e.match("queue", "queue")
		})
	}
	register(map[Kind]*kindSpec{
		KindQueueDepth: {
			check: func(r *Rule, bad problem) {
				if r.MaxDepth <= 0 {
					bad("max_depth", "required and must be positive")
				}
			},
			query:    queueQuery,
			examples: examples,
			summary:  `queue {{ .Labels.queue }} of {{ .Labels.workflow }} holds {{ printf "%.0f" .Value }} items`,
		},
		KindQueueGrowth: {
			check: func(r *Rule, bad problem) {
				if r.MaxGrowth <= 0 {
					bad("max_growth", "required and must be positive")
				}
				needWindow(r, bad)
			},
			query:    queueQuery,
			examples: examples,
			summary:  `queue {{ .Labels.queue }} of {{ .Labels.workflow }} grew by {{ printf "%.0f" .Value }} items`,
		},
	})
}

// queueDepths selects the queues' depth signals in the window ending at
// {now} (its length the next argument).
const queueDepths = `layer = 'workflow' AND event = 'queue.depth' AND queue != '' AND queue_depth IS NOT NULL
  AND time >= {now} - toIntervalSecond(?) AND time <= {now}`

func queueQuery(r *Rule, db string, f *filters) (string, []any) {
	f.on("workflow", r.Workflow)
	f.on("queue", r.Queue)
	// A depth holds until the lookback runs out: only the rows that fire.
	// A growth is of the depths in its window: every queue, with firing,
	// so that none means no data.
	if r.Kind == KindQueueGrowth {
		q := `SELECT workflow, queue, toFloat64(argMax(queue_depth, time) - argMin(queue_depth, time)) AS value, toUInt8(value > ?) AS firing
FROM ` + db + `.events
WHERE ` + queueDepths + f.and() + `
GROUP BY workflow, queue`
		return q, append([]any{float64(r.MaxGrowth), seconds(r.Window)}, f.args...)
	}
	q := `SELECT workflow, queue, toFloat64(argMax(queue_depth, time)) AS value
FROM ` + db + `.events
WHERE ` + queueDepths + f.and() + `
GROUP BY workflow, queue
HAVING value > ?`
	return q, append(append([]any{int64(Lookback / time.Second)}, f.args...), float64(r.MaxDepth))
}
