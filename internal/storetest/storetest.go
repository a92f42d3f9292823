// Package storetest gives an integration test a decision store of its own
// on the real ClickHouse of internal/testenv: a fresh database, created and
// filled by the decisionstore exporter the way the collector fills it, and
// dropped when the test ends. Writes are synchronous (no sending queue):
// what a write returned from is stored.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/decisiontrace/decisiontrace/exporters/decisionstoreexporter"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// Store is one test's decision store.
type Store struct {
	Addr   string // ClickHouse native host:port
	DB     string
	Conn   driver.Conn
	Logs   exporter.Logs
	Traces exporter.Traces
}

// New creates the store in a database named prefix_<random>; mut, when
// given, adjusts the exporter's configuration first.
func New(t testing.TB, prefix string, mut func(*decisionstoreexporter.Config)) *Store {
	t.Helper()
	s := &Store{Addr: testenv.ClickHouse(t)}
	user, pass := testenv.ClickHouseAuth()
	var b [4]byte
	_, _ = rand.Read(b[:])
	s.DB = prefix + "_" + hex.EncodeToString(b[:])
	f := decisionstoreexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*decisionstoreexporter.Config)
	cfg.Endpoint = "clickhouse://" + s.Addr
	cfg.Username, cfg.Password = user, configopaque.String(pass)
	cfg.Database = s.DB
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	if mut != nil {
		mut(cfg)
	}
	ctx := context.Background()
	set := exportertest.NewNopSettings(f.Type())
	var err error
	s.Logs, err = f.CreateLogs(ctx, set, cfg)
	require.NoError(t, err)
	s.Traces, err = f.CreateTraces(ctx, set, cfg)
	require.NoError(t, err)
	require.NoError(t, s.Logs.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, s.Traces.Start(ctx, componenttest.NewNopHost()))
	s.Conn, err = clickhouse.Open(&clickhouse.Options{Addr: []string{s.Addr}, Auth: clickhouse.Auth{Username: user, Password: pass}})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = s.Logs.Shutdown(ctx)
		_ = s.Traces.Shutdown(ctx)
		_ = s.Conn.Exec(ctx, "DROP DATABASE IF EXISTS "+s.DB+" SYNC")
		_ = s.Conn.Close()
	})
	return s
}

// Write stores logs; it fails the test if the exporter refuses them.
func (s *Store) Write(t testing.TB, ld plog.Logs) {
	t.Helper()
	require.NoError(t, s.Logs.ConsumeLogs(context.Background(), ld))
}
