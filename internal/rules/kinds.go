package rules

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// kindSpec is everything about one built-in rule kind, in one place (its
// family's file): adding a kind is its constant and one entry in
// registry.
type kindSpec struct {
	// check reports the kind's own settings problems.
	check func(r *Rule, bad problem)
	// query is the rule's ClickHouse query (see Rule.Query), with the
	// rule's filters in f. A kind whose condition is about something
	// present in its window (a share, a percentile, a growth) returns
	// every label set with its firing column, so that no row means no
	// data; one whose condition is itself about absence (staleness,
	// depth, silence) returns the rows that fire. A kind with merged has
	// none: a rule's own query is merged of it alone.
	query func(r *Rule, db string, f *filters) (string, []any)
	// together, when set, is what a rule's query reads (its window,
	// filters and labels) as a key: rules of one group with the same key
	// read the same rows and differ only in what they compute from them,
	// so merged evaluates them in one query ("" for a rule that must
	// have its own). Under flat-out ingest a
	// round's queries are in flight over half the time whatever each
	// costs: a query fewer is what the rules give back to the inserts.
	together func(r *Rule) string
	// merged is the one query of rules with the same together key: the
	// label columns, then each rule's value and firing columns, named by
	// resultColumn, over the same rows: a rule has data where the query
	// has a row, unless its data column (dataColumn) says otherwise.
	merged func(rs []*Rule, db string, f *filters) (string, []any)
	// quiet, when set, reports from the watermarks (a row per workflow
	// and layer) that no label set of the rule can fire at now, so that
	// its query is not run: for a kind whose query returns only the rows
	// that fire (no firing column), whose condition the watermarks bound
	// from above. It must never report quiet when the query could fire;
	// where it cannot tell (a watermark past now) it reports false. Most
	// rounds of a silence kind find every layer keeping up, and its query
	// is a fifth of a round's cost at 10M events in planning alone.
	quiet func(ctx context.Context, conn driver.Conn, db string, now time.Time, r *Rule) (bool, error)
	// examples is the query of the latest decisions that show one alert
	// (see exampleQuery); nil for kinds without.
	examples func(r *Rule, db string, labels map[string]string, n int) (string, []any)
	// summary is the default summary annotation of contract rules.
	summary string
	// heldBackBySilence: while a workflow makes no decisions, its alerts
	// of this kind are held back (its sources and layers going quiet is
	// the same fact, already one alert).
	heldBackBySilence bool
}

// problem reports one setting's problem: its field and what is wrong.
type problem func(field, format string, args ...any)

// registry holds every built-in kind, from the families' files.
var registry = map[Kind]*kindSpec{}

func register(specs map[Kind]*kindSpec) {
	for k, s := range specs {
		registry[k] = s
	}
}

// kindNames lists the kinds for messages, sorted.
func kindNames() []string {
	names := make([]string, 0, len(registry))
	for k := range registry {
		names = append(names, string(k))
	}
	sort.Strings(names)
	return names
}

// filters are a rule's equality filters on label columns, as parameters.
type filters struct {
	where []string
	args  []any
	// pinned is the value of each column a filter fixes.
	pinned map[string]string
}

// on adds col = v when v is set.
func (f *filters) on(col, v string) {
	if v != "" {
		f.where = append(f.where, col+" = ?")
		f.args = append(f.args, v)
		if f.pinned == nil {
			f.pinned = map[string]string{}
		}
		f.pinned[col] = v
	}
}

// label is expr, a unit's value of col for a label, or the filter's value
// (a parameter, "?" and its argument) when a filter pins col: an aggregate
// of col would keep a string for every unit to learn what the filter
// says (a share of 337k decisions at 100M events, 177 ms with the
// workflow aggregated, 120 ms with it bound).
func (f *filters) label(col, expr string) (string, []any) {
	if v, ok := f.pinned[col]; ok {
		return "?", []any{v}
	}
	return expr, nil
}

// groupsOnly ends a query's GROUP BY of its label columns. A group has a
// row by construction, but with every key a constant (a label the filters
// pin, and no other) ClickHouse's aggregator could emit a group out of an
// empty block, a row with count() = 0 (ClickHouse/ClickHouse#116830, fixed
// in 26.9 and 26.8.3, 26.7.7, 26.6.5): a rule with nothing to judge would
// have data.
const groupsOnly = "\nHAVING count() > 0"

// and is the filters as " AND ..." for a WHERE clause.
func (f *filters) and() string {
	if len(f.where) == 0 {
		return ""
	}
	return " AND " + strings.Join(f.where, " AND ")
}

// examplesWhere is what eventExamples' kinds add to its WHERE clause.
type examplesWhere struct {
	where  []string
	args   []any
	labels map[string]string
}

func (e *examplesWhere) add(cond string, args ...any) {
	e.where = append(e.where, cond)
	e.args = append(e.args, args...)
}

// match adds col = the alert's label.
func (e *examplesWhere) match(col, label string) { e.add(col+" = ?", e.labels[label]) }

// eventExamples is the latest decisions among the events of the alert's
// workflow in the last window seconds that more selects.
func eventExamples(db string, labels map[string]string, n int, window int64, more func(e *examplesWhere)) (string, []any) {
	e := &examplesWhere{labels: labels}
	e.add("decision_id != ''")
	e.add("time >= {now} - toIntervalSecond(?)", window)
	e.add("time <= {now}")
	e.match("workflow", "workflow")
	more(e)
	q := `SELECT decision_id FROM ` + db + `.events
WHERE ` + strings.Join(e.where, " AND ") + `
GROUP BY decision_id
ORDER BY max(time) DESC, decision_id
LIMIT ?`
	return q, append(e.args, n)
}

// percentile is the aggregate of a rule's q-quantile: exact, interpolated
// between the two nearest values. ClickHouse's quantile() samples 8192
// values once a window holds more, and which ones depends on how its
// threads split the rows: the same window gave p95s 3% apart from one
// evaluation to the next (decision latency at 100M events), which near a
// limit is an alert that flaps on unchanged data. Below 8192 values the
// two agree.
func percentile(q float64) string { return fmt.Sprintf("quantileExactInclusive(%v)", q) }

// outputUnit is a decision's unit (cityHash64(decision_id), which the
// rules group events by) as model_outputs keeps it, computed at insert:
// a day of outputs looked up by decision reads 8 bytes an output instead
// of hashing its ID.
const outputUnit = "decision_hash"

// windowOrHour is the rule's window in seconds, an hour when it has none.
func windowOrHour(r *Rule) int64 {
	if w := seconds(r.Window); w > 0 {
		return w
	}
	return int64(time.Hour / time.Second)
}

func needWindow(r *Rule, bad problem) {
	if r.Window <= 0 {
		bad("window", "required and must be positive for kind %s", r.Kind)
	}
}

func needRate(r *Rule, bad problem) {
	if r.MaxRate <= 0 || r.MaxRate > 1 {
		bad("max_rate", "%v is outside (0, 1]", r.MaxRate)
	}
}
