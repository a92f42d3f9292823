package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/decisiontrace/decisiontrace/internal/chconn"
	"github.com/decisiontrace/decisiontrace/internal/contract"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
)

// A decision's verdict is derived by ClickHouse from what is stored, in
// event time, never from when a collector saw a signal:
//
//   - the decision time is its first model output's own timestamp, and the
//     contract in force then judges it;
//   - each source the contract lists is judged by the decision's reads: the
//     freshest as_of of its available reads against the budget; a read
//     without as_of by the polled source.freshness at or before the
//     decision time; a read that found the source unavailable, or one whose
//     age nobody can tell, is missing;
//   - a source the decision has no read of is pending while it may still
//     arrive, and missing once the source's reads for the workflow have
//     reached past the decision (its watermark, with watermarkGrace to
//     spare), or the workflow's decisions have moved more than
//     max_context_lag past it;
//   - context is missing if a required source is, else pending if one is,
//     else stale if one is, else fresh; unsupported certainty is a confident
//     output (at or above the floor) on stale or missing context; the
//     behaviour is the most severe the contract prescribes for what was
//     found (optional sources count for behaviour, not for context): an
//     optional source still pending is awaited (awaiting_sources, from
//     version 14 on), and the behaviour is judged again once it is not.
//
// decision_verdicts computes this for any decisions a query selects (a
// filter on decision_id reaches the rollup); verdicts keeps it for every
// decision, refreshed by RefreshVerdicts, for the rates, dashboards and
// lists that read many decisions at once.

// judgedColumns are what a refresh writes from the view into verdicts:
// the verdict's columns and, from version 14 on, the optional sources
// still awaited, which decide when it is judged again.
var judgedColumns = append(slices.Clone(verdictColumns), "awaiting_sources")

// verdictColumns are the verdict's columns, in the order of the view and the
// table.
var verdictColumns = []string{
	"decision_id", "workflow", "decision_time", "model_name", "model_version", "confidence", "contract_hash",
	"context", "stale_sources", "missing_sources", "pending_sources", "stale_source", "stale_age_s", "stale_budget_s",
	"confidence_low", "confidence_floor", "unsupported_certainty", "behaviour", "context_source",
}

