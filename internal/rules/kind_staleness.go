package rules

import (
	"time"

	"github.com/decisiontrace/decisiontrace/internal/contract"
)

// source_staleness: how old the data a workflow's decisions read was when
// they read it, and how old each source was at its latest poll.
func init() {
	register(map[Kind]*kindSpec{KindSourceStaleness: {
		check: func(r *Rule, bad problem) {
			if r.MaxAge <= 0 && len(r.Budgets) == 0 {
				bad("max_age", "required unless the workflow's contract gives the budgets")
			}
		},
		query:    stalenessQuery,
		examples: stalenessExamples,
		summary:  `{{ .Labels.source }} feeding {{ .Labels.workflow }} is {{ printf "%.0f" .Value }}s old, over its freshness budget`,
		// A workflow that stopped deciding reads nothing: its sources
		// going quiet is its silence.
		heldBackBySilence: true,
	}})
}

// defaultStalenessWindow is how far back source_staleness looks for the
// workflow's reads and the source's polls when the rule sets no window.
const defaultStalenessWindow = 15 * time.Minute

func (r *Rule) window() contract.Duration {
	if r.Window <= 0 && r.Kind == KindSourceStaleness {
		return contract.Duration(defaultStalenessWindow)
	}
	return r.Window
}

func stalenessQuery(r *Rule, db string, f *filters) (string, []any) {
	f.on("workflow", r.Workflow)
	f.on("source", r.Source)
	names, budgets := sortedSeconds(r.Budgets)
	if len(names) > 0 && r.MaxAge <= 0 {
		// Budgets from a contract, and no general max_age: only the
		// sources the contract budgets are judged.
		f.where = append(f.where, "has(?, source)")
		f.args = append(f.args, names)
	}
	// Staleness where it matters, in event time: how old the data the
	// workflow's latest decision read was when it read it (read time
	// - as_of), and how old the source was at its latest poll. A
	// workflow that reads nothing in the window reads nothing stale,
	// so a paused workflow pages no staleness; a poll says how fresh
	// the source itself is, traffic or not, and a poller that stops
	// is a silent data layer, not a stale source. Polls are read from
	// source_polls, not from among the data layer's reads.
	w := seconds(r.window())
	q := `SELECT workflow, source, toFloat64(max(age_ms)) / 1000 AS value
FROM (
  SELECT workflow, source, argMax(dateDiff('millisecond', assumeNotNull(as_of), time), time) AS age_ms
  FROM ` + db + `.events
  WHERE layer = 'data' AND event = 'context.read' AND source != '' AND as_of IS NOT NULL
    AND time >= {now} - toIntervalSecond(?) AND time <= {now}` + f.and() + `
  GROUP BY workflow, source
  UNION ALL
  SELECT workflow, source, argMax(dateDiff('millisecond', assumeNotNull(as_of), time), time) AS age_ms
  FROM ` + db + `.source_polls
  WHERE as_of IS NOT NULL AND time >= {now} - toIntervalSecond(?) AND time <= {now}` + f.and() + `
  GROUP BY workflow, source
)
GROUP BY workflow, source
HAVING value > transform(source, ?, ?, ?)`
	out := append([]any{w}, f.args...)
	out = append(out, w)
	out = append(out, f.args...)
	return q, append(out, names, budgets, float64(seconds(r.MaxAge)))
}

// The decisions that read the stale source.
func stalenessExamples(r *Rule, db string, labels map[string]string, n int) (string, []any) {
	return eventExamples(db, labels, n, seconds(r.window()), func(e *examplesWhere) {
		e.add("layer = 'data'")
		e.add("event = 'context.read'")
		e.match("source", "source")
	})
}
