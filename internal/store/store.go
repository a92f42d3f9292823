// Package store owns decisiontrace's ClickHouse schema: every table, view
// and materialized view, their versioned migrations and their clustered
// layout, and the statements that write events and contracts and derive
// verdicts. The exporter, the rule evaluator, dtrules, dtctl and the tests
// all go through it, so that each table and each piece of SQL that shapes
// stored data lives in one place.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Store is a decision store: a database on a ClickHouse connection.
type Store struct {
	conn   driver.Conn
	db     string
	layout Layout
	// margin is refreshMargin; tests that must tell a refresh with
	// nothing new from one that re-reads the last seconds set it to 0.
	margin time.Duration
	// hold is how long a watermark must have stood before it moves
	// pending decisions (heldDecidable); 0 at rest.
	hold time.Duration
}

// New returns the store in database db (a plain identifier: identifiers
// cannot be bound as parameters, so callers validate it).
func New(conn driver.Conn, db string, l Layout) *Store {
	return &Store{conn: conn, db: db, layout: l, margin: refreshMargin, hold: watermarkHold}
}

// AtRest makes RefreshVerdicts let a watermark move pending decisions as
// soon as it is stored, with no hold: for a store nothing is written to
// while it judges (rule unit tests, benchmarks on a filled store, a test
// that has waited for its inserts), where no request can be on its way.
func (s *Store) AtRest() *Store {
	s.hold = 0
	return s
}

// DB is the store's database.
func (s *Store) DB() string { return s.db }

// Conn is the store's connection.
func (s *Store) Conn() driver.Conn { return s.conn }

// WriteContext is ctx for a statement that writes: on a cluster the write
// returns once every shard has its part, so that a failure is seen (and
// retried) and what was written is visible to the next query, instead of
// waiting in a Distributed table's queue on one server.
func (s *Store) WriteContext(ctx context.Context) context.Context {
	if s.layout.Cluster == "" {
		return ctx
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"distributed_foreground_insert": 1}))
}

// ErrSchemaTooNew is returned when the database was migrated by a newer
// decisiontrace: writing with an older row layout could corrupt it.
var ErrSchemaTooNew = errors.New("schema is newer than this binary")

// migration is one versioned schema step. Every statement is idempotent on
// its own (IF NOT EXISTS, OR REPLACE, aggregates that a repeated insert
// does not change), so that two processes migrating together, or a crash
// between a statement and its record, leave a correct schema.
type migration struct {
	version    uint32
	name       string
	statements func(l Layout, db string) []string
}