func sqlStrings(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = "'" + v + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// decisionVerdictsView is the verdict of every decision with a model output
// and a contract for its workflow. From version 9 on (held), a watermark
// turns a decision's absent read missing only at or before its workflow's
// held_until in watermark_holds (heldDecidable); with no hold written
// (nothing refreshes verdicts), the watermarks as they stand. rollup is
// the rollup's table: decisions until version 12. From version 14 on
// (awaiting) the view also lists the optional sources still pending.
func decisionVerdictsView(held bool, rollup string, awaiting bool) string {
	// Version 2's view is rendered as released.
	var pre, post, holds, heldCol, heldJoinCol, awaitingCol, awaitingAgg string
	if awaiting {
		awaitingCol = ", awaiting_sources"
		awaitingAgg = "\n        arraySort(groupArrayIf(source, NOT required AND status = '" + conventions.ContextPending + "')) AS awaiting_sources,"
	}
	if held {
		pre, post = "(", ") AND s.decision_time <= s.held_until"
		holds = `
                LEFT JOIN (
                    SELECT workflow, max(held_until) AS held_until FROM {db}.watermark_holds GROUP BY workflow
                ) AS h ON d.workflow = h.workflow`
		heldCol = ", j.held_until AS held_until"
		// No hold written: no cap (the default of a missing row is the
		// epoch, or NULL with join_use_nulls).
		heldJoinCol = ",\n                    if(ifNull(h.workflow, '') = '', toDateTime64('2200-01-01 00:00:00', 9), h.held_until) AS held_until"
	}
	severity := sqlStrings(contract.Behaviours()) // mildest first
	r := strings.NewReplacer(
		"{severity}", severity,
		"{proceed}", "'"+conventions.BehaviourProceed+"'",
		"{fresh}", "'"+conventions.ContextFresh+"'",
		"{stale}", "'"+conventions.ContextStale+"'",
		"{missing}", "'"+conventions.ContextMissing+"'",
		"{pending}", "'"+conventions.ContextPending+"'",
		"{no_output}", "toDateTime64('2200-01-01 00:00:00', 9)",
		"{grace}", fmt.Sprint(int(watermarkGrace/time.Second)),
		"{open}", pre,
		"{cap}", post,
		"{holds}", holds,
		"{held_col}", heldCol,
		"{held_join_col}", heldJoinCol,
		"{rollup}", rollup,
		"{awaiting_col}", awaitingCol,
		"{awaiting_agg}", awaitingAgg,
	)
	return r.Replace(`SELECT
    decision_id, workflow, decision_time, model_name, model_version, confidence, contract_hash,
    multiIf(length(missing_sources) > 0, {missing}, length(pending_sources) > 0, {pending}, length(stale_sources) > 0, {stale}, {fresh}) AS context,
    stale_sources, missing_sources, pending_sources,
    tupleElement(stalest, 1) AS stale_source,
    if(stale_source = '', NULL, tupleElement(stalest, 2)) AS stale_age_s,
    if(stale_source = '', NULL, tupleElement(stalest, 3)) AS stale_budget_s,
    toBool(confidence IS NOT NULL AND confidence < confidence_floor) AS confidence_low,
    confidence_floor,
    toBool(confidence IS NOT NULL AND NOT confidence_low AND context IN ({stale}, {missing})) AS unsupported_certainty,
    {severity}[arrayMax(arrayMap(b -> greatest(indexOf({severity}, b), 1), arrayConcat(behaviours, if(confidence_low, [on_low_confidence], []), [{proceed}])))] AS behaviour,
    multiIf(from_reads > 0 AND from_polls > 0, 'reads+polled', from_polls > 0, 'polled', 'reads') AS context_source{awaiting_col}
FROM (
    SELECT
        decision_id,
        any(workflow) AS workflow, any(decision_time) AS decision_time, any(confidence) AS confidence,
        any(model_name) AS model_name, any(model_version) AS model_version, any(contract_hash) AS contract_hash,
        any(confidence_floor) AS confidence_floor, any(on_low_confidence) AS on_low_confidence,
        arraySort(groupArrayIf(source, required AND status = {stale})) AS stale_sources,
        arraySort(groupArrayIf(source, required AND status = {missing})) AS missing_sources,
        arraySort(groupArrayIf(source, required AND status = {pending})) AS pending_sources,{awaiting_agg}
        argMaxIf(tuple(source, age_s, budget_s), tuple(age_s / budget_s, source), required AND status = {stale}) AS stalest,
        arrayConcat(groupArrayIf(on_stale, status = {stale}), groupArrayIf(on_missing, status = {missing})) AS behaviours,
        countIf(origin = 'reads') AS from_reads, countIf(origin = 'polled') AS from_polls
    FROM (
        SELECT
            s.decision_id AS decision_id, s.workflow AS workflow, s.decision_time AS decision_time, s.confidence AS confidence,
            s.model_name AS model_name, s.model_version AS model_version, s.contract_hash AS contract_hash,
            s.confidence_floor AS confidence_floor, s.on_low_confidence AS on_low_confidence,
            s.source AS source, s.required AS required, s.budget_s AS budget_s, s.on_stale AS on_stale, s.on_missing AS on_missing,
            toUnixTimestamp64Micro(s.decision_time) AS t_us,
            p.polled_at > toDateTime64(0, 9) AND ifNull(p.polled_available, true) AND p.polled_as_of IS NOT NULL AS polled_ok,
            multiIf(s.code > 0, s.code, s.code = 0 AND polled_ok, toUnixTimestamp64Micro(assumeNotNull(p.polled_as_of)), NULL) AS as_of_us,
            multiIf(s.code > 0, 'reads', s.code = 0 AND polled_ok, 'polled', '') AS origin,
            (t_us - as_of_us) / 1e6 AS age_s,
            multiIf(
                s.source = '', '',
                s.code IS NULL,
                    if({open}s.read_until >= s.decision_time + toIntervalSecond({grace}) OR (toUnixTimestamp64Micro(s.decided_until) - t_us) / 1e6 > s.max_context_lag_s{cap}, {missing}, {pending}),
                as_of_us IS NULL, {missing},
                age_s > s.budget_s, {stale},
                {fresh}) AS status
        FROM (
            SELECT
                j.decision_id AS decision_id, j.workflow AS workflow, j.decision_time AS decision_time, j.confidence AS confidence,
                j.model_name AS model_name, j.model_version AS model_version,
                j.contract_hash AS contract_hash, j.confidence_floor AS confidence_floor, j.on_low_confidence AS on_low_confidence,
                j.max_context_lag_s AS max_context_lag_s,
                tupleElement(src, 1) AS source, tupleElement(src, 2) AS required, tupleElement(src, 3) AS budget_s,
                tupleElement(src, 4) AS on_stale, tupleElement(src, 5) AS on_missing,
                indexOf(tupleElement(j.reads, 1), source) AS read_at,
                if(read_at = 0, NULL, tupleElement(j.reads, 2)[read_at]) AS code,
                j.decided_until AS decided_until, j.read_until_by_source[source] AS read_until{held_col}
            FROM (
                -- The joins in a subquery of their own and the ARRAY JOIN
                -- on its result: ClickHouse without the analyzer (24.8 with
                -- allow_experimental_analyzer = 0) refuses the two mixed.
                SELECT
                    d.decision_id AS decision_id, d.workflow AS workflow, d.decision_time AS decision_time, d.confidence AS confidence,
                    d.model_name AS model_name, d.model_version AS model_version, d.reads AS reads,
                    c.contract_hash AS contract_hash, c.confidence_floor AS confidence_floor, c.on_low_confidence AS on_low_confidence,
                    c.max_context_lag_s AS max_context_lag_s,
                    arrayZip(c.source_names, c.source_required, c.source_max_age_s, c.source_on_stale, c.source_on_missing) AS sources,
                    w.decided_until AS decided_until, w.read_until AS read_until_by_source{held_join_col}
                FROM (
                    SELECT decision_id, max(workflow) AS workflow, min(output) AS first_output, maxMap(reads) AS reads,
                        tupleElement(first_output, 1) AS decision_time, tupleElement(first_output, 3) AS confidence,
                        tupleElement(first_output, 4) AS model_name, tupleElement(first_output, 5) AS model_version
                    FROM {db}.{rollup}
                    GROUP BY decision_id
                    HAVING decision_time < {no_output}
                ) AS d
                ASOF INNER JOIN (SELECT * FROM {db}.contracts FINAL) AS c ON d.workflow = c.workflow AND d.decision_time >= c.effective_from
                LEFT JOIN (
                    SELECT workflow, maxIf(until, stream = 'decisions') AS decided_until,
                        CAST(tuple(groupArrayIf(source, stream = 'reads'), groupArrayIf(until, stream = 'reads')), 'Map(String, DateTime64(9))') AS read_until
                    FROM (SELECT workflow, stream, source, max(until) AS until FROM {db}.watermarks GROUP BY workflow, stream, source)
                    GROUP BY workflow
                ) AS w ON d.workflow = w.workflow{holds}
            ) AS j
            LEFT ARRAY JOIN j.sources AS src
        ) AS s
        ASOF LEFT JOIN (
            SELECT toString(source) AS source, time AS polled_at, as_of AS polled_as_of, available AS polled_available
            FROM {db}.source_polls
        ) AS p ON s.source = p.source AND s.decision_time >= p.polled_at
    )
    GROUP BY decision_id
)`)
}

// verdictsTable keeps every decision's verdict as last judged by
// RefreshVerdicts, ordered for what reads many: rates and lists per
// workflow over decision time. A decision judged again replaces its row
// (read with FINAL); re-judging changes nothing but judged_at, so any
// number of evaluators may refresh it.
var verdictsTable = table{
	name: "verdicts",
	columns: `
    decision_id String,
    workflow LowCardinality(String),
    decision_time DateTime64(9),
    model_name LowCardinality(String),
    model_version LowCardinality(String),
    confidence Nullable(Float64),
    contract_hash String,
    context LowCardinality(String),
    stale_sources Array(String),
    missing_sources Array(String),
    pending_sources Array(String),
    stale_source String,
    stale_age_s Nullable(Float64),
    stale_budget_s Nullable(Float64),
    confidence_low Bool,
    confidence_floor Float64,
    unsupported_certainty Bool,
    behaviour LowCardinality(String),
    context_source LowCardinality(String),
    judged_at DateTime64(3),
    INDEX idx_judged_at judged_at TYPE minmax GRANULARITY 1`,
	engine:  "ReplacingMergeTree(judged_at)",
	tail:    "PARTITION BY toYYYYMM(decision_time)\nORDER BY (workflow, decision_time, decision_id)",
	shardBy: "cityHash64(decision_id)",
}

// watermarkHoldsTable holds, per workflow, how far the watermarks may turn
// decisions' absent reads missing now: written by each refresh that moves
// it, before it judges (heldDecidable), read by decision_verdicts from
// version 9 on. A maximum, as the watermarks are: several evaluators
// writing at once never move it back.
var watermarkHoldsTable = table{
	name: "watermark_holds",
	columns: `
    workflow String,
    held_until SimpleAggregateFunction(max, DateTime64(9)),
    written_at SimpleAggregateFunction(max, DateTime64(3))`,
	engine:  "AggregatingMergeTree",
	tail:    "ORDER BY workflow",
	shardBy: "cityHash64(workflow)",
}

// verdictRefreshesTable records each refresh: up to when (server time) the
// decisions that changed were judged, and per workflow the earliest
// decision still pending, from where the next refresh looks again.
var verdictRefreshesTable = table{
	name: "verdict_refreshes",
	columns: `
    refreshed_until DateTime64(3),
    pending_floors Map(String, DateTime64(9))`,
	engine:  "MergeTree",
	tail:    "ORDER BY refreshed_until\nTTL toDateTime(refreshed_until) + toIntervalDay(" + changesRetentionDays + ")",
	shardBy: "rand()",
}

// watermarkGrace is how far past a decision a source's reads must have
// reached before its own read counts as missing rather than pending: reads
// of neighbouring decisions travel in different requests (several
// collectors, several export consumers) and may be stored a little out of
// order.
const watermarkGrace = 30 * time.Second

// watermarkHold is how long a watermark must have stood before it turns
// pending decisions missing (heldDecidable): requests stored together by
// several export consumers or collectors land within it, in any order.
// Inserts take well under a second; a retried one takes longer, and its
// decisions may then show missing until it lands, as with any grace.
const watermarkHold = 10 * time.Second

// How a refresh bounds its work.
const (
	// refreshMargin is how far before the last refresh's time changes are
	// looked at again: an insert stamps its changes when ClickHouse
	// processes it and is visible a moment later (on a cluster, by another
	// server's clock). Every decision inside it is judged again, so it is
	// a cost: 10 s against inserts that take well under a second.
	refreshMargin = 10 * time.Second
	// chunkDecisions bounds how many decisions one refresh statement
	// judges, so that judging a long history (a new contract, a first
	// start on an old database) never needs the memory of all of it.
	chunkDecisions = 200_000
)

// RefreshStats says what a refresh did.
type RefreshStats struct {
	// Statements is how many judging statements ran.
	Statements int
	// Pending is how many workflows still have pending decisions.
	Pending int
}

// RefreshVerdicts judges again every decision whose verdict may have
// changed since the last refresh (by any evaluator): those with new events,
// those still pending (their watermarks may have moved), and, for a
// contract that changed, every decision it now judges. It is idempotent
// and safe to run from several processes at once.
func (s *Store) RefreshVerdicts(ctx context.Context) (RefreshStats, error) {
	var st RefreshStats
	var now time.Time
	if err := s.conn.QueryRow(ctx, "SELECT now64(3)").Scan(&now); err != nil {
		return st, fmt.Errorf("refresh verdicts: %w", err)
	}
	last, floors, err := s.lastRefresh(ctx)
	if err != nil {
		return st, err
	}
	// How far the watermarks may turn absent reads missing in this
	// refresh's judgements, every one of them: written first, for
	// decision_verdicts to read.
	decidable, err := s.decidableUntil(ctx)
	if err != nil {
		return st, err
	}
	held, holding, advanced, err := s.heldDecidable(ctx, now, decidable)
	if err != nil {
		return st, err
	}
	retention := 24 * time.Hour * 7
	full := last.IsZero() || now.Sub(last) > retention-s.margin
	since := last.Add(-s.margin)
	if full {
		since = time.Unix(0, 0)
	}

	// Contracts activated since: everything they now judge.
	rows, err := s.conn.Query(ctx, `SELECT workflow, min(effective_from) FROM `+s.db+`.contracts FINAL WHERE written_at > `+chconn.MilliParam+` GROUP BY workflow ORDER BY workflow`, since.UnixMilli())
	if err != nil {
		return st, fmt.Errorf("refresh verdicts: contracts: %w", err)
	}
	type activation struct {
		workflow string
		from     time.Time
	}
	var acts []activation
	for rows.Next() {
		var a activation
		if err := rows.Scan(&a.workflow, &a.from); err != nil {
			rows.Close()
			return st, fmt.Errorf("refresh verdicts: contracts: %w", err)
		}
		acts = append(acts, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("refresh verdicts: contracts: %w", err)
	}
	for _, a := range acts {
		ranges, err := s.chunks(ctx, `SELECT toStartOfHour(time) AS bucket, count() FROM `+s.db+`.events
WHERE workflow = ? AND layer = 'model' AND event = 'model.output' AND time >= ? GROUP BY bucket ORDER BY bucket`, time.Hour, a.workflow, a.from)
		if err != nil {
			return st, err
		}
		for _, r := range ranges {
			if err := s.judge(ctx, now, `SELECT decision_id FROM `+s.db+`.events
WHERE workflow = ? AND layer = 'model' AND event = 'model.output' AND time >= ? AND time < ?`, a.workflow, r[0], r[1]); err != nil {
				return st, err
			}
			st.Statements++
		}
	}

	// Decisions with new events, in chunks of when they changed.
	// Watermarks move only with stored model outputs and reads, which are
	// changes too: with none since the last refresh, no pending decision
	// can have become decidable (a paused workflow costs no judging).
	moved := full || len(acts) > 0
	if !full {
		// Only workflows with a contract have verdicts; an event without a
		// workflow may be a read of one that has.
		withContract := ` AND (workflow = '' OR workflow IN (SELECT workflow FROM ` + s.db + `.contracts))`
		ranges, err := s.chunks(ctx, `SELECT toStartOfMinute(changed_at) AS bucket, count() FROM `+s.db+`.decision_changes
WHERE changed_at > `+chconn.MilliParam+withContract+` GROUP BY bucket ORDER BY bucket`, time.Minute, since.UnixMilli())
		if err != nil {
			return st, err
		}
		moved = moved || len(ranges) > 0
		for i, r := range ranges {
			from := r[0]
			if i == 0 {
				from = since
			}
			if err := s.judge(ctx, now, `SELECT decision_id FROM `+s.db+`.decision_changes WHERE changed_at >= `+chconn.MilliParam+` AND changed_at < `+chconn.MilliParam+withContract, from.UnixMilli(), r[1].UnixMilli()); err != nil {
				return st, err
			}
			st.Statements++
		}
	}

	// Decisions still pending: their sources' watermarks may have moved.
	// One whose read arrives is judged above, by its change; here only
	// those a watermark may have turned missing: the workflow's reads past
	// it by the grace, or its decisions past it by the shortest
	// max_context_lag of its contracts. The newer ones wait (most pending
	// decisions while context flows), and stay below the next floor.
	workflows := make([]string, 0, len(floors))
	for wf := range floors {
		workflows = append(workflows, wf)
	}
	sort.Strings(workflows)
	// With nothing stored since the last refresh, no watermark moved, and
	// none is still held back or was let go by this refresh (one that
	// stood the hold after the last change: after a burst and then a
	// pause, the decisions it passed would wait for the next traffic).
	if moved || holding || advanced {
		for _, wf := range workflows {
			until, ok := held[wf]
			if !ok || until.Unix() <= 0 {
				continue
			}
			if err := s.judge(ctx, now, `SELECT decision_id FROM `+s.db+`.verdicts FINAL
WHERE workflow = ? AND decision_time >= ? AND `+undecided+` AND decision_time <= ?`, wf, floors[wf], until); err != nil {
				return st, err
			}
			st.Statements++
		}
	}

	if st.Statements == 0 && now.Sub(last) < time.Hour {
		// Nothing changed and nothing is pending: the last refresh stands
		// (recorded at least hourly, so it never looks older than the
		// retention of decision_changes).
		st.Pending = len(floors)
		return st, nil
	}
	// Where the next refresh must look again: the earliest decision still
	// pending, of those judged just now (a change may have made an old
	// decision pending) and of those after each floor.
	next := map[string]time.Time{}
	earliest := func(q string, args ...any) error {
		rows, err := s.conn.Query(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("refresh verdicts: pending: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var wf string
			var at time.Time
			if err := rows.Scan(&wf, &at); err != nil {
				return fmt.Errorf("refresh verdicts: pending: %w", err)
			}
			if prev, ok := next[wf]; !ok || at.Before(prev) {
				next[wf] = at
			}
		}
		return rows.Err()
	}
	if err := earliest(`SELECT workflow, min(decision_time) FROM `+s.db+`.verdicts
WHERE judged_at = `+chconn.MilliParam+` AND `+undecided+` GROUP BY workflow`, now.UnixMilli()); err != nil {
		return st, err
	}
	for _, wf := range workflows {
		if err := earliest(`SELECT workflow, min(decision_time) FROM `+s.db+`.verdicts FINAL
WHERE workflow = ? AND decision_time >= ? AND `+undecided+` GROUP BY workflow`, wf, floors[wf]); err != nil {
			return st, err
		}
	}
	st.Pending = len(next)
	if err := s.conn.Exec(s.WriteContext(ctx), `INSERT INTO `+s.db+`.verdict_refreshes (refreshed_until, pending_floors, decidable_until) VALUES (`+chconn.MilliParam+`, ?, ?)`, now.UnixMilli(), next, decidable); err != nil {
		return st, fmt.Errorf("refresh verdicts: record: %w", err)
	}
	return st, nil
}

// lastRefresh returns the latest refresh's time and, per workflow, the
// earliest pending decision of the refreshes of its last minutes (several
// evaluators may refresh at once; the union of their floors is safe).
func (s *Store) lastRefresh(ctx context.Context) (time.Time, map[string]time.Time, error) {
	var last time.Time
	if err := s.conn.QueryRow(ctx, `SELECT max(refreshed_until) FROM `+s.db+`.verdict_refreshes`).Scan(&last); err != nil {
		return time.Time{}, nil, fmt.Errorf("refresh verdicts: last refresh: %w", err)
	}
	if last.Unix() <= 0 {
		return time.Time{}, map[string]time.Time{}, nil
	}
	floors, err := s.byWorkflow(ctx, "pending floors", `SELECT tupleElement(kv, 1) AS workflow, min(tupleElement(kv, 2))
FROM `+s.db+`.verdict_refreshes ARRAY JOIN CAST(pending_floors, 'Array(Tuple(String, DateTime64(9)))') AS kv
WHERE refreshed_until >= ? GROUP BY workflow`, last.Add(-5*time.Minute))
	if err != nil {
		return time.Time{}, nil, err
	}
	return last, floors, nil
}

// byWorkflow reads a query's (workflow, time) rows into a map; what names
// the query in its error.
func (s *Store) byWorkflow(ctx context.Context, what, query string, args ...any) (map[string]time.Time, error) {
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("refresh verdicts: %s: %w", what, err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var wf string
		var at time.Time
		if err := rows.Scan(&wf, &at); err != nil {
			return nil, fmt.Errorf("refresh verdicts: %s: %w", what, err)
		}
		out[wf] = at
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("refresh verdicts: %s: %w", what, err)
	}
	return out, nil
}

// decidableUntil is, per workflow with a contract, the latest decision
// time its watermarks have passed: its reads by watermarkGrace, or its
// decisions by the shortest max_context_lag of its contracts. A pending
// decision at or before it is judged again: its read may now count as
// missing.
func (s *Store) decidableUntil(ctx context.Context) (map[string]time.Time, error) {
	return s.byWorkflow(ctx, "watermarks", `SELECT w.workflow,
    greatest(w.reads - toIntervalSecond(`+fmt.Sprint(int(watermarkGrace/time.Second))+`), w.decided - toIntervalMillisecond(toInt64(1000 * c.lag)))
FROM (SELECT workflow, maxIf(until, stream = 'reads') AS reads, maxIf(until, stream = 'decisions') AS decided
      FROM `+s.db+`.watermarks WHERE stream IN ('reads', 'decisions') GROUP BY workflow) AS w
INNER JOIN (SELECT workflow, min(max_context_lag_s) AS lag FROM `+s.db+`.contracts GROUP BY workflow) AS c ON w.workflow = c.workflow`)
}

// heldDecidable is how far the watermarks move pending decisions now: no
// further than a refresh at least s.hold ago found them (what this one
// found, with no hold). Requests stored together by several export
// consumers or collectors land in any order within moments of each other;
// a request of later reads stored first must not turn the decisions whose
// reads are in the other request missing, only to turn them back once it
// lands (a missing-context alert pending, a dashboard's rate jumping, while
// a backlog drains). What a watermark decides is decided one hold later,
// and the same. holding says a watermark is still held back, so the next
// refresh has work even if nothing new is stored; advanced, that a hold
// moved on in this refresh.
func (s *Store) heldDecidable(ctx context.Context, now time.Time, decidable map[string]time.Time) (held map[string]time.Time, holding, advanced bool, err error) {
	held = decidable
	if s.hold > 0 {
		// Refreshes recorded before version 9 have no decidable_until:
		// their workflows are held whole (the epoch) until one that has
		// stands long enough.
		var before map[string]time.Time
		err = s.conn.QueryRow(ctx, `SELECT decidable_until FROM `+s.db+`.verdict_refreshes
WHERE refreshed_until <= `+chconn.MilliParam+` ORDER BY refreshed_until DESC LIMIT 1`, now.Add(-s.hold).UnixMilli()).Scan(&before)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, false, false, fmt.Errorf("refresh verdicts: held watermarks: %w", err)
		}
		held = make(map[string]time.Time, len(decidable))
		for wf, until := range decidable {
			was, ok := before[wf]
			if !ok {
				was = time.Unix(0, 0).UTC()
			}
			if was.Before(until) {
				holding = true
				until = was
			}
			held[wf] = until
		}
	}
	// Written only where it moved on: most refreshes move none.
	written, err := s.byWorkflow(ctx, "held watermarks", `SELECT workflow, max(held_until) FROM `+s.db+`.watermark_holds GROUP BY workflow`)
	if err != nil {
		return nil, false, false, err
	}
	var moved []string
	for wf, until := range held {
		if at, ok := written[wf]; !ok || at.Before(until) {
			moved = append(moved, wf)
		}
	}
	if len(moved) == 0 {
		return held, holding, false, nil
	}
	sort.Strings(moved)
	batch, err := s.conn.PrepareBatch(s.WriteContext(ctx), `INSERT INTO `+s.db+`.watermark_holds (workflow, held_until, written_at)`)
	if err != nil {
		return nil, false, false, fmt.Errorf("refresh verdicts: write held watermarks: %w", err)
	}
	defer batch.Close()
	for _, wf := range moved {
		if err := batch.Append(wf, held[wf], now); err != nil {
			return nil, false, false, fmt.Errorf("refresh verdicts: write held watermarks: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return nil, false, false, fmt.Errorf("refresh verdicts: write held watermarks: %w", err)
	}
	return held, holding, true, nil
}

// chunks groups the consecutive buckets of a (bucket, count) query into
// ranges [from, to) of at most chunkDecisions rows each (a bucket larger
// than that is a range of its own); width is a bucket's length.
func (s *Store) chunks(ctx context.Context, query string, width time.Duration, args ...any) ([][2]time.Time, error) {
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("refresh verdicts: %w", err)
	}
	defer rows.Close()
	var out [][2]time.Time
	var n uint64
	for rows.Next() {
		var bucket time.Time
		var count uint64
		if err := rows.Scan(&bucket, &count); err != nil {
			return nil, fmt.Errorf("refresh verdicts: %w", err)
		}
		end := bucket.Add(width)
		if len(out) == 0 || n+count > chunkDecisions {
			out = append(out, [2]time.Time{bucket, end})
			n = 0
		}
		out[len(out)-1][1] = end
		n += count
	}
	return out, rows.Err()
}

// undecided is the condition for a stored verdict a watermark may still
// change: its context pending, or an optional source it awaits.
const undecided = "(context = '" + conventions.ContextPending + "' OR notEmpty(awaiting_sources))"

// judge writes the verdicts of the decisions a subquery selects.
func (s *Store) judge(ctx context.Context, judgedAt time.Time, decisions string, args ...any) error {
	cols := strings.Join(judgedColumns, ", ")
	q := `INSERT INTO ` + s.db + `.verdicts (` + cols + `, judged_at)
SELECT ` + cols + `, ` + chconn.MilliParam + ` FROM ` + s.db + `.decision_verdicts WHERE decision_id IN (` + decisions + `)`
	if err := s.conn.Exec(s.WriteContext(ctx), q, append([]any{judgedAt.UnixMilli()}, args...)...); err != nil {
		return fmt.Errorf("refresh verdicts: %w", err)
	}
	return nil
}

// Verdict is one decision's verdict.
type Verdict struct {
	DecisionID           string    `json:"decision_id"`
	Workflow             string    `json:"workflow"`
	DecisionTime         time.Time `json:"decision_time"`
	ModelName            string    `json:"model_name,omitempty"`
	ModelVersion         string    `json:"model_version,omitempty"`
	Confidence           *float64  `json:"confidence,omitempty"`
	ContractHash         string    `json:"contract_hash"`
	Context              string    `json:"context"`
	StaleSources         []string  `json:"stale_sources,omitempty"`
	MissingSources       []string  `json:"missing_sources,omitempty"`
	PendingSources       []string  `json:"pending_sources,omitempty"`
	StaleSource          string    `json:"stale_source,omitempty"`
	StaleAgeS            *float64  `json:"stale_age_s,omitempty"`
	StaleBudgetS         *float64  `json:"stale_budget_s,omitempty"`
	ConfidenceLow        bool      `json:"confidence_low"`
	ConfidenceFloor      float64   `json:"confidence_floor"`
	UnsupportedCertainty bool      `json:"unsupported_certainty"`
	Behaviour            string    `json:"behaviour"`
	ContextSource        string    `json:"context_source"`
}

// Verdict judges one decision now, from the store (decision_verdicts); nil
// when the decision has no model output or its workflow no contract.
func (s *Store) Verdict(ctx context.Context, decisionID string) (*Verdict, error) {
	rows, err := s.conn.Query(ctx, `SELECT `+strings.Join(verdictColumns, ", ")+` FROM `+s.db+`.decision_verdicts WHERE decision_id = ?`, decisionID)
	if err != nil {
		return nil, fmt.Errorf("verdict of %s: %w", decisionID, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	var v Verdict
	if err := rows.Scan(&v.DecisionID, &v.Workflow, &v.DecisionTime, &v.ModelName, &v.ModelVersion, &v.Confidence, &v.ContractHash,
		&v.Context, &v.StaleSources, &v.MissingSources, &v.PendingSources, &v.StaleSource, &v.StaleAgeS, &v.StaleBudgetS,
		&v.ConfidenceLow, &v.ConfidenceFloor, &v.UnsupportedCertainty, &v.Behaviour, &v.ContextSource); err != nil {
		return nil, fmt.Errorf("verdict of %s: %w", decisionID, err)
	}
	return &v, rows.Err()
}
