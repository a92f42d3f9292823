package sourcefreshnessreceiver

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.uber.org/goleak"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
	"github.com/decisiontrace/decisiontrace/receivers/sourcefreshnessreceiver/internal/mariadbtest"
	"github.com/decisiontrace/decisiontrace/receivers/sourcefreshnessreceiver/internal/pgtest"
)

// The tests in this file poll real servers: a private PostgreSQL
// (internal/pgtest), a private MariaDB (internal/mariadbtest) and the tests'
// ClickHouse (internal/testenv).

// latest is the last record of one source, if any.
func latest(h *harness, name string) (record, bool) {
	rs := bySource(h.sink, name)
	if len(rs) == 0 {
		return record{}, false
	}
	return rs[len(rs)-1], true
}

// waitFor waits until the latest record of name, polled after since,
// satisfies ok, and returns it.
func waitFor(t *testing.T, h *harness, name string, since time.Time, what string, ok func(record) bool) record {
	t.Helper()
	var got record
	require.Eventuallyf(t, func() bool {
		r, found := latest(h, name)
		if !found || r.time.Before(since) || !ok(r) {
			return false
		}
		got = r
		return true
	}, 30*time.Second, 20*time.Millisecond, "%s: %s; last record: %+v", name, what, func() any { r, _ := latest(h, name); return r.attrs }())
	return got
}

func asOfOf(t *testing.T, r record) time.Time {
	t.Helper()
	s, ok := r.attrs[c.DataAsOf].(string)
	require.True(t, ok, "data.as_of missing in %v", r.attrs)
	at, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return at
}

func available(r record) bool { return r.attrs[c.DataAvailable] == true }

func TestIntegrationPostgreSQLFreshnessThroughAnOutage(t *testing.T) {
	srv := pgtest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	exec := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, srv.DSN)
		require.NoError(t, err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		require.NoError(t, err)
	}
	exec(`CREATE TABLE policies (id int PRIMARY KEY, updated_at timestamptz NOT NULL, local_at timestamp NOT NULL);
		INSERT INTO policies VALUES (1, now() - interval '1 hour', now() AT TIME ZONE 'UTC' - interval '1 hour'),
		                            (2, now() - interval '2 hours', now() AT TIME ZONE 'UTC' - interval '2 hours')`)

	cfg := createDefaultConfig().(*Config)
	cfg.Interval, cfg.Timeout = 100*time.Millisecond, 3*time.Second
	cfg.Sources = []SourceConfig{
		{Name: "policy-db", Workflow: "claims-triage", Kind: KindPostgreSQL, DSN: configopaque.String(srv.DSN),
			Password: "unused-with-trust", Query: "SELECT max(updated_at) FROM policies"},
		// timestamp without time zone, holding UTC, and Unix seconds as numeric.
		{Name: "policy-db-local", Kind: KindPostgreSQL, DSN: configopaque.String(srv.DSN), Query: "SELECT max(local_at) FROM policies"},
		{Name: "policy-db-epoch", Kind: KindPostgreSQL, DSN: configopaque.String(srv.DSN), Query: "SELECT extract(epoch FROM max(updated_at)) FROM policies"},
		{Name: "no-such-table", Kind: KindPostgreSQL, DSN: configopaque.String(srv.DSN), Query: "SELECT max(updated_at) FROM nope"},
		{Name: "empty", Kind: KindPostgreSQL, DSN: configopaque.String(srv.DSN), Query: "SELECT max(updated_at) FROM policies WHERE false"},
	}
	cfg.Queues = []SourceConfig{{Name: "policies-open", Workflow: "claims-triage", Kind: KindPostgreSQL,
		DSN: configopaque.String(srv.DSN), Query: "SELECT count(*) FROM policies"}}
	began := time.Now()
	h := start(t, cfg)
	defer func() {
		if h != nil {
			h.stop(t)
		}
	}()

	first := waitFor(t, h, "policy-db", began, "available", available)
	assert.Equal(t, "claims-triage", first.attrs[c.DecisionWorkflow])
	assert.WithinDuration(t, began.Add(-time.Hour), asOfOf(t, first), 2*time.Second)
	assert.InDelta(t, 3600, first.attrs[c.DataAgeS], 5)
	for _, name := range []string{"policy-db-local", "policy-db-epoch"} {
		r := waitFor(t, h, name, began, "available", available)
		assert.WithinDuration(t, asOfOf(t, first), asOfOf(t, r), time.Millisecond, name)
	}
	missing := waitFor(t, h, "no-such-table", began, "unavailable", func(r record) bool { return !available(r) })
	assert.Contains(t, missing.attrs[c.DataError], `query: ERROR: relation "nope" does not exist`)
	empty := waitFor(t, h, "empty", began, "unavailable", func(r record) bool { return !available(r) })
	assert.Equal(t, errNoValue.Error(), empty.attrs[c.DataError])
	q := waitFor(t, h, "policies-open", began, "a depth", func(r record) bool { return r.attrs[c.WorkflowQueueDepth] == int64(2) })
	assert.Equal(t, c.EventQueueDepth, q.attrs[c.DecisionEvent])

	// New data moves as_of forward.
	exec(`UPDATE policies SET updated_at = now() - interval '10 seconds' WHERE id = 2`)
	updated := time.Now()
	moved := waitFor(t, h, "policy-db", updated, "as_of about 10s ago", func(r record) bool {
		return available(r) && asOfOf(t, r).After(asOfOf(t, first).Add(time.Minute))
	})
	assert.WithinDuration(t, updated.Add(-10*time.Second), asOfOf(t, moved), 2*time.Second)
	assert.InDelta(t, 10, moved.attrs[c.DataAgeS], 3)

	// An outage is a signal of its own.
	srv.Stop(t)
	stopped := time.Now()
	down := waitFor(t, h, "policy-db", stopped, "unavailable", func(r record) bool { return !available(r) })
	assert.NotEmpty(t, down.attrs[c.DataError])
	assert.NotContains(t, down.attrs[c.DataError], "unused-with-trust")
	assert.NotContains(t, down.attrs, c.DataAsOf)
	assert.Equal(t, "claims-triage", down.attrs[c.DecisionWorkflow])
	t.Logf("data.error while PostgreSQL is down: %s", down.attrs[c.DataError])

	// And the receiver reconnects by itself.
	srv.Restart(t)
	restarted := time.Now()
	back := waitFor(t, h, "policy-db", restarted, "available again", available)
	assert.Equal(t, asOfOf(t, moved), asOfOf(t, back))
	assert.Positive(t, h.polls(t, "otelcol_sourcefreshness_polls", "source", "policy-db", "error"))

	h.stop(t)
	h = nil
}