// migrations is append-only: never edit a released step, add a new one.
var migrations = []migration{
	{
		version: 1,
		name:    "events table, per-decision rollup and its materialized view",
		statements: func(l Layout, db string) []string {
			var out []string
			out = append(out, l.create(db, eventsTable)...)
			out = append(out, l.create(db, decisionsTable)...)
			out = append(out, l.materializedView(db, "decisions_mv", "decisions", "events", decisionsV1Select),
				createView(l, db, "decision_summary", decisionSummaryV1))
			return out
		},
	},
	{
		version: 2,
		name:    "verdicts derived in the store: rollup inputs, watermarks, polls, contracts, verdicts, alert tables",
		statements: func(l Layout, db string) []string {
			var out []string
			// The rollup gains what verdicts need. The new materialized view
			// starts before the old one stops, and the backfill repeats what
			// both wrote: every aggregate is idempotent, so the overlap
			// changes nothing.
			out = append(out, l.addColumns(db, "decisions", decisionsV2Columns...)...)
			out = append(out, l.materializedView(db, "decisions_v2_mv", "decisions", "events", decisionsV2Select))
			out = append(out, l.drop(db, "VIEW", "decisions_mv")...)
			out = append(out, refill(db, "decisions ("+decisionsV2Insert+")", decisionsV2Select))

			for _, t := range []struct {
				table  table
				mv     string
				query  string
				refill bool
			}{
				{watermarksTable, "watermarks_mv", watermarksSelect, true},
				{sourcePollsTable, "source_polls_mv", sourcePollsSelect, true},
				{modelOutputsTable, "model_outputs_mv", modelOutputsSelect, true},
				{decisionChangesTable, "decision_changes_mv", decisionChangesSelect, false},
			} {
				out = append(out, l.create(db, t.table)...)
				out = append(out, l.materializedView(db, t.mv, t.table.name, "events", t.query))
				if t.refill {
					// Idempotent too: watermarks are maxima; polls are read
					// by an ASOF join, which a twin row does not change;
					// outputs are read with FINAL.
					out = append(out, refill(db, t.table.name, t.query))
				}
			}
			for _, t := range []table{contractsTable, verdictsTable, verdictRefreshesTable, alertStateTable, alertHistoryTable} {
				out = append(out, l.create(db, t)...)
			}
			// Budgets now come from the contracts in force.
			out = append(out, l.drop(db, "TABLE", "source_budgets")...)
			out = append(out,
				createView(l, db, "contract_sources", contractSourcesView),
				createView(l, db, "read_lag", readLagView),
				createView(l, db, "decision_verdicts", decisionVerdictsView(false, "decisions", false)),
				createView(l, db, "decision_summary", decisionSummaryV2))
			return out
		},
	},
	{
		version: 3,
		name:    "decision_changes: only model outputs and context reads, with their workflow",
		statements: func(l Layout, db string) []string {
			out := l.addColumns(db, "decision_changes", decisionChangesWorkflow)
			// The new feed starts before the old one stops: a decision
			// changed in between is recorded twice and judged once more.
			out = append(out, l.materializedView(db, "decision_changes_v3_mv", "decision_changes", "events", decisionChangesV3Select))
			return append(out, l.drop(db, "VIEW", "decision_changes_mv")...)
		},
	},
	{
		version: 4,
		name:    "watermarks: the latest signal of each workflow's layers",
		statements: func(l Layout, db string) []string {
			// The refill repeats what the new view already wrote: maxima.
			return []string{
				l.materializedView(db, "watermarks_layers_mv", watermarksTable.name, "events", layerWatermarksSelect),
				refill(db, watermarksTable.name, layerWatermarksSelect),
			}
		},
	},
	{
		version: 5,
		name:    "events: model_provider (model.provider, or the GenAI and OpenInference provider names)",
		statements: func(l Layout, db string) []string {
			return l.addColumns(db, "events", "model_provider LowCardinality(String)")
		},
	},
	{
		version: 6,
		name:    "events: evaluation_name, evaluation_score, evaluation_label (gen_ai.evaluation.result)",
		statements: func(l Layout, db string) []string {
			out := l.addColumns(db, "events", "evaluation_name LowCardinality(String)", "evaluation_score Nullable(Float64)",
				"evaluation_label LowCardinality(String)")
			// The layers' watermarks leave evaluations out. The new feed
			// starts before the old one stops; no evaluation was stored
			// before this version, so the two agree on what is stored.
			out = append(out, l.materializedView(db, "watermarks_layers_v6_mv", watermarksTable.name, "events", layerWatermarksV6Select))
			return append(out, l.drop(db, "VIEW", "watermarks_layers_mv")...)
		},
	},
	{
		version: 7,
		name:    "contract_slos: the decision SLOs of the contracts in force",
		statements: func(l Layout, db string) []string {
			return []string{createView(l, db, "contract_slos", contractSLOsView)}
		},
	},
	{
		version: 8,
		name:    "decisions: the rollup without the latest-value columns; decision_summary reads them from events",
		statements: func(l Layout, db string) []string {
			// The new feed starts before the old one stops (idempotent
			// aggregates, as in version 2); the summary stops reading the
			// columns before they go.
			out := []string{l.materializedView(db, "decisions_v8_mv", "decisions", "events", decisionsV8Select)}
			out = append(out, l.drop(db, "VIEW", "decisions_v2_mv")...)
			out = append(out, createView(l, db, "decision_summary", decisionSummaryV8("decisions")))
			return append(out, l.dropColumns(db, "decisions", retiredDecisionsColumns...)...)
		},
	},
	{
		version: 9,
		name:    "watermarks turn absent reads missing once they have stood for a hold: watermark_holds, verdict_refreshes.decidable_until",
		statements: func(l Layout, db string) []string {
			out := l.addColumns(db, "verdict_refreshes", "decidable_until Map(String, DateTime64(9))")
			out = append(out, l.create(db, watermarkHoldsTable)...)
			return append(out, createView(l, db, "decision_verdicts", decisionVerdictsView(true, "decisions", false)))
		},
	},
	{
		version: 10,
		name:    "model_outputs: decision_hash, for the rules' lookups by decision",
		statements: func(l Layout, db string) []string {
			return l.addColumns(db, "model_outputs", modelOutputsDecisionHash)
		},
	},
	{
		version: 11,
		name:    "events: a skipping index of event names",
		statements: func(l Layout, db string) []string {
			return []string{l.addIndex(db, "events", eventsEventIndex)}
		},
	},
	{
		version: 12,
		name:    "decision_rollup: the per-decision rollup in 256-row granules; decisions is a view of it",
		statements: func(l Layout, db string) []string {
			// index_granularity cannot change on a table, so the rollup
			// moves to a new one. The new feed starts before the copy and
			// the old feed stops after it (idempotent aggregates, as in
			// version 2: the overlap changes nothing), the readers move,
			// then the old table goes and its name becomes a view, for
			// queries written against it. Run again, the copy reads the
			// view: the rollup into itself, which changes nothing either.
			// Inserts that began before the new feed are let finish before
			// the copy, which would miss their rows in the old table.
			out := l.create(db, decisionRollupTable)
			out = append(out, l.materializedView(db, "decision_rollup_mv", decisionRollupTable.name, "events", decisionsV8Select),
				l.settleInserts(db, "events"),
				"INSERT INTO "+db+"."+decisionRollupTable.name+" ("+decisionRollupColumns+")\nSELECT "+decisionRollupColumns+" FROM "+db+".decisions",
				createView(l, db, "decision_summary", decisionSummaryV8(decisionRollupTable.name)),
				createView(l, db, "decision_verdicts", decisionVerdictsView(true, decisionRollupTable.name, false)))
			out = append(out, l.drop(db, "VIEW", "decisions_v8_mv")...)
			out = append(out, l.drop(db, "TABLE", "decisions")...)
			return append(out, createView(l, db, "decisions", "SELECT * FROM {db}."+decisionRollupTable.name))
		},
	},
	{
		version: 13,
		name:    "watermarks: a signal counts up to when it reached the store",
		statements: func(l Layout, db string) []string {
			// The new feeds start before the old ones stop (maxima, as in
			// version 6); watermarks a clock ahead already moved past the
			// present are brought back to it.
			out := []string{
				l.materializedView(db, "watermarks_v13_mv", watermarksTable.name, "events", watermarksV13Select),
				l.materializedView(db, "watermarks_layers_v13_mv", watermarksTable.name, "events", layerWatermarksV13Select),
			}
			out = append(out, l.drop(db, "VIEW", "watermarks_mv")...)
			out = append(out, l.drop(db, "VIEW", "watermarks_layers_v6_mv")...)
			return append(out, "ALTER TABLE "+l.local(db, watermarksTable.name)+l.onCluster()+
				" UPDATE until = least(until, now64(9)) WHERE until > now64(9) SETTINGS mutations_sync = 2")
		},
	},
	{
		version: 14,
		name:    "verdicts: awaiting_sources, the optional sources still pending, judged again once decided",
		statements: func(l Layout, db string) []string {
			// The column first: the view's verdicts are written into it.
			out := l.addColumns(db, "verdicts", "awaiting_sources Array(String)")
			return append(out, createView(l, db, "decision_verdicts", decisionVerdictsView(true, decisionRollupTable.name, true)))
		},
	},
}

