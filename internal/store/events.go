package store

import (
	"strings"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
)

// The events table, the per-decision rollup ClickHouse keeps from it, and
// what the verdicts need from it: watermarks, polled freshness and the
// decisions that changed.

// eventsTable is the wide events table: typed columns for the conventions,
// maps for the rest. Ordered by workflow, layer and time for the
// per-workflow-over-time scans that dashboards and rules run; per-decision
// lookups go through the decisions rollup (first/last seen narrows the time
// range) and the bloom filter on decision_id. A plain MergeTree: redelivered
// requests are dropped at insert by their deduplication token, and what a
// producer resends in another request is counted once by the queries, which
// count distinct event IDs or decisions and take levels with max/argMax
// (ReplacingMergeTree tripled the insert cost, measured on 500k demo events).
var eventsTable = table{
	name: "events",
	columns: `
    time DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    observed_time DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    event_id UInt64,
    signal LowCardinality(String),
    decision_id String CODEC(ZSTD(1)),
    workflow LowCardinality(String),
    layer LowCardinality(String),
    event LowCardinality(String),
    service_name LowCardinality(String),
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    name LowCardinality(String),
    duration_ns UInt64,
    severity LowCardinality(String),
    body String CODEC(ZSTD(1)),
    source LowCardinality(String),
    as_of Nullable(DateTime64(6)),
    data_complete Nullable(Bool),
    data_available Nullable(Bool),
    entity_system LowCardinality(String),
    entity_id String CODEC(ZSTD(1)),
    entity_canonical_id String CODEC(ZSTD(1)),
    entity_resolved Nullable(Bool),
    data_age_s Nullable(Float64),
    data_error String CODEC(ZSTD(1)),
    model_name LowCardinality(String),
    model_version LowCardinality(String),
    confidence Nullable(Float64),
    recommendation LowCardinality(String),
    model_latency_ms Nullable(Float64),
    model_unsafe Nullable(Bool),
    input_tokens Nullable(Int64),
    output_tokens Nullable(Int64),
    queue LowCardinality(String),
    route LowCardinality(String),
    queue_depth Nullable(Int64),
    exception_type LowCardinality(String),
    human_action LowCardinality(String),
    human_actor LowCardinality(String),
    human_reason String CODEC(ZSTD(1)),
    outcome LowCardinality(String),
    cycle_time_s Nullable(Float64),
    business_cost Nullable(Float64),
    business_value Nullable(Float64),
    verdict_context LowCardinality(String),
    verdict_stale_sources Array(LowCardinality(String)),
    verdict_missing_sources Array(LowCardinality(String)),
    verdict_stale_source LowCardinality(String),
    verdict_stale_age_s Nullable(Float64),
    verdict_stale_budget_s Nullable(Float64),
    verdict_confidence_low Nullable(Bool),
    verdict_unsupported Nullable(Bool),
    verdict_behaviour LowCardinality(String),
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    resource_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    scope_name LowCardinality(String),
    parse_errors Array(String),
    INDEX idx_decision_id decision_id TYPE bloom_filter(0.001) GRANULARITY 1`,
	engine:  "MergeTree",
	tail:    "PARTITION BY toDate(time)\nORDER BY (workflow, layer, time, decision_id, event_id)\nSETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000",
	shardBy: "cityHash64(decision_id)",
}

// eventsEventIndex lets a query that names the events it counts (every
// rule kind does) skip the granules of the other events (version 11). The
// sort key has the layer before time, and a layer's events are few, so a
// granule holds a handful of event names; the filters name the event, not
// its layer (a producer's layer is its own to set), and without the index
// they read every layer of the window: the decision-latency rule at 100M
// events read 6.7M rows for 1.35M start and end signals, 2.4M with it.
// A granule with more than 64 names keeps no set and is always read.
// Parts stored before version 11 have none until a merge rewrites them
// (or ALTER TABLE ... MATERIALIZE INDEX idx_event): they are read whole,
// and every answer is the same.
const eventsEventIndex = "idx_event event TYPE set(64) GRANULARITY 1"

