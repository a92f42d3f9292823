// Package storetest gives an integration test a decision store of its own
// on the real ClickHouse of internal/testenv: a fresh database, migrated by
// internal/store and written the way the decisionstore exporter writes it,
// dropped when the test ends. Writes are synchronous: what a write
// returned from is stored.
package storetest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/decisiontrace/decisiontrace/internal/chlocal"
	"github.com/decisiontrace/decisiontrace/internal/contract"
	"github.com/decisiontrace/decisiontrace/internal/store"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// Store is one test's decision store.
type Store struct {
	*store.Store
	Addr string // ClickHouse native host:port
	DB   string
	Conn driver.Conn
}

// New creates and migrates the store in a database named prefix_<random>.
func New(t testing.TB, prefix string) *Store {
	t.Helper()
	return NewOn(t, testenv.ClickHouse(t), prefix)
}

// NewOn is New on the ClickHouse at addr (host:port of the native
// protocol), with the credentials of internal/testenv.
func NewOn(t testing.TB, addr, prefix string) *Store {
	t.Helper()
	s := &Store{Addr: addr, DB: testenv.Database(t, addr, prefix), Conn: testenv.Conn(t, addr)}
	s.Store = store.New(s.Conn, s.DB, store.Layout{}).AtRest()
	_, _, err := s.Migrate(context.Background())
	require.NoError(t, err)
	return s
}

// NewCluster is New on a clustered store, as an operator's cluster holds
// it: Distributed tables over local ones, on a one-shard cluster named dt
// of a ClickHouse of the test's own (the clustered schema applied without
// ON CLUSTER, which needs a Keeper). Queries over it go through the
// Distributed tables, so a subquery or join that a cluster refuses
// (distributed_product_mode) fails here too.
func NewCluster(t testing.TB, db string) *Store {
	t.Helper()
	port := testenv.FreePort(t)
	srv, err := chlocal.Start(context.Background(), chlocal.Options{DataDir: t.TempDir(), TCPPort: port, Config: []string{
		"remote_servers.dt.shard.replica.host=127.0.0.1",
		"remote_servers.dt.shard.replica.port=" + strconv.Itoa(port),
	}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{srv.TCPAddr()}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	l := store.Layout{Cluster: "dt"}
	s := &Store{Addr: srv.TCPAddr(), DB: db, Conn: conn, Store: store.New(conn, db, l).AtRest()}
	ctx := s.WriteContext(context.Background())
	for _, stmt := range store.Statements(l, db) {
		require.NoError(t, conn.Exec(ctx, strings.ReplaceAll(stmt, " ON CLUSTER dt", "")), "%s", stmt)
	}
	return s
}

// Write stores logs as the exporter does (records without decision.*
// attributes kept as unclassified).
func (s *Store) Write(t testing.TB, ld plog.Logs) {
	t.Helper()
	require.NoError(t, s.InsertEvents(context.Background(), store.LogEvents(ld, true)))
}

// WriteSpans stores spans as the exporter does.
func (s *Store) WriteSpans(t testing.TB, td ptrace.Traces) {
	t.Helper()
	require.NoError(t, s.InsertEvents(context.Background(), store.SpanEvents(td, true)))
}

// Contracts loads contract files and writes them into the store, in force
// from now.
func (s *Store) Contracts(t testing.TB, now time.Time, files ...string) map[string]*contract.Contract {
	t.Helper()
	cs, err := contract.Load(files)
	require.NoError(t, err)
	require.NoError(t, s.WriteContracts(context.Background(), cs, now))
	return cs
}

// Refresh judges the decisions that changed, as the rule evaluator does
// before its rounds.
func (s *Store) Refresh(t testing.TB) {
	t.Helper()
	_, err := s.RefreshVerdicts(context.Background())
	require.NoError(t, err)
}

// Count runs a query that returns one count; {db} stands for the database.
func (s *Store) Count(t testing.TB, query string, args ...any) uint64 {
	t.Helper()
	var n uint64
	require.NoError(t, s.Conn.QueryRow(context.Background(), Render(query, s.DB), args...).Scan(&n))
	return n
}

// Render puts the database's name for each {db} of a query.
func Render(query, db string) string { return strings.ReplaceAll(query, "{db}", db) }