func createView(l Layout, db, name, query string) string { return l.view(db, name, query) }

// refill writes into table (with its column list, if any) what a
// materialized view's query makes of the events already stored: the
// backfill of a view added by a migration.
func refill(db, table, query string) string {
	return "INSERT INTO " + db + "." + table + "\n" + strings.ReplaceAll(query, "{from}", db+".events")
}

// bootstrap creates the database and the tables that record its schema
// version and settings. They are per server, also on a cluster.
func bootstrap(l Layout, db string) []string {
	on := l.onCluster()
	return []string{
		"CREATE DATABASE IF NOT EXISTS " + db + on,
		"CREATE TABLE IF NOT EXISTS " + db + ".schema_migrations" + on + ` (
    version UInt32,
    name String,
    applied_at DateTime64(3)
) ENGINE = ReplacingMergeTree ORDER BY version`,
		"CREATE TABLE IF NOT EXISTS " + db + ".schema_settings" + on + ` (
    key String,
    value String,
    updated_at DateTime64(3)
) ENGINE = ReplacingMergeTree(updated_at) ORDER BY key`,
	}
}

// Statements is the whole schema for a layout, bootstrap and migrations in
// order: what Migrate runs on an empty database.
func Statements(l Layout, db string) []string {
	out := bootstrap(l, db)
	for _, m := range migrations {
		out = append(out, m.statements(l, db)...)
	}
	return out
}

// Latest is the newest schema version this binary knows.
func Latest() uint32 { return migrations[len(migrations)-1].version }

// migrating holds, per database, the one Migrate of this process that
// runs at a time: a collector's exporters and rule receiver all migrate
// the store they share at start, and a step that copies a large table
// would otherwise run once for each of them, at once.
var migrating sync.Map // database name → chan struct{} (capacity 1)