// decisionsTable is the per-decision rollup: one row per decision after
// merges. Every column is a SimpleAggregateFunction, so the materialized
// view writes one row per event without a GROUP BY and merges do the
// rolling up: on 1M demo events, a third less ClickHouse CPU for the insert
// and its merges, and 30% less disk, than argMax and uniqExact states. A
// "latest" column is max((time, value...)): the latest event that carried
// the field wins; events without it carry time zero and never do. Every
// aggregate is idempotent (min, max, bit-or, distinct arrays), so an event
// stored twice changes nothing. Version 8 drops the latest-value columns
// (retiredDecisionsColumns): decision_summary reads those from events.
var decisionsTable = table{
	name: "decisions",
	columns: rollupKeptColumns + `,
    events SimpleAggregateFunction(sum, UInt64),
    latest_model SimpleAggregateFunction(max, Tuple(DateTime64(9), String, String)),
    latest_confidence SimpleAggregateFunction(max, Tuple(DateTime64(9), Nullable(Float64))),
    latest_recommendation SimpleAggregateFunction(max, Tuple(DateTime64(9), String)),
    latest_route SimpleAggregateFunction(max, Tuple(DateTime64(9), String)),
    latest_queue SimpleAggregateFunction(max, Tuple(DateTime64(9), String)),
    latest_human SimpleAggregateFunction(max, Tuple(DateTime64(9), String, String)),
    latest_outcome SimpleAggregateFunction(max, Tuple(DateTime64(9), String)),
    latest_cycle_time_s SimpleAggregateFunction(max, Tuple(DateTime64(9), Nullable(Float64))),
    latest_business_cost SimpleAggregateFunction(max, Tuple(DateTime64(9), Nullable(Float64))),
    latest_verdict SimpleAggregateFunction(max, Tuple(DateTime64(9), String, String, UInt8))`,
	engine:  "AggregatingMergeTree",
	tail:    "ORDER BY decision_id\nSETTINGS non_replicated_deduplication_window = 1000",
	shardBy: "cityHash64(decision_id)",
}

// rollupKeptColumns are the rollup's columns that every version of it has
// had, first.
const rollupKeptColumns = `
    decision_id String,
    workflow SimpleAggregateFunction(max, String),
    first_seen SimpleAggregateFunction(min, DateTime64(9)),
    last_seen SimpleAggregateFunction(max, DateTime64(9)),
    layers SimpleAggregateFunction(groupBitOr, UInt8)`

// noOutput is the output column's value for an event that is not a model
// output: later than any real one, so min() picks the decision's first
// output.
const noOutput = "tuple(toDateTime64('2200-01-01 00:00:00', 9), toUInt64(0), CAST(NULL, 'Nullable(Float64)'), '', '')"

// decisionRollupTable is the per-decision rollup from version 12 on: the
// columns of decisions as version 8 left them, in 256-row granules instead
// of 8,192. Judging the decisions that changed looks each one up by its
// random ID, one granule of every part it is in: at 100M stored events, a
// minute's changed decisions (1,251) read 7.7M rows of the old table and
// 0.5M of this one (one part each).
var decisionRollupTable = table{
	name:    "decision_rollup",
	columns: rollupKeptColumns + ",\n    " + strings.Join(decisionsV2Columns, ",\n    "),
	engine:  "AggregatingMergeTree",
	tail:    "ORDER BY decision_id\nSETTINGS non_replicated_deduplication_window = 1000, index_granularity = 256",
	shardBy: "cityHash64(decision_id)",
}

// decisionRollupColumns are the rollup's columns, in decisionsV8Select's
// order, for version 12's copy of decisions.
const decisionRollupColumns = "decision_id, workflow, first_seen, last_seen, layers, event_ids, output, reads"

// decisionsV2Columns are what verdicts need per decision: the distinct
// event IDs (so a resent event is counted once), the first model output
// (its time is the decision time; its event ID settles a tie between two
// outputs of the same time, which min() over a Nullable element would
// settle by storage order), and per context source the best read:
// the freshest as_of in microseconds, 0 for a read without as_of, -1 for a
// read that found the source unavailable.
var decisionsV2Columns = []string{
	"event_ids SimpleAggregateFunction(groupUniqArrayArray, Array(UInt64))",
	"output SimpleAggregateFunction(min, Tuple(DateTime64(9), UInt64, Nullable(Float64), String, String)) DEFAULT " + noOutput,
	"reads SimpleAggregateFunction(maxMap, Tuple(Array(String), Array(Int64)))",
}