func TestIntegrationClickHouseFreshness(t *testing.T) {
	addr := testenv.ClickHouse(t)
	user, pass := testenv.ClickHouseAuth()
	ctx := context.Background()
	db := testenv.Database(t, addr, "dt_sf_test")
	conn := testenv.Conn(t, addr)
	require.NoError(t, conn.Exec(ctx, "CREATE DATABASE "+db))
	require.NoError(t, conn.Exec(ctx, "CREATE TABLE "+db+".claims (id UInt64, ingested_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY id"))

	cfg := createDefaultConfig().(*Config)
	cfg.Interval, cfg.Timeout = 100*time.Millisecond, 5*time.Second
	src := func(name, query string) SourceConfig {
		return SourceConfig{Name: name, Workflows: []string{"claims-triage"}, Kind: KindClickHouse,
			DSN: configopaque.String("clickhouse://" + addr + "/" + db), Username: user, Password: configopaque.String(pass), Query: query}
	}
	cfg.Sources = []SourceConfig{
		src("claims-events", "SELECT max(ingested_at) FROM claims"),
		src("claims-events-unix", "SELECT toUnixTimestamp(max(ingested_at)) FROM claims"),
	}
	cfg.Queues = []SourceConfig{src("claims-backlog", "SELECT count() FROM claims")}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	began := time.Now()
	h := start(t, cfg)
	defer func() {
		if h != nil {
			h.stop(t)
		}
	}()

	// max() of an empty table is the epoch in ClickHouse: no data, not 56
	// years of staleness.
	empty := waitFor(t, h, "claims-events", began, "unavailable while empty", func(r record) bool { return !available(r) })
	assert.Equal(t, errNoValue.Error(), empty.attrs[c.DataError])

	asOf := time.Now().Add(-42 * time.Second).UTC().Truncate(time.Millisecond)
	// A literal: clickhouse-go binds a time.Time parameter at second precision.
	require.NoError(t, conn.Exec(ctx, fmt.Sprintf("INSERT INTO %s.claims VALUES (1, toDateTime64('%s', 3, 'UTC'))", db, asOf.Format("2006-01-02 15:04:05.000"))))
	inserted := time.Now()
	r := waitFor(t, h, "claims-events", inserted, "available", available)
	assert.Equal(t, asOf.Format(time.RFC3339Nano), r.attrs[c.DataAsOf])
	assert.InDelta(t, 42, r.attrs[c.DataAgeS], 3)
	assert.Equal(t, "claims-triage", r.attrs[c.DecisionWorkflow])
	u := waitFor(t, h, "claims-events-unix", inserted, "available", available)
	assert.Equal(t, asOf.Truncate(time.Second).Format(time.RFC3339Nano), u.attrs[c.DataAsOf])
	waitFor(t, h, "claims-backlog", inserted, "depth 1", func(r record) bool { return r.attrs[c.WorkflowQueueDepth] == int64(1) })

	h.stop(t)
	h = nil
}