// Migrate brings the database to the newest known version and reports the
// version it found. Running it again changes nothing. Within one process,
// calls for the same database run one after the other; a later one finds
// the work done.
func (s *Store) Migrate(ctx context.Context) (from, to uint32, err error) {
	sem, _ := migrating.LoadOrStore(s.db, make(chan struct{}, 1))
	select {
	case sem.(chan struct{}) <- struct{}{}:
		defer func() { <-sem.(chan struct{}) }()
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("migrate schema of database %s: waiting for this process's other migration: %w", s.db, ctx.Err())
	}
	current, err := s.CheckVersion(ctx)
	if err != nil {
		return current, current, err
	}
	found := current
	for _, m := range migrations {
		if m.version <= current {
			continue
		}
		for i, stmt := range m.statements(s.layout, s.db) {
			if err := s.conn.Exec(s.WriteContext(ctx), stmt); err != nil {
				return found, current, fmt.Errorf("migration %d (%s), statement %d: %w", m.version, m.name, i+1, err)
			}
		}
		if err := s.conn.Exec(ctx, "INSERT INTO "+s.db+".schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			m.version, m.name, time.Now()); err != nil {
			return found, current, fmt.Errorf("record migration %d: %w", m.version, err)
		}
		current = m.version
	}
	return found, Latest(), nil
}

// CheckVersion creates the database and its version table if missing and
// reads the schema version (0: none), quickly, before a migration that may
// take long: ErrSchemaTooNew when a newer decisiontrace migrated it.
func (s *Store) CheckVersion(ctx context.Context) (uint32, error) {
	for _, stmt := range bootstrap(s.layout, s.db) {
		if err := s.conn.Exec(ctx, stmt); err != nil {
			return 0, fmt.Errorf("bootstrap schema of database %s: %w", s.db, err)
		}
	}
	current, err := s.Version(ctx)
	if err != nil {
		return 0, err
	}
	if current > Latest() {
		return current, fmt.Errorf("database %s is at schema version %d but this decisiontrace knows versions up to %d: upgrade decisiontrace or point it at another database: %w", s.db, current, Latest(), ErrSchemaTooNew)
	}
	return current, nil
}

// Version reads the database's schema version (0: none).
func (s *Store) Version(ctx context.Context) (uint32, error) {
	var v uint32
	if err := s.conn.QueryRow(ctx, "SELECT max(version) FROM "+s.db+".schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version of database %s: %w", s.db, err)
	}
	return v, nil
}

// ttlTables names the tables retention applies to and the time column that
// ages them.
var ttlTables = []struct{ table, column string }{
	{"events", "time"},
	{"decision_rollup", "last_seen"},
	{"verdicts", "decision_time"},
	{"source_polls", "time"},
	{"model_outputs", "time"},
}

// ApplyTTL makes the tables' retention match ttl (0: keep forever). The
// applied value is recorded per table, so an unchanged TTL costs no ALTER
// (which would start a mutation) at each start, and a changed one, or a
// table a migration added, gets it.
func (s *Store) ApplyTTL(ctx context.Context, ttl time.Duration) error {
	applied, err := s.settings(ctx)
	if err != nil {
		return err
	}
	want := fmt.Sprint(int64(ttl / time.Second))
	for _, t := range ttlTables {
		have, ok := applied["ttl_seconds."+t.table]
		if !ok && (t.table == "events" || t.table == "decisions") {
			have, ok = applied["ttl_seconds"] // recorded by version 1 for both
		}
		if !ok {
			have = "0" // a table is created without TTL
		}
		if have == want {
			continue
		}
		name := t.table
		if s.layout.Cluster != "" {
			name += "_local"
		}
		stmt := fmt.Sprintf("ALTER TABLE %s.%s%s REMOVE TTL", s.db, name, s.layout.onCluster())
		if ttl > 0 {
			stmt = fmt.Sprintf("ALTER TABLE %s.%s%s MODIFY TTL toDateTime(%s) + toIntervalSecond(%d)", s.db, name, s.layout.onCluster(), t.column, int64(ttl/time.Second))
		}
		if err := s.conn.Exec(ctx, stmt); err != nil && !(ttl == 0 && isNoTTL(err)) {
			return fmt.Errorf("apply ttl %s to %s.%s: %w", ttl, s.db, t.table, err)
		}
		if err := s.conn.Exec(ctx, "INSERT INTO "+s.db+".schema_settings (key, value, updated_at) VALUES (?, ?, ?)",
			"ttl_seconds."+t.table, want, time.Now()); err != nil {
			return fmt.Errorf("record ttl of %s.%s: %w", s.db, t.table, err)
		}
	}
	return nil
}

func (s *Store) settings(ctx context.Context) (map[string]string, error) {
	rows, err := s.conn.Query(ctx, "SELECT key, argMax(value, updated_at) FROM "+s.db+".schema_settings GROUP BY key")
	if err != nil {
		return nil, fmt.Errorf("read schema settings: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("read schema settings: %w", err)
		}
		out[k] = v
	}
	return out, rows.Err()
}

// isNoTTL recognizes REMOVE TTL on a table that has none, which is already
// the wanted state.
func isNoTTL(err error) bool {
	return strings.Contains(err.Error(), "doesn't have TTL") || strings.Contains(err.Error(), "does not have TTL")
}