// isRead is the condition for an event that is a decision's context read.
const isRead = "layer = 'data' AND source != '' AND event IN ('context.read', '')"

// The rollup feed's columns that every version of it selects the same
// way. Released migrations are built from them: change one and an applied
// migration means something else; add a new one instead.
const (
	// layersColumn is the event's layer as the rollup's bitmask
	// (conventions.LayerBit).
	layersColumn = "toUInt8(multiIf(layer = 'data', 1, layer = 'model', 2, layer = 'workflow', 4, layer = 'human', 8, layer = 'business', 16, 0)) AS layers"
	// outputColumn is a model output's (time, event ID, confidence,
	// model), noOutput for any other event.
	outputColumn = "if(event = 'model.output', tuple(time, event_id, confidence, toString(model_name), toString(model_version)), " + noOutput + ") AS output"
	// readsColumn is a context read's source and its best read (see
	// decisionsV2Columns), empty for any other event.
	readsColumn = `if(` + isRead + `,
       tuple([toString(source)], [multiIf(data_available = false, toInt64(-1), as_of IS NULL, toInt64(0), greatest(toInt64(1), toUnixTimestamp64Micro(assumeNotNull(as_of))))]),
       tuple(CAST([], 'Array(String)'), CAST([], 'Array(Int64)'))) AS reads`
)

// decisionsV2Insert names decisionsV2Select's columns in its order, for the
// backfill (INSERT ... SELECT matches columns by position).
const decisionsV2Insert = "decision_id, workflow, first_seen, last_seen, layers, events, event_ids, latest_model, latest_confidence, " +
	"latest_recommendation, latest_route, latest_queue, latest_human, latest_outcome, latest_cycle_time_s, latest_business_cost, " +
	"latest_verdict, output, reads"

// decisionsV2Select feeds the rollup from events ({from}); the same SELECT
// backfills it from the events already stored.
const decisionsV2Select = `SELECT
    decision_id,
    toString(workflow) AS workflow,
    time AS first_seen,
    time AS last_seen,
    ` + layersColumn + `,
    toUInt64(0) AS events,
    [event_id] AS event_ids,
    tuple(if(model_name = '' AND model_version = '', toDateTime64(0, 9), time), toString(model_name), toString(model_version)) AS latest_model,
    tuple(if(confidence IS NULL, toDateTime64(0, 9), time), confidence) AS latest_confidence,
    tuple(if(recommendation = '', toDateTime64(0, 9), time), toString(recommendation)) AS latest_recommendation,
    tuple(if(route = '', toDateTime64(0, 9), time), toString(route)) AS latest_route,
    tuple(if(queue = '', toDateTime64(0, 9), time), toString(queue)) AS latest_queue,
    tuple(if(human_action = '', toDateTime64(0, 9), time), toString(human_action), toString(human_actor)) AS latest_human,
    tuple(if(outcome = '', toDateTime64(0, 9), time), toString(outcome)) AS latest_outcome,
    tuple(if(cycle_time_s IS NULL, toDateTime64(0, 9), time), cycle_time_s) AS latest_cycle_time_s,
    tuple(if(business_cost IS NULL, toDateTime64(0, 9), time), business_cost) AS latest_business_cost,
    tuple(toDateTime64(0, 9), '', '', toUInt8(0)) AS latest_verdict,
    ` + outputColumn + `,
    ` + readsColumn + `
FROM {from}
WHERE decision_id != '' AND event != 'decision.verdict'`

// watermarksTable holds, per workflow, how far in event time its decisions
// (model outputs, stream "decisions"), each source's context reads
// ("reads") and each layer's signals ("layers") have reached the store.
// A required source is missing for a decision only once its reads have
// passed the decision, or the decisions have moved max_context_lag past it.
var watermarksTable = table{
	name: "watermarks",
	columns: `
    workflow String,
    stream LowCardinality(String),
    source String,
    until SimpleAggregateFunction(max, DateTime64(9))`,
	engine: "AggregatingMergeTree",
	// A redelivered block is dropped here as at the events table.
	tail:    "ORDER BY (workflow, stream, source)\nSETTINGS non_replicated_deduplication_window = 1000",
	shardBy: "cityHash64(workflow, source)",
}

