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
			presence: eventPresence("workflow", "queue.depth"),
			examples: examples,
			summary:  `queue {{ .Labels.queue }} of {{ .Labels.workflow }} grew by {{ printf "%.0f" .Value }} items`,
		},
	})
}

func queueQuery(r *Rule, db string, f *filters) (string, []any) {
	f.on("workflow", r.Workflow)
	f.on("queue", r.Queue)
	value, window, limit := "toFloat64(argMax(queue_depth, time))", int64(Lookback/time.Second), r.MaxDepth
	if r.Kind == KindQueueGrowth {
		value, window, limit = "toFloat64(argMax(queue_depth, time) - argMin(queue_depth, time))", seconds(r.Window), r.MaxGrowth
	}
	q := `SELECT workflow, queue, ` + value + ` AS value
FROM ` + db + `.events
WHERE layer = 'workflow' AND event = 'queue.depth' AND queue != '' AND queue_depth IS NOT NULL
  AND time >= {now} - toIntervalSecond(?) AND time <= {now}` + f.and() + `
GROUP BY workflow, queue
HAVING value > ?`
	return q, append(append([]any{window}, f.args...), float64(limit))
}
