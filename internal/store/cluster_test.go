package store

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/decisiontrace/decisiontrace/internal/chlocal"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

func TestClusterLayoutStatements(t *testing.T) {
	stmts := Statements(Layout{Cluster: "dt", Replicated: true}, "decisiontrace")
	joined := strings.Join(stmts, "\n;\n")
	for _, want := range []string{
		"CREATE DATABASE IF NOT EXISTS decisiontrace ON CLUSTER dt",
		"CREATE TABLE IF NOT EXISTS decisiontrace.events_local ON CLUSTER dt (",
		"ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')",
		"replicated_deduplication_window = 1000",
		"CREATE TABLE IF NOT EXISTS decisiontrace.events ON CLUSTER dt AS decisiontrace.events_local\nENGINE = Distributed(dt, decisiontrace, events_local, cityHash64(decision_id))",
		"ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')",
		"CREATE TABLE IF NOT EXISTS decisiontrace.decisions ON CLUSTER dt AS decisiontrace.decisions_local\nENGINE = Distributed(dt, decisiontrace, decisions_local, cityHash64(decision_id))",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS decisiontrace.decisions_v2_mv ON CLUSTER dt TO decisiontrace.decisions_local AS",
		"FROM decisiontrace.events_local\n",
		"ALTER TABLE decisiontrace.decisions_local ON CLUSTER dt\n    ADD COLUMN IF NOT EXISTS event_ids",
		"ALTER TABLE decisiontrace.decisions ON CLUSTER dt\n    ADD COLUMN IF NOT EXISTS event_ids",
		"CREATE TABLE IF NOT EXISTS decisiontrace.decision_rollup ON CLUSTER dt AS decisiontrace.decision_rollup_local\nENGINE = Distributed(dt, decisiontrace, decision_rollup_local, cityHash64(decision_id))",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS decisiontrace.decision_rollup_mv ON CLUSTER dt TO decisiontrace.decision_rollup_local AS",
		"DROP TABLE IF EXISTS decisiontrace.decisions_local ON CLUSTER dt",
		"CREATE OR REPLACE VIEW decisiontrace.decisions ON CLUSTER dt AS\nSELECT * FROM decisiontrace.decision_rollup",
		"SELECT count() FROM clusterAllReplicas('dt', system.processes) WHERE query_kind = 'Insert'",
		// A Distributed table has no indexes: the local table gets it.
		"ALTER TABLE decisiontrace.events_local ON CLUSTER dt\n    ADD INDEX IF NOT EXISTS idx_event event TYPE set(64) GRANULARITY 1",
		"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', judged_at)",
		"CREATE TABLE IF NOT EXISTS decisiontrace.verdicts ON CLUSTER dt AS decisiontrace.verdicts_local\nENGINE = Distributed(dt, decisiontrace, verdicts_local, cityHash64(decision_id))",
		"CREATE OR REPLACE VIEW decisiontrace.decision_verdicts ON CLUSTER dt AS",
		"CREATE TABLE IF NOT EXISTS decisiontrace.schema_migrations ON CLUSTER dt (",
	} {
		assert.Contains(t, joined, want)
	}
	assert.NotContains(t, joined, "ALTER TABLE decisiontrace.events ON CLUSTER dt\n    ADD INDEX")
	assert.NotContains(t, joined, "non_replicated_deduplication_window")
	assert.NotContains(t, joined, "{from}")
	assert.NotContains(t, joined, "{db}")
	for _, s := range stmts {
		if !strings.HasPrefix(s, "INSERT") && !strings.HasPrefix(s, "SELECT") {
			assert.Contains(t, s, " ON CLUSTER dt", "every DDL statement runs on every server: %.60s", s)
		}
	}
	single := strings.Join(Statements(Layout{}, "x"), "\n")
	assert.NotContains(t, single, "ON CLUSTER")
	assert.NotContains(t, single, "_local")
}

// The embedded engine is clickhouse-local: it takes a remote_servers
// cluster but refuses ON CLUSTER (distributed DDL needs a server with
// Keeper), and has no Keeper for Replicated tables. So this test parses the
// replicated schema with the server's own parser (formatQuery), and runs the
// non-replicated clustered schema without ON CLUSTER on a one-shard cluster
// of the server itself: Distributed tables route by decision ID, the
// materialized views roll up the local events, and the verdicts are derived
// through the Distributed tables.
func TestIntegrationClusterSchemaOnAOneShardCluster(t *testing.T) {
	port := testenv.FreePort(t)
	srv, err := chlocal.Start(context.Background(), chlocal.Options{DataDir: t.TempDir(), TCPPort: port, Config: []string{
		"remote_servers.dt.shard.replica.host=127.0.0.1",
		"remote_servers.dt.shard.replica.port=" + strconv.Itoa(port),
	}})
	require.NoError(t, err)
	defer func() { _ = srv.Stop() }()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{srv.TCPAddr()}})
	require.NoError(t, err)
	defer conn.Close()
	ctx := context.Background()

	for _, s := range Statements(Layout{Cluster: "dt", Replicated: true}, "dt_cluster") {
		var formatted string
		require.NoError(t, conn.QueryRow(ctx, "SELECT formatQuery(?)", s).Scan(&formatted), "ClickHouse parses:\n%s", s)
	}

	l := Layout{Cluster: "dt"}
	s := New(conn, "dt_cluster", l).AtRest()
	for _, stmt := range Statements(l, "dt_cluster") {
		require.NoError(t, conn.Exec(s.WriteContext(ctx), strings.ReplaceAll(stmt, " ON CLUSTER dt", "")), "%s", stmt)
	}
	checkVerdictsThroughStore(t, s)

	var local, distributed uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM dt_cluster.events_local").Scan(&local))
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM dt_cluster.events").Scan(&distributed))
	assert.Positive(t, local)
	assert.Equal(t, local, distributed)
	require.NoError(t, New(conn, "dt_cluster", Layout{}).ApplyTTL(ctx, 0), "schema_settings exists on the cluster too")
}