const watermarksSelect = `SELECT
    toString(workflow) AS workflow,
    if(event = 'model.output', 'decisions', 'reads') AS stream,
    if(event = 'model.output', '', toString(source)) AS source,
    max(time) AS until
FROM {from}
WHERE workflow != '' AND decision_id != '' AND (event = 'model.output' OR (` + isRead + `))
GROUP BY workflow, stream, source`

// layerWatermarksSelect feeds the watermarks table's stream "layers" from
// version 4 on: per workflow, how far in event time each layer's signals
// have reached (source holds the layer), so that a layer's silence is read
// from a row per layer instead of a day of events.
const layerWatermarksSelect = `SELECT
    toString(workflow) AS workflow,
    'layers' AS stream,
    toString(layer) AS source,
    max(time) AS until
FROM {from}
WHERE workflow != '' AND layer IN ('data', 'model', 'workflow', 'human', 'business')
GROUP BY workflow, layer`

// layerWatermarksV6Select is layerWatermarksSelect from version 6 on: an
// evaluation of a model output (model.evaluation) is no sign of the model
// layer deciding. An evaluator that scores yesterday's outputs today would
// otherwise move the decisions' reference ahead, and every other layer of
// a workflow that stopped would look silent against it.
const layerWatermarksV6Select = `SELECT
    toString(workflow) AS workflow,
    'layers' AS stream,
    toString(layer) AS source,
    max(time) AS until
FROM {from}
WHERE workflow != '' AND layer IN ('data', 'model', 'workflow', 'human', 'business') AND event != '` + conventions.EventModelEvaluation + `'
GROUP BY workflow, layer`

// arrivedUntil is a signal's contribution to a watermark from version 13
// on: its time, but no later than when it reaches the store. A watermark
// says how far a stream has reached the store; a producer whose clock runs
// hours ahead (up to decision.MaxFutureSkew is accepted) moved it into the
// future, and until then every decision of the workflow still waiting for
// a read was missing it, and a workflow or layer that stopped was not
// silent.
const arrivedUntil = "max(least(time, now64(9))) AS until"

// watermarksV13Select and layerWatermarksV13Select are watermarksSelect and
// layerWatermarksV6Select with arrivedUntil.
var (
	watermarksV13Select      = withArrivedUntil(watermarksSelect)
	layerWatermarksV13Select = withArrivedUntil(layerWatermarksV6Select)
)

func withArrivedUntil(q string) string {
	out := strings.Replace(q, "max(time) AS until", arrivedUntil, 1)
	if out == q {
		panic("store: no watermark in " + q)
	}
	return out
}

// sourcePollsTable is every polled source.freshness signal, so that a read
// without as_of is judged by the poll at or before its decision (an ASOF
// join) without scanning the events table's data layer.
var sourcePollsTable = table{
	name: "source_polls",
	columns: `
    source LowCardinality(String),
    time DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    as_of Nullable(DateTime64(6)),
    available Nullable(Bool),
    workflow LowCardinality(String)`,
	engine:  "MergeTree",
	tail:    "PARTITION BY toYYYYMM(time)\nORDER BY (source, time)\nSETTINGS non_replicated_deduplication_window = 1000",
	shardBy: "cityHash64(source)",
}

const sourcePollsSelect = `SELECT toString(source) AS source, time, as_of, data_available AS available, workflow
FROM {from}
WHERE layer = 'data' AND event = 'source.freshness' AND source != ''`

// modelOutputsTable is every model output once (a resent output is the same
// row: ReplacingMergeTree, read with FINAL), ordered per workflow over time:
// what statistics over outputs (confidence drift, model versions) read,
// without hashing every output's ID to count it once.
var modelOutputsTable = table{
	name: "model_outputs",
	columns: `
    workflow LowCardinality(String),
    time DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    event_id UInt64,
    decision_id String CODEC(ZSTD(1)),
    model_name LowCardinality(String),
    model_version LowCardinality(String),
    confidence Nullable(Float64),
    latency_ms Nullable(Float64)`,
	engine:  "ReplacingMergeTree",
	tail:    "PARTITION BY toDate(time)\nORDER BY (workflow, time, event_id)\nSETTINGS non_replicated_deduplication_window = 1000",
	shardBy: "cityHash64(decision_id)",
}

