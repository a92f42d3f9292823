package decisionstoreexporter

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/decisiontrace/decisiontrace/internal/chlocal"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// clusterStatements is the whole clustered schema, bootstrap and
// migrations, in order.
func clusterStatements(l layout, db string) []string {
	var out []string
	for _, s := range bootstrapStatements {
		out = append(out, l.statements(s, db)...)
	}
	for _, m := range migrations {
		for _, s := range m.statements {
			out = append(out, l.statements(s, db)...)
		}
	}
	return out
}

func TestClusterLayoutStatements(t *testing.T) {
	stmts := clusterStatements(layout{cluster: "dt", replicated: true}, "decisiontrace")
	joined := strings.Join(stmts, "\n;\n")
	for _, want := range []string{
		"CREATE DATABASE IF NOT EXISTS decisiontrace ON CLUSTER dt",
		"CREATE TABLE IF NOT EXISTS decisiontrace.events_local ON CLUSTER dt (",
		"ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')",
		"replicated_deduplication_window = 1000",
		"CREATE TABLE IF NOT EXISTS decisiontrace.events ON CLUSTER dt AS decisiontrace.events_local\nENGINE = Distributed(dt, decisiontrace, events_local, cityHash64(decision_id))",
		"ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')",
		"CREATE TABLE IF NOT EXISTS decisiontrace.decisions ON CLUSTER dt AS decisiontrace.decisions_local\nENGINE = Distributed(dt, decisiontrace, decisions_local, cityHash64(decision_id))",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS decisiontrace.decisions_mv ON CLUSTER dt TO decisiontrace.decisions_local AS",
		"FROM decisiontrace.events_local\n",
		"CREATE VIEW IF NOT EXISTS decisiontrace.decision_summary ON CLUSTER dt AS",
		"CREATE TABLE IF NOT EXISTS decisiontrace.schema_migrations ON CLUSTER dt (",
	} {
		assert.Contains(t, joined, want)
	}
	assert.NotContains(t, joined, "non_replicated_deduplication_window")
	for _, s := range stmts {
		if strings.HasPrefix(s, "CREATE") {
			assert.Contains(t, s, " ON CLUSTER dt", "every statement runs on every server: %.60s", s)
		}
	}
	assert.Equal(t, "events_local ON CLUSTER dt", layout{cluster: "dt"}.ttlTable("events"))
	assert.Equal(t, []string{render(migrations[0].statements[0], "x")}, layout{}.statements(migrations[0].statements[0], "x"), "one server: unchanged")
}

// The embedded engine is clickhouse-local: it takes a remote_servers
// cluster but refuses ON CLUSTER (distributed DDL needs a server with
// Keeper), and has no Keeper for Replicated tables. So this test parses the
// replicated schema with the server's own parser (formatQuery), and runs the
// non-replicated clustered schema without ON CLUSTER on a one-shard cluster
// of the server itself: Distributed tables route by decision ID, the
// materialized view rolls up the local events, and decision_summary reads
// the rollup through its Distributed table.
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

	for _, s := range clusterStatements(layout{cluster: "dt", replicated: true}, "dt_cluster") {
		var formatted string
		require.NoError(t, conn.QueryRow(ctx, "SELECT formatQuery(?)", s).Scan(&formatted), "ClickHouse parses:\n%s", s)
	}

	for _, s := range clusterStatements(layout{cluster: "dt"}, "dt_cluster") {
		require.NoError(t, conn.Exec(ctx, strings.ReplaceAll(s, " ON CLUSTER dt", "")), "%s", s)
	}
	now := time.Now().UTC()
	for i, layer := range []string{"data", "model", "workflow", "human", "business"} {
		ictx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"distributed_foreground_insert": 1}))
		require.NoError(t, conn.Exec(ictx, fmt.Sprintf(`INSERT INTO dt_cluster.events (time, decision_id, workflow, layer, event, event_id)
VALUES (fromUnixTimestamp64Milli(%d), 'd-1', 'claims-triage', '%s', 'x', %d)`, now.Add(time.Duration(i)*time.Second).UnixMilli(), layer, i+1)))
	}
	var local, distributed uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM dt_cluster.events_local").Scan(&local))
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM dt_cluster.events").Scan(&distributed))
	assert.Equal(t, uint64(5), local)
	assert.Equal(t, uint64(5), distributed)
	var layers []string
	var events uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT layers_seen, events FROM dt_cluster.decision_summary WHERE decision_id = 'd-1'").Scan(&layers, &events))
	assert.Equal(t, []string{"data", "model", "workflow", "human", "business"}, layers)
	assert.Equal(t, uint64(5), events)
	require.NoError(t, applyTTL(ctx, conn, "dt_cluster", layout{}, 0), "schema_settings exists on the cluster too")
}
