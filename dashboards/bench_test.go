package dashboards

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// Environment of BenchmarkPanels: the decision store to time the panels on
// (deploy/local/bench-growth.sh fills one).
const (
	benchAddrEnv = "DECISIONTRACE_BENCH_CLICKHOUSE"
	benchDBEnv   = "DECISIONTRACE_BENCH_DATABASE"
)

// BenchmarkPanels times every panel's query, as Grafana sends it for the
// 24 hours before the store's newest event with every workflow, model
// version and source selected (the explorer on a decision of the last
// hour), on an existing store:
//
//	DECISIONTRACE_BENCH_CLICKHOUSE=127.0.0.1:19000 go test -run '^$' -bench Panels -benchtime 3x ./dashboards/
func BenchmarkPanels(b *testing.B) {
	addr := os.Getenv(benchAddrEnv)
	if addr == "" {
		b.Skip(benchAddrEnv + " names no decision store (host:port) to time the panels on")
	}
	db := os.Getenv(benchDBEnv)
	if db == "" {
		db = "decisiontrace"
	}
	user, pass := testenv.ClickHouseAuth()
	// The server's own defaults, as the Grafana plugin runs on them (the
	// tests pin compatibility 24.8 to prove the SQL runs there).
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr},
		Auth: clickhouse.Auth{Database: db, Username: user, Password: pass}})
	require.NoError(b, err)
	b.Cleanup(func() { _ = conn.Close() })
	ctx := context.Background()

	var newest time.Time
	require.NoError(b, conn.QueryRow(ctx, "SELECT max(time) FROM events").Scan(&newest))
	var decision string
	require.NoError(b, conn.QueryRow(ctx, `SELECT decision_id FROM events
WHERE layer = 'model' AND event = 'model.output' AND time > ? ORDER BY event_id LIMIT 1`, newest.Add(-time.Hour)).Scan(&decision))
	e := expansion{from: newest.Add(-24 * time.Hour), to: newest, interval: time.Minute,
		vars: map[string][]string{"workflow": nil, "model_version": nil, "source": nil, "decision_id": {decision}}}

	for _, sp := range Specs() {
		for _, p := range sp.Panels {
			q, err := e.expand(p.SQL)
			require.NoError(b, err)
			b.Run(sp.UID+"/"+p.Title, func(b *testing.B) {
				for b.Loop() {
					rows, err := conn.Query(ctx, q)
					require.NoError(b, err, "query:\n%s", q)
					for rows.Next() {
					}
					require.NoError(b, rows.Err())
					rows.Close()
				}
			})
		}
	}
}