// modelOutputsDecisionHash is the decision ID's cityHash64, the unit the
// rules count decisions by, kept with each model output (version 10): a
// rule that labels a window's decisions by their model version, or scores
// them, looks a day of outputs up by decision, and hashing each output's
// ID string was a fifth of such a query at 100M events. Computed at
// insert; outputs stored before version 10 compute it when read (and keep
// it once a merge rewrites them), so every answer is the same from the
// start.
const modelOutputsDecisionHash = "decision_hash UInt64 MATERIALIZED cityHash64(decision_id)"

const modelOutputsSelect = `SELECT toString(workflow) AS workflow, time, event_id, decision_id, toString(model_name) AS model_name,
    toString(model_version) AS model_version, confidence, model_latency_ms AS latency_ms
FROM {from}
WHERE layer = 'model' AND event = 'model.output'`

// decisionChangesTable records when (server time) a decision's model
// outputs or context reads were stored, so that verdicts are refreshed for
// the decisions that changed instead of all of them; its other events
// (routing, human actions, outcomes, often hours later) change no verdict.
// Arrival time here only says what to look at again; no verdict depends on
// it.
var decisionChangesTable = table{
	name: "decision_changes",
	columns: `
    changed_at DateTime64(3),
    decision_id String`,
	engine:  "MergeTree",
	tail:    "PARTITION BY toDate(changed_at)\nORDER BY changed_at\nTTL toDateTime(changed_at) + toIntervalDay(" + changesRetentionDays + ")\nSETTINGS non_replicated_deduplication_window = 1000",
	shardBy: "cityHash64(decision_id)",
}

// changesRetentionDays bounds decision_changes; a refresh that finds its
// last run older than this judges every decision again.
const changesRetentionDays = "7"

// Version 2's feed of decision_changes, as released: every event.
const decisionChangesSelect = `SELECT now64(3) AS changed_at, decision_id
FROM {from}
WHERE decision_id != ''
GROUP BY decision_id`

// decisionChangesWorkflow is version 3's column of decision_changes: the
// refresh judges only the workflows that have a contract. It is empty for
// rows of version 2, and for events without a workflow, which may still be
// reads of a decision that has one.
const decisionChangesWorkflow = "workflow LowCardinality(String)"

// decisionChangesV3Select feeds decision_changes from version 3 on: only
// what a verdict depends on, with the decision's workflow.
const decisionChangesV3Select = `SELECT now64(3) AS changed_at, decision_id, toString(any(workflow)) AS workflow
FROM {from}
WHERE decision_id != '' AND (event = 'model.output' OR (` + isRead + `))
GROUP BY decision_id`

// decisionsV8Select feeds the rollup from version 8 on: what verdicts and
// lookups need per decision, without the latest-value tuples. Each rollup
// column is written for every event, so its width is insert cost: the ten
// tuples were a third of ClickHouse's CPU for an insert of events with
// every view (1M demo events in 20,000-row blocks: 15–18 CPU-seconds with
// them, 10–11 without); decision_summary reads the latest values from
// events instead.
const decisionsV8Select = `SELECT
    decision_id,
    toString(workflow) AS workflow,
    time AS first_seen,
    time AS last_seen,
    ` + layersColumn + `,
    [event_id] AS event_ids,
    ` + outputColumn + `,
    ` + readsColumn + `
FROM {from}
WHERE decision_id != '' AND event != 'decision.verdict'`

// retiredDecisionsColumns are the rollup columns version 8 drops: the
// latest values, and version 1's event count and verdict, unwritten since
// version 2.
var retiredDecisionsColumns = []string{"events", "latest_model", "latest_confidence", "latest_recommendation", "latest_route",
	"latest_queue", "latest_human", "latest_outcome", "latest_cycle_time_s", "latest_business_cost", "latest_verdict"}

