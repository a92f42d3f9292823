package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/rs/zerolog"

	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// verifyDatabase is a database of its own on the test ClickHouse, the
// verify settings that read it, and exec to run statements there.
func verifyDatabase(t *testing.T) (verifyConfig, func(string)) {
	t.Helper()
	addr := testenv.ClickHouse(t)
	user, pass := testenv.ClickHouseAuth()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Username: user, Password: pass}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx := context.Background()
	db := "dtloadgen_verify_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	exec := func(q string) {
		t.Helper()
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE DATABASE " + db)
	t.Cleanup(func() { _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db) })
	return verifyConfig{addr: addr, database: db, user: user, password: pass, timeout: 5 * time.Second, interval: 50 * time.Millisecond}, exec
}

// eventsTable is a table shaped like the exporter's events table, with
// only the columns the verify queries touch.
func eventsTable(db string) string {
	return `CREATE TABLE ` + db + `.events (
    time DateTime64(9), event_id UInt64, decision_id String,
    resource_attributes Map(LowCardinality(String), String)
) ENGINE = MergeTree ORDER BY (time, decision_id, event_id)`
}

// TestIntegrationVerifyCountsWithAndWithoutFinal runs the verify queries
// against real ClickHouse: a table shaped like the exporter's events table
// (only the columns the queries touch), holding the run's rows, a duplicate
// in a separate unmerged part, and another run's rows.
func TestIntegrationVerifyCountsWithAndWithoutFinal(t *testing.T) {
	ctx := context.Background()
	vc, exec := verifyDatabase(t)
	db := vc.database
	exec(eventsTable(db))
	now := time.Now()
	// A run's rows, the first 10 again in a separate insert (a collector
	// retry), and another run's rows that must not be counted.
	exec(`INSERT INTO ` + db + `.events SELECT now64(9) - toIntervalMillisecond(number), number, 'run1-' || toString(number), map('service.instance.id', 'run1') FROM numbers(1000)`)
	exec(`INSERT INTO ` + db + `.events SELECT time, event_id, decision_id, resource_attributes FROM ` + db + `.events WHERE event_id < 10`)
	exec(`INSERT INTO ` + db + `.events SELECT now64(9), number, 'run2', map('service.instance.id', 'run2') FROM numbers(50)`)
	exec(`SYSTEM STOP MERGES ` + db + `.events`)

	res, err := verify(ctx, vc, "run1", 1000, now, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if !res.complete || res.stored != 1000 || res.storedRaw != 1010 {
		t.Fatalf("complete=%v stored=%d raw=%d, want true 1000 1010", res.complete, res.stored, res.storedRaw)
	}
	if res.queryableAt.IsZero() {
		t.Fatal("no queryable time")
	}

	vc.timeout = 300 * time.Millisecond
	res, err = verify(ctx, vc, "run1", 1001, now, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if res.complete || res.stored != 1000 {
		t.Fatalf("complete=%v stored=%d, want false 1000", res.complete, res.stored)
	}

	vc.database = "x; DROP TABLE y"
	if _, err := verify(ctx, vc, "run1", 1, now, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "identifier") {
		t.Fatalf("unsafe database name accepted: %v", err)
	}
}

// With --verify-schema otel, the run's rows are counted in the tables of
// contrib's clickhouseexporter (only the columns the query touches), logs
// and traces together; another run's are not.
func TestIntegrationVerifyCountsTheStockPipelinesTables(t *testing.T) {
	ctx := context.Background()
	vc, exec := verifyDatabase(t)
	vc.schema = schemaOTel
	db := vc.database
	for _, table := range []string{"otel_logs", "otel_traces"} {
		exec(`CREATE TABLE ` + db + `.` + table + ` (Timestamp DateTime64(9), ResourceAttributes Map(LowCardinality(String), String)) ENGINE = MergeTree ORDER BY Timestamp`)
	}
	now := time.Now()
	exec(`INSERT INTO ` + db + `.otel_logs SELECT now64(9), map('service.instance.id', 'run1') FROM numbers(700)`)
	exec(`INSERT INTO ` + db + `.otel_traces SELECT now64(9), map('service.instance.id', 'run1') FROM numbers(300)`)
	exec(`INSERT INTO ` + db + `.otel_logs SELECT now64(9), map('service.instance.id', 'run2') FROM numbers(50)`)

	res, err := verify(ctx, vc, "run1", 1000, now, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if !res.complete || res.stored != 1000 || res.storedRaw != 1000 {
		t.Fatalf("complete=%v stored=%d raw=%d, want true 1000 1000", res.complete, res.stored, res.storedRaw)
	}

	// Both tables' rows count towards the bound: 1,050 rows, 1,000 of them
	// the run's, cannot hold 1,051 of it.
	vc.timeout = 300 * time.Millisecond
	if res, err = verify(ctx, vc, "run1", 1051, now, zerolog.Nop()); err != nil || res.complete || res.scans != 0 {
		t.Fatalf("complete=%v scans=%d err=%v, want false 0 nil", res.complete, res.scans, err)
	}
}

// TestIntegrationVerifyScansOnlyOnceTheTableHoldsEnoughRows: the scan of
// the run's rows (every row's resource map read) waits until the table
// holds at least as many rows as the run sent, and the run is queryable
// from the start of the scan that found them all.
func TestIntegrationVerifyScansOnlyOnceTheTableHoldsEnoughRows(t *testing.T) {
	ctx := context.Background()
	vc, exec := verifyDatabase(t)
	db := vc.database
	exec(eventsTable(db))
	now := time.Now()
	exec(`INSERT INTO ` + db + `.events SELECT now64(9), number, '', map('service.instance.id', 'run1') FROM numbers(500)`)

	vc.timeout = 500 * time.Millisecond
	res, err := verify(ctx, vc, "run1", 1000, now, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if res.complete || res.scans != 0 {
		t.Fatalf("with 500 of 1,000 rows stored: complete=%v scans=%d, want false 0", res.complete, res.scans)
	}

	// The rest arrives while verify polls.
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{vc.addr}, Auth: clickhouse.Auth{Username: vc.user, Password: vc.password}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	vc.timeout = 30 * time.Second
	sent := make(chan time.Time, 1)
	insertErr := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		sent <- time.Now()
		insertErr <- conn.Exec(ctx, `INSERT INTO `+db+`.events SELECT now64(9), 500 + number, '', map('service.instance.id', 'run1') FROM numbers(500)`)
	}()
	res, err = verify(ctx, vc, "run1", 1000, now, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := <-insertErr; err != nil {
		t.Fatal(err)
	}
	inserted := <-sent
	if !res.complete || res.stored != 1000 || res.scans != 1 {
		t.Fatalf("complete=%v stored=%d scans=%d, want true 1000 1", res.complete, res.stored, res.scans)
	}
	if res.queryableAt.Before(inserted) {
		t.Fatalf("queryable at %s, before the last rows were sent (%s)", res.queryableAt, inserted)
	}
}

// A poll slower than a fifth of the interval spaces the next one out, so
// that the check takes at most a fifth of the time of what it measures.
func TestPollWaitBoundsThePollsShare(t *testing.T) {
	for _, tt := range []struct{ took, want time.Duration }{
		{10 * time.Millisecond, 250 * time.Millisecond},
		{50 * time.Millisecond, 250 * time.Millisecond},
		{150 * time.Millisecond, 750 * time.Millisecond},
		{2 * time.Second, 10 * time.Second},
	} {
		if got := pollWait(250*time.Millisecond, tt.took); got != tt.want {
			t.Errorf("after a poll of %s: wait %s, want %s", tt.took, got, tt.want)
		}
	}
}

func TestFlagsNameWhatIsWrong(t *testing.T) {
	for args, want := range map[string]string{
		"--verify-schema=elastic": `--verify-schema "elastic": want decisiontrace or otel`,
		"--act-after=-1m":         "--act-after must not be negative",
	} {
		if _, err := parseFlags([]string{args}); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
}

func TestProcMemory(t *testing.T) {
	peak, cur, err := procMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if peak <= 0 || cur <= 0 || cur > peak {
		t.Fatalf("peak %.1f MB, current %.1f MB", peak, cur)
	}
	if _, _, err := procMemory(1 << 30); err == nil {
		t.Fatal("no error for a missing process")
	}
}
