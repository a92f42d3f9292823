package decisionstoreexporter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// migration is one versioned schema step. Statements use {db} for the
// database name (validated as an identifier in Config.Validate, since
// identifiers cannot be bound as parameters) and must be idempotent on
// their own (IF NOT EXISTS), so that two collectors starting together, or a
// crash between a statement and its record, leave a correct schema.
type migration struct {
	version    uint32
	name       string
	statements []string
}

// migrations is append-only: never edit a released step, add a new one.
var migrations = []migration{
	{
		version: 1,
		name:    "events table, per-decision rollup and its materialized view",
		statements: []string{
			// Ordered by workflow, layer and time for the per-workflow-over-time
			// scans that dashboards and rules run; per-decision lookups go
			// through the decisions rollup (first/last seen narrows the time
			// range) and the bloom filter on decision_id. Redelivered requests
			// are dropped at insert by their deduplication token; a plain
			// MergeTree, because ReplacingMergeTree tripled the insert cost
			// (measured on 500k demo events) to catch only duplicates the
			// token already catches.
			`CREATE TABLE IF NOT EXISTS {db}.events (
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
    INDEX idx_decision_id decision_id TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toDate(time)
ORDER BY (workflow, layer, time, decision_id, event_id)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000`,
			// One row per decision after merges. Every column is a
			// SimpleAggregateFunction, so the materialized view writes one
			// row per event without a GROUP BY and the merges do the rolling
			// up: on 1M demo events, a third less ClickHouse CPU for the
			// insert and its merges, and 30% less disk, than argMax and
			// uniqExact states. A "latest" column is max((time, value...)): the latest
			// event that carried the field wins; events without it carry
			// time zero and never do. A redelivered batch is dropped here as
			// at the events table (deduplicate_blocks_in_dependent_materialized_views),
			// so events counts stored events.
			`CREATE TABLE IF NOT EXISTS {db}.decisions (
    decision_id String,
    workflow SimpleAggregateFunction(max, String),
    first_seen SimpleAggregateFunction(min, DateTime64(9)),
    last_seen SimpleAggregateFunction(max, DateTime64(9)),
    layers SimpleAggregateFunction(groupBitOr, UInt8),
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
    -- (time, context, behaviour, unsupported certainty) of the decision's verdict
    latest_verdict SimpleAggregateFunction(max, Tuple(DateTime64(9), String, String, UInt8))
) ENGINE = AggregatingMergeTree
ORDER BY decision_id
SETTINGS non_replicated_deduplication_window = 1000`,
			`CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.decisions_mv TO {db}.decisions AS
SELECT
    decision_id,
    toString(workflow) AS workflow,
    time AS first_seen,
    time AS last_seen,
    toUInt8(multiIf(layer = 'data', 1, layer = 'model', 2, layer = 'workflow', 4, layer = 'human', 8, layer = 'business', 16, 0)) AS layers,
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
FROM {db}.events
WHERE decision_id != ''`,
			// The finalized per-decision view that dashboards, rules and the
			// CLI read; it hides the aggregate-state plumbing.
			`CREATE VIEW IF NOT EXISTS {db}.decision_summary AS
SELECT
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
GROUP BY decision_id`,
		},
	},
}

// errSchemaTooNew is returned when the database was migrated by a newer
// decisiontrace: writing with an older row layout could corrupt it.
var errSchemaTooNew = errors.New("schema is newer than this binary")

func render(stmt, db string) string { return strings.ReplaceAll(stmt, "{db}", db) }

// layout is how the schema's tables are laid out: on one server (the zero
// value), or on a cluster, where events and the rollup are local tables on
// every shard (replicated when asked) behind Distributed tables of the same
// names, sharded by decision ID. Sharding by decision keeps all of a
// decision's events, and so its rollup row, on one shard; the materialized
// view rolls up each shard's local events.
type layout struct {
	cluster    string // empty: one server
	replicated bool
}

func (l layout) onCluster() string {
	if l.cluster == "" {
		return ""
	}
	return " ON CLUSTER " + l.cluster
}

// statements renders one schema statement for the layout; on a cluster a
// table becomes its local table and a Distributed table.
func (l layout) statements(stmt, db string) []string {
	if l.cluster == "" {
		return []string{render(stmt, db)}
	}
	on := l.onCluster()
	for _, t := range []struct{ table, engine string }{{"events", "MergeTree"}, {"decisions", "AggregatingMergeTree"}} {
		head := "CREATE TABLE IF NOT EXISTS {db}." + t.table + " ("
		if !strings.HasPrefix(stmt, head) {
			continue
		}
		local := "CREATE TABLE IF NOT EXISTS {db}." + t.table + "_local" + on + " (" + strings.TrimPrefix(stmt, head)
		if l.replicated {
			local = strings.Replace(local, "ENGINE = "+t.engine+"\n",
				"ENGINE = Replicated"+t.engine+"('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')\n", 1)
			local = strings.ReplaceAll(local, "non_replicated_deduplication_window", "replicated_deduplication_window")
		}
		dist := "CREATE TABLE IF NOT EXISTS {db}." + t.table + on + " AS {db}." + t.table + "_local\n" +
			"ENGINE = Distributed(" + l.cluster + ", {db}, " + t.table + "_local, cityHash64(decision_id))"
		return []string{render(local, db), render(dist, db)}
	}
	switch {
	case strings.HasPrefix(stmt, "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.decisions_mv TO {db}.decisions AS"):
		stmt = strings.Replace(stmt, "{db}.decisions_mv TO {db}.decisions AS", "{db}.decisions_mv"+on+" TO {db}.decisions_local AS", 1)
		stmt = strings.Replace(stmt, "FROM {db}.events\n", "FROM {db}.events_local\n", 1)
	case strings.HasPrefix(stmt, "CREATE VIEW IF NOT EXISTS {db}.decision_summary AS"):
		stmt = strings.Replace(stmt, "{db}.decision_summary AS", "{db}.decision_summary"+on+" AS", 1)
	case strings.HasPrefix(stmt, "CREATE DATABASE IF NOT EXISTS {db}"):
		stmt += on
	case strings.HasPrefix(stmt, "CREATE TABLE IF NOT EXISTS {db}.schema_"):
		name := strings.Fields(stmt)[5]
		stmt = strings.Replace(stmt, name, name+on, 1)
	}
	return []string{render(stmt, db)}
}