// decisionSummaryV8 is decision_summary from version 8 on: the rollup's
// columns, and each latest value from the decision's events (the latest
// event that carried the field wins, as the rollup's tuples did). A filter
// on decision_id reaches both sides, so one decision reads its events
// through the bloom filter; a summary of every decision aggregates the
// events table. rollup is the rollup's table: decisions until version 12.
func decisionSummaryV8(rollup string) string {
	return `SELECT
    d.decision_id AS decision_id,
    d.workflow AS workflow,
    d.first_seen AS first_seen,
    d.last_seen AS last_seen,
    d.layers_mask AS layers_mask,
    arrayFilter((l, i) -> bitTest(d.layers_mask, i), ['data', 'model', 'workflow', 'human', 'business'], [0, 1, 2, 3, 4]) AS layers_seen,
    d.events AS events,
    nullIf(tupleElement(e.latest_model, 2), '') AS model_name,
    nullIf(tupleElement(e.latest_model, 3), '') AS model_version,
    tupleElement(e.latest_confidence, 2) AS confidence,
    nullIf(tupleElement(e.latest_recommendation, 2), '') AS recommendation,
    nullIf(tupleElement(e.latest_route, 2), '') AS route,
    nullIf(tupleElement(e.latest_queue, 2), '') AS queue,
    nullIf(tupleElement(e.latest_human, 2), '') AS human_action,
    nullIf(tupleElement(e.latest_human, 3), '') AS human_actor,
    nullIf(tupleElement(e.latest_outcome, 2), '') AS outcome,
    tupleElement(e.latest_cycle_time_s, 2) AS cycle_time_s,
    tupleElement(e.latest_business_cost, 2) AS business_cost,
    d.decision_time AS decision_time
FROM (
    SELECT
        decision_id,
        max(workflow) AS workflow,
        min(first_seen) AS first_seen,
        max(last_seen) AS last_seen,
        groupBitOr(layers) AS layers_mask,
        length(groupUniqArrayArray(event_ids)) AS events,
        if(tupleElement(min(output), 1) < toDateTime64('2200-01-01 00:00:00', 9), tupleElement(min(output), 1), NULL) AS decision_time
    FROM {db}.` + rollup + `
    GROUP BY decision_id) AS d
LEFT JOIN (
    SELECT
        decision_id,
        max(tuple(if(model_name = '' AND model_version = '', toDateTime64(0, 9), time), toString(model_name), toString(model_version))) AS latest_model,
        max(tuple(if(confidence IS NULL, toDateTime64(0, 9), time), confidence)) AS latest_confidence,
        max(tuple(if(recommendation = '', toDateTime64(0, 9), time), toString(recommendation))) AS latest_recommendation,
        max(tuple(if(route = '', toDateTime64(0, 9), time), toString(route))) AS latest_route,
        max(tuple(if(queue = '', toDateTime64(0, 9), time), toString(queue))) AS latest_queue,
        max(tuple(if(human_action = '', toDateTime64(0, 9), time), toString(human_action), toString(human_actor))) AS latest_human,
        max(tuple(if(outcome = '', toDateTime64(0, 9), time), toString(outcome))) AS latest_outcome,
        max(tuple(if(cycle_time_s IS NULL, toDateTime64(0, 9), time), cycle_time_s)) AS latest_cycle_time_s,
        max(tuple(if(business_cost IS NULL, toDateTime64(0, 9), time), business_cost)) AS latest_business_cost
    FROM {db}.events
    WHERE decision_id != '' AND event != 'decision.verdict'
    GROUP BY decision_id) AS e
ON e.decision_id = d.decision_id`
}

// decisionSummaryV2 is the finalized per-decision view that dashboards and
// the CLI read; it hides the aggregate-state plumbing. Verdicts are in
// verdicts (and decision_verdicts).
const decisionSummaryV2 = `SELECT
    decision_id,
    max(workflow) AS workflow,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen,
    groupBitOr(layers) AS layers_mask,
    arrayFilter((l, i) -> bitTest(layers_mask, i), ['data', 'model', 'workflow', 'human', 'business'], [0, 1, 2, 3, 4]) AS layers_seen,
    length(groupUniqArrayArray(event_ids)) AS events,
    nullIf(tupleElement(max(latest_model), 2), '') AS model_name,
    nullIf(tupleElement(max(latest_model), 3), '') AS model_version,
    tupleElement(max(latest_confidence), 2) AS confidence,
    nullIf(tupleElement(max(latest_recommendation), 2), '') AS recommendation,
    nullIf(tupleElement(max(latest_route), 2), '') AS route,
    nullIf(tupleElement(max(latest_queue), 2), '') AS queue,
    nullIf(tupleElement(max(latest_human), 2), '') AS human_action,
    nullIf(tupleElement(max(latest_human), 3), '') AS human_actor,
    nullIf(tupleElement(max(latest_outcome), 2), '') AS outcome,
    tupleElement(max(latest_cycle_time_s), 2) AS cycle_time_s,
    tupleElement(max(latest_business_cost), 2) AS business_cost,
    if(tupleElement(min(output), 1) < toDateTime64('2200-01-01 00:00:00', 9), tupleElement(min(output), 1), NULL) AS decision_time
FROM {db}.decisions
GROUP BY decision_id`