func TestIntegrationMariaDBFreshnessThroughAnOutage(t *testing.T) {
	// A server zone far from UTC: TIMESTAMP must still come out right, and
	// DATETIME (zone-less, holding UTC here) must not be shifted.
	srv := mariadbtest.Start(t, "--default-time-zone=+05:00")
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	admin := func() *sql.DB {
		cfg, err := mysql.ParseDSN(srv.DSN)
		require.NoError(t, err)
		cfg.MultiStatements = true
		conn, err := mysql.NewConnector(cfg)
		require.NoError(t, err)
		return sql.OpenDB(conn)
	}()
	defer admin.Close()
	_, err := admin.ExecContext(ctx, `CREATE DATABASE crm;
		CREATE TABLE crm.customers (id int PRIMARY KEY, modified TIMESTAMP(3) NOT NULL, modified_utc DATETIME(3) NOT NULL);
		INSERT INTO crm.customers VALUES (1, NOW(3) - INTERVAL 1 HOUR, UTC_TIMESTAMP(3) - INTERVAL 1 HOUR);
		CREATE USER 'reader'@'127.0.0.1' IDENTIFIED BY 'r3ader-secret';
		GRANT SELECT ON crm.* TO 'reader'@'127.0.0.1'`)
	require.NoError(t, err)

	dsn := configopaque.String("reader@tcp(" + srv.Addr + ")/crm")
	cfg := createDefaultConfig().(*Config)
	cfg.Interval, cfg.Timeout = 100*time.Millisecond, 3*time.Second
	src := func(name, query string) SourceConfig {
		return SourceConfig{Name: name, Workflow: "claims-triage", Kind: KindMySQL, DSN: dsn, Password: "r3ader-secret", Query: query}
	}
	wrongPassword := src("crm-wrong-password", "SELECT max(modified) FROM customers")
	wrongPassword.Password = "n0t-the-secret"
	cfg.Sources = []SourceConfig{
		src("crm", "SELECT max(modified) FROM customers"),
		src("crm-datetime", "SELECT max(modified_utc) FROM customers"),
		src("crm-unix", "SELECT UNIX_TIMESTAMP(max(modified)) FROM customers"),
		wrongPassword,
	}
	began := time.Now()
	h := start(t, cfg)
	defer func() {
		if h != nil {
			h.stop(t)
		}
	}()

	first := waitFor(t, h, "crm", began, "available", available)
	assert.WithinDuration(t, began.Add(-time.Hour), asOfOf(t, first), 2*time.Second)
	assert.InDelta(t, 3600, first.attrs[c.DataAgeS], 5)
	for _, name := range []string{"crm-datetime", "crm-unix"} {
		r := waitFor(t, h, name, began, "available", available)
		assert.WithinDuration(t, asOfOf(t, first), asOfOf(t, r), time.Second, name)
	}
	denied := waitFor(t, h, "crm-wrong-password", began, "unavailable", func(r record) bool { return !available(r) })
	assert.Contains(t, denied.attrs[c.DataError], "Access denied for user 'reader'@'127.0.0.1'")
	assert.NotContains(t, denied.attrs[c.DataError], "n0t-the-secret")

	_, err = admin.ExecContext(ctx, "UPDATE crm.customers SET modified = NOW(3) - INTERVAL 10 SECOND")
	require.NoError(t, err)
	updated := time.Now()
	moved := waitFor(t, h, "crm", updated, "as_of about 10s ago", func(r record) bool {
		return available(r) && asOfOf(t, r).After(asOfOf(t, first).Add(time.Minute))
	})
	assert.WithinDuration(t, updated.Add(-10*time.Second), asOfOf(t, moved), 2*time.Second)

	require.NoError(t, admin.Close())
	srv.Stop(t)
	stopped := time.Now()
	down := waitFor(t, h, "crm", stopped, "unavailable", func(r record) bool { return !available(r) })
	assert.NotEmpty(t, down.attrs[c.DataError])
	assert.NotContains(t, down.attrs[c.DataError], "r3ader-secret")
	t.Logf("data.error while MariaDB is down: %s", down.attrs[c.DataError])

	srv.Restart(t)
	back := waitFor(t, h, "crm", time.Now(), "available again", available)
	assert.Equal(t, asOfOf(t, moved), asOfOf(t, back))

	h.stop(t)
	h = nil
}