// ttlTable is the table whose rows a TTL deletes: the local one on a cluster.
func (l layout) ttlTable(table string) string {
	if l.cluster == "" {
		return table
	}
	return table + "_local" + l.onCluster()
}

// bootstrapStatements create the database and the tables that record its
// schema version and settings.
var bootstrapStatements = []string{
	`CREATE DATABASE IF NOT EXISTS {db}`,
	`CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
    version UInt32,
    name String,
    applied_at DateTime64(3)
) ENGINE = ReplacingMergeTree ORDER BY version`,
	`CREATE TABLE IF NOT EXISTS {db}.schema_settings (
    key String,
    value String,
    updated_at DateTime64(3)
) ENGINE = ReplacingMergeTree(updated_at) ORDER BY key`,
}

// migrate brings the database to the newest known version and reports the
// version it found. Running it again changes nothing.
func migrate(ctx context.Context, conn driver.Conn, db string, l layout) (from, to uint32, err error) {
	for _, s := range bootstrapStatements {
		for _, stmt := range l.statements(s, db) {
			if err := conn.Exec(ctx, stmt); err != nil {
				return 0, 0, fmt.Errorf("bootstrap schema of database %s: %w", db, err)
			}
		}
	}
	current, err := schemaVersion(ctx, conn, db)
	if err != nil {
		return 0, 0, err
	}
	latest := migrations[len(migrations)-1].version
	if current > latest {
		return current, current, fmt.Errorf("database %s is at schema version %d but this decisiontrace knows versions up to %d: upgrade decisiontrace or point it at another database: %w", db, current, latest, errSchemaTooNew)
	}
	for _, m := range migrations {
		if m.version <= current {
			continue
		}
		for i, s := range m.statements {
			for _, stmt := range l.statements(s, db) {
				if err := conn.Exec(ctx, stmt); err != nil {
					return current, current, fmt.Errorf("migration %d (%s), statement %d: %w", m.version, m.name, i+1, err)
				}
			}
		}
		if err := conn.Exec(ctx, render(`INSERT INTO {db}.schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, db),
			m.version, m.name, time.Now()); err != nil {
			return current, current, fmt.Errorf("record migration %d: %w", m.version, err)
		}
	}
	return current, latest, nil
}

func schemaVersion(ctx context.Context, conn driver.Conn, db string) (uint32, error) {
	var v uint32
	if err := conn.QueryRow(ctx, render(`SELECT max(version) FROM {db}.schema_migrations`, db)).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version of database %s: %w", db, err)
	}
	return v, nil
}

// ttlTables names the tables retention applies to and the time column
// that ages them.
var ttlTables = []struct{ table, column string }{
	{"events", "time"},
	{"decisions", "last_seen"},
}

// applyTTL makes the tables' retention match the configuration. The applied
// value is recorded so that an unchanged TTL costs no ALTER (which would
// start a mutation) at each start, and a changed one reaches every table.
func applyTTL(ctx context.Context, conn driver.Conn, db string, l layout, ttl time.Duration) error {
	want := fmt.Sprint(int64(ttl / time.Second))
	var have string
	rows, err := conn.Query(ctx, render(`SELECT argMax(value, updated_at) FROM {db}.schema_settings WHERE key = 'ttl_seconds' GROUP BY key`, db))
	if err != nil {
		return fmt.Errorf("read applied ttl: %w", err)
	}
	for rows.Next() {
		if err := rows.Scan(&have); err != nil {
			rows.Close()
			return fmt.Errorf("read applied ttl: %w", err)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read applied ttl: %w", err)
	}
	if have == want || (have == "" && want == "0") {
		return nil
	}
	for _, t := range ttlTables {
		table := l.ttlTable(t.table)
		stmt := fmt.Sprintf("ALTER TABLE %s.%s REMOVE TTL", db, table)
		if ttl > 0 {
			stmt = fmt.Sprintf("ALTER TABLE %s.%s MODIFY TTL toDateTime(%s) + toIntervalSecond(%d)", db, table, t.column, int64(ttl/time.Second))
		}
		if err := conn.Exec(ctx, stmt); err != nil && !(ttl == 0 && isNoTTL(err)) {
			return fmt.Errorf("apply ttl %s to %s.%s: %w", ttl, db, t.table, err)
		}
	}
	return conn.Exec(ctx, render(`INSERT INTO {db}.schema_settings (key, value, updated_at) VALUES ('ttl_seconds', ?, ?)`, db), want, time.Now())
}

// isNoTTL recognizes REMOVE TTL on a table that has none, which is already
// the wanted state.
func isNoTTL(err error) bool {
	return strings.Contains(err.Error(), "doesn't have TTL") || strings.Contains(err.Error(), "does not have TTL")
}