// readLagView shows how far each source's reads trail its workflow's
// decisions in event time: a lagging feed is visible before it turns
// decisions missing.
const readLagView = `SELECT
    r.workflow AS workflow,
    r.source AS source,
    r.until AS read_until,
    d.until AS decided_until,
    greatest(toFloat64(dateDiff('millisecond', r.until, d.until)) / 1000, 0) AS lag_s
FROM (SELECT workflow, source, CAST(max(until), 'DateTime64(9)') AS until FROM {db}.watermarks WHERE stream = 'reads' GROUP BY workflow, source) AS r
INNER JOIN (SELECT workflow, CAST(max(until), 'DateTime64(9)') AS until FROM {db}.watermarks WHERE stream = 'decisions' GROUP BY workflow) AS d
ON r.workflow = d.workflow`

// Version 1's rollup feed and summary, as released.
const decisionsV1Select = `SELECT
    decision_id,
    toString(workflow) AS workflow,
    time AS first_seen,
    time AS last_seen,
    ` + layersColumn + `,
    toUInt64(1) AS events,
    tuple(if(model_name = '' AND model_version = '', toDateTime64(0, 9), time), toString(model_name), toString(model_version)) AS latest_model,
    tuple(if(confidence IS NULL, toDateTime64(0, 9), time), confidence) AS latest_confidence,
    tuple(if(recommendation = '', toDateTime64(0, 9), time), toString(recommendation)) AS latest_recommendation,
    tuple(if(route = '', toDateTime64(0, 9), time), toString(route)) AS latest_route,
    tuple(if(queue = '', toDateTime64(0, 9), time), toString(queue)) AS latest_queue,
    tuple(if(human_action = '', toDateTime64(0, 9), time), toString(human_action), toString(human_actor)) AS latest_human,
    tuple(if(outcome = '', toDateTime64(0, 9), time), toString(outcome)) AS latest_outcome,
    tuple(if(cycle_time_s IS NULL, toDateTime64(0, 9), time), cycle_time_s) AS latest_cycle_time_s,
    tuple(if(business_cost IS NULL, toDateTime64(0, 9), time), business_cost) AS latest_business_cost,
    tuple(if(verdict_context = '', toDateTime64(0, 9), time), toString(verdict_context), toString(verdict_behaviour), toUInt8(ifNull(verdict_unsupported, false))) AS latest_verdict
FROM {from}
WHERE decision_id != ''`

const decisionSummaryV1 = `SELECT
    decision_id,
    max(workflow) AS workflow,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen,
    groupBitOr(layers) AS layers_mask,
    arrayFilter((l, i) -> bitTest(layers_mask, i), ['data', 'model', 'workflow', 'human', 'business'], [0, 1, 2, 3, 4]) AS layers_seen,
    sum(events) AS events,
    nullIf(tupleElement(max(latest_model), 2), '') AS model_name,
    nullIf(tupleElement(max(latest_model), 3), '') AS model_version,
    tupleElement(max(latest_confidence), 2) AS confidence,
    nullIf(tupleElement(max(latest_recommendation), 2), '') AS recommendation,
    nullIf(tupleElement(max(latest_route), 2), '') AS route,
    nullIf(tupleElement(max(latest_queue), 2), '') AS queue,
    nullIf(tupleElement(max(latest_human), 2), '') AS human_action,
    nullIf(tupleElement(max(latest_human), 3), '') AS human_actor,
    nullIf(tupleElement(max(latest_outcome), 2), '') AS outcome,
    tupleElement(max(latest_cycle_time_s), 2) AS cycle_time_s,
    tupleElement(max(latest_business_cost), 2) AS business_cost,
    nullIf(tupleElement(max(latest_verdict), 2), '') AS verdict_context,
    nullIf(tupleElement(max(latest_verdict), 3), '') AS verdict_behaviour,
    if(verdict_context IS NULL, NULL, toBool(tupleElement(max(latest_verdict), 4))) AS unsupported_certainty
FROM {db}.decisions
GROUP BY decision_id`
