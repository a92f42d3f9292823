package chlocal_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/decisiontrace/decisiontrace/internal/chlocal"
)

// TestBridgeServesClickHouseGo drives the bridge (which engines before chDB
// 26.7 are served through) with clickhouse-go's native protocol the way
// decisiontrace does: DDL, batches with settings and the types the schema
// uses, results of many blocks and of none, errors, and plain HTTP. It runs
// on whatever engine the tests use, forced through the bridge.
func TestBridgeServesClickHouseGo(t *testing.T) {
	if _, err := chlocal.LibPath(); err != nil {
		t.Fatalf("this test needs the embedded ClickHouse engine: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	// What a bridge killed during an insert leaves behind goes at start.
	stale := filepath.Join(dir, ".bridge-insert-123")
	if err := os.WriteFile(stale, []byte("rows"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := chlocal.Start(ctx, chlocal.Options{DataDir: dir, Bridge: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("a stale insert file survived the start: %v", err)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{s.TCPAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		t.Fatal(err)
	}
	t.Logf("ClickHouse %s through the bridge", version)
	exec := func(q string, args ...any) {
		t.Helper()
		if err := conn.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE DATABASE IF NOT EXISTS b")
	exec(`CREATE TABLE b.t (
    id UInt64,
    ts DateTime64(9),
    name LowCardinality(String),
    score Nullable(Float64),
    tags Array(LowCardinality(String)),
    attrs Map(LowCardinality(String), String),
    pair Tuple(DateTime64(9), Nullable(Float64)),
    ok Nullable(Bool),
    note String DEFAULT 'none',
    later String MATERIALIZED 'm'
) ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 100`)

	// A batch with settings, as the store sends its events.
	at := time.Date(2026, 1, 5, 10, 0, 0, 123456789, time.UTC)
	one := 0.5
	yes := true
	insert := func(token string, n int) {
		t.Helper()
		bctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
			"insert_deduplication_token":             token,
			"low_cardinality_allow_in_native_format": 0,
		}))
		batch, err := conn.PrepareBatch(bctx, "INSERT INTO b.t (id, ts, name, score, tags, attrs, pair, ok)")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			var score *float64
			if i%2 == 0 {
				score = &one
			}
			if err := batch.Append(uint64(i), at.Add(time.Duration(i)*time.Second), fmt.Sprintf("n%d", i%3), score,
				[]string{"a", "b"}, map[string]string{"k": fmt.Sprint(i)}, []any{at, score}, &yes); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
	}
	insert("tok-1", 10)
	insert("tok-1", 10) // deduplicated by the token, as on a real server
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM b.t").Scan(&n); err != nil || n != 10 {
		t.Fatalf("count = %d, %v", n, err)
	}
	// The settings were for that insert only.
	var token string
	if err := conn.QueryRow(ctx, "SELECT getSetting('insert_deduplication_token')").Scan(&token); err != nil || token != "" {
		t.Fatalf("token leaked into the session: %q, %v", token, err)
	}

	// Values come back as sent.
	var (
		ts    time.Time
		name  string
		score *float64
		tags  []string
		attrs map[string]string
		note  string
	)
	if err := conn.QueryRow(ctx, "SELECT ts, name, score, tags, attrs, note FROM b.t WHERE id = 4").Scan(&ts, &name, &score, &tags, &attrs, &note); err != nil {
		t.Fatal(err)
	}
	if !ts.Equal(at.Add(4*time.Second)) || name != "n1" || score == nil || *score != 0.5 || strings.Join(tags, ",") != "a,b" || attrs["k"] != "4" || note != "none" {
		t.Fatalf("row 4: %v %q %v %v %v %q", ts, name, score, tags, attrs, note)
	}

	// Rows whose bytes hold a blank line, a semicolon and CRLF arrive whole:
	// inline after FORMAT Native the engine cut them at the first "\n\n"
	// (an event id with two 0x0a bytes failed one store test in twenty).
	exec("CREATE TABLE b.raw (id UInt64, name LowCardinality(String), score Nullable(Float64), tags Array(String)) ENGINE = MergeTree ORDER BY id")
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO b.raw")
	if err != nil {
		t.Fatal(err)
	}
	odd := "a\n\nb;\r\n"
	for _, id := range []uint64{0x0a0a, 0x0a0a0a0a0a0a0a0a, 0x0d0a0d0a3b0a0a00} {
		if err := batch.Append(id, odd, nil, []string{"\n\n", odd}); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Append(uint64(1), "after", &one, []string{}); err != nil {
		t.Fatal(err)
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("insert of rows holding blank lines: %v", err)
	}
	var got string
	if err := conn.QueryRow(ctx, "SELECT arrayStringConcat(groupArray(concat(toString(id), '=', name, '/', arrayStringConcat(tags, ','), '/', ifNull(toString(score), 'null'))), '|') FROM (SELECT * FROM b.raw ORDER BY id)").Scan(&got); err != nil {
		t.Fatal(err)
	}
	want := "1=after//0.5|2570=" + odd + "/\n\n," + odd + "/null|723401728380766730=" + odd + "/\n\n," + odd + "/null|939577809851517440=" + odd + "/\n\n," + odd + "/null"
	if got != want {
		t.Fatalf("rows holding blank lines came back as\n%q, want\n%q", got, want)
	}

	// Every insert's file is gone once it is stored.
	if left, _ := filepath.Glob(filepath.Join(dir, ".bridge-insert-*")); len(left) > 0 {
		t.Fatalf("insert files left behind: %v", left)
	}

	// Scalars the store reads.
	var now time.Time
	if err := conn.QueryRow(ctx, "SELECT now64(3)").Scan(&now); err != nil || time.Since(now) > time.Minute {
		t.Fatalf("now64(3) = %v, %v", now, err)
	}

	// A result of many blocks.
	rows, err := conn.Query(ctx, "SELECT number FROM numbers(100000) SETTINGS max_block_size = 1000")
	if err != nil {
		t.Fatal(err)
	}
	var sum, count uint64
	for rows.Next() {
		var v uint64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		sum += v
		count++
	}
	if err := rows.Err(); err != nil || count != 100000 || sum != 99999*100000/2 {
		t.Fatalf("numbers: %d rows, sum %d, %v", count, sum, err)
	}
	rows.Close()

	// What a query read reaches the client as ClickHouse's progress
	// does: the rules count the rows their queries read from it.
	var readRows uint64
	withProgress := clickhouse.Context(ctx, clickhouse.WithProgress(func(p *clickhouse.Progress) { readRows += p.Rows }))
	if err := conn.QueryRow(withProgress, "SELECT countIf(score IS NULL) FROM b.t").Scan(&n); err != nil {
		t.Fatalf("count with progress: %v", err)
	}
	if readRows != 10 {
		t.Fatalf("progress: %d rows read, want the table's 10", readRows)
	}

	// A result without rows still has its columns.
	rows, err = conn.Query(ctx, "SELECT id, name, pair FROM b.t WHERE id > 1000")
	if err != nil {
		t.Fatal(err)
	}
	if cols := rows.Columns(); strings.Join(cols, ",") != "id,name,pair" {
		t.Fatalf("columns of an empty result: %v", cols)
	}
	if rows.Next() {
		t.Fatal("rows from an empty result")
	}
	rows.Close()

	// Errors carry ClickHouse's code and message.
	err = conn.Exec(ctx, "SELECT * FROM b.missing")
	if err == nil || !strings.Contains(err.Error(), "code: 60") || !strings.Contains(err.Error(), "b.missing") {
		t.Fatalf("error = %v", err)
	}
	// ...and the connection goes on.
	if err := conn.QueryRow(ctx, "SELECT count() FROM b.t").Scan(&n); err != nil || n != 10 {
		t.Fatalf("after an error: %d, %v", n, err)
	}

	// DROP DATABASE ... SYNC returns (chDB 26.5's session alone never does).
	exec("CREATE DATABASE gone")
	exec("CREATE TABLE gone.x (a UInt8) ENGINE = MergeTree ORDER BY a")
	exec("DROP DATABASE gone SYNC")
	var exists uint8
	if err := conn.QueryRow(ctx, "EXISTS DATABASE gone").Scan(&exists); err != nil || exists != 0 {
		t.Fatalf("EXISTS DATABASE gone = %d, %v", exists, err)
	}

	// Plain HTTP, as curl and the health check use it.
	if got := query(t, s.HTTPURL(), "SELECT count() FROM b.t"); got != "10" {
		t.Fatalf("HTTP: %q", got)
	}
	// An HTTP insert's body arrives whole, blank lines and all.
	var body []byte
	for _, id := range []uint64{0x0a0a0a0a0a0a0a0a, 7} {
		body = binary.LittleEndian.AppendUint64(body, id)
		body = append(body, byte(len(odd)))
		body = append(body, odd...)
	}
	resp, err := http.Post(s.HTTPURL()+"/?query="+url.QueryEscape("INSERT INTO b.raw (id, name) FORMAT RowBinary"), "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP insert: %s: %s", resp.Status, msg)
	}
	if got := query(t, s.HTTPURL(), "SELECT count(), countIf(name = '"+strings.ReplaceAll(strings.ReplaceAll(odd, "\n", `\n`), "\r", `\r`)+"') FROM b.raw WHERE id IN (7, 723401728380766730) AND score IS NULL"); got != "3\t3" {
		t.Fatalf("HTTP insert: rows %q, want 3 (one sent over the native protocol before)", got)
	}
}
