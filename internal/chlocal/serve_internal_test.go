package chlocal

import (
	"bytes"
	"context"
	"errors"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

func TestServerArgs(t *testing.T) {
	got := serverArgs(Options{DataDir: "/d", ListenHost: "127.0.0.1", TCPPort: 1, HTTPPort: 2, LogPath: "/l"})
	want := []string{
		"clickhouse", "--path=/d", "--log-level=information",
		"--query=SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP; " + blockingQuery,
		"--", "--tcp_port=1", "--http_port=2", "--listen_host=127.0.0.1",
		"--background_schedule_pool_size=16", "--background_pool_size=4", "--background_common_pool_size=2",
		"--logger.log=/l",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestEnvWithout(t *testing.T) {
	got := envWithout([]string{"A=1", ServeEnv + "=x", "B=2", ServeEnv + "X=3"}, ServeEnv)
	if !reflect.DeepEqual(got, []string{"A=1", "B=2", ServeEnv + "X=3"}) {
		t.Fatalf("%q", got)
	}
}

func TestStripLowCardinality(t *testing.T) {
	for in, want := range map[string]string{
		"String":                                     "String",
		"LowCardinality(String)":                     "String",
		"Array(LowCardinality(String))":              "Array(String)",
		"Map(LowCardinality(String), String)":        "Map(String, String)",
		"LowCardinality(Nullable(String))":           "Nullable(String)",
		"Tuple(LowCardinality(String), Array(Int8))": "Tuple(String, Array(Int8))",
	} {
		if got := stripLowCardinality(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func TestBridgeStatementShapes(t *testing.T) {
	m := insertData.FindStringSubmatch("INSERT INTO db.events (time, event_id, attrs) FORMAT Native")
	if m == nil || m[1] != "db.events" || m[2] != "time, event_id, attrs" || m[3] != "" || m[4] != "Native" {
		t.Fatalf("%q", m)
	}
	if m := insertData.FindStringSubmatch("INSERT INTO db.t SETTINGS async_insert=1 FORMAT Native"); m == nil || m[1] != "db.t" || m[2] != "" ||
		m[3] != "SETTINGS async_insert=1" || m[4] != "Native" {
		t.Fatalf("%q", m)
	}
	if m := insertData.FindStringSubmatch("insert into t (a) format RowBinary"); m == nil || m[1] != "t" || m[4] != "RowBinary" {
		t.Fatalf("%q", m)
	}
	for _, q := range []string{"INSERT INTO db.t VALUES (1)", "INSERT INTO db.t SELECT 1", "SELECT 'FORMAT Native'", "INSERT INTO db.t SELECT 1 FORMAT Native"} {
		if insertData.MatchString(q) {
			t.Errorf("%s taken for an insert whose data follows", q)
		}
	}
	if m := dropDatabaseSync.FindStringSubmatch("DROP DATABASE IF EXISTS dt_x SYNC"); m == nil || m[1] != "DROP DATABASE IF EXISTS dt_x" {
		t.Fatalf("%q", m)
	}
	if dropDatabaseSync.MatchString("DROP TABLE x SYNC") {
		t.Fatal("DROP TABLE ... SYNC rewritten")
	}
	for q, want := range map[string]bool{"SELECT 1": true, "  (SELECT 1)": true, "WITH 1 AS x SELECT x": true, "CREATE TABLE x": false, "SHOW TABLES": false} {
		if selectLike.MatchString(strings.TrimSpace(q)) != want {
			t.Errorf("%s: select-like %v", q, !want)
		}
	}
}

func TestEngineError(t *testing.T) {
	e := engineError("Code: 60. DB::Exception: Unknown table expression identifier 'b.missing'. (UNKNOWN_TABLE)\n")
	if e.Code != 60 || !strings.HasPrefix(e.Message, "Code: 60.") {
		t.Fatalf("%+v", e)
	}
	if e := engineError("something else"); e.Code != 0 || e.Message != "something else" {
		t.Fatalf("%+v", e)
	}
}

// The bridge reads the engine's Native output block by block and sends
// each, and a block without rows as ClickHouse does: clickhouse-go must
// read them back, LowCardinality columns included.
func TestNativeBlocksRoundTrip(t *testing.T) {
	b := &bridge{tz: time.UTC}
	var out chproto.Buffer
	for _, rows := range []int{3, 2} {
		blk := proto.NewBlock()
		for _, c := range []struct{ name, typ string }{{"id", "UInt64"}, {"name", "LowCardinality(String)"}, {"m", "Map(String, Array(Nullable(Float64)))"}} {
			if err := blk.AddColumn(c.name, column.Type(c.typ)); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < rows; i++ {
			x := float64(i)
			if err := blk.Append(uint64(i), "n", map[string][]*float64{"k": {&x, nil}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := blk.Encode(&out, 0); err != nil {
			t.Fatal(err)
		}
	}
	blocks, err := b.splitNative(out.Buf)
	if err != nil || len(blocks) != 2 || blocks[0].Rows() != 3 || blocks[1].Rows() != 2 {
		t.Fatalf("%d blocks, %v", len(blocks), err)
	}
	if blocks, err := b.splitNative(nil); err != nil || len(blocks) != 0 {
		t.Fatalf("empty output: %d blocks, %v", len(blocks), err)
	}

	empty := proto.NewBlock()
	for _, c := range []struct{ name, typ string }{{"name", "LowCardinality(String)"}, {"id", "UInt64"}} {
		if err := empty.AddColumn(c.name, column.Type(c.typ)); err != nil {
			t.Fatal(err)
		}
	}
	var wire chproto.Buffer
	for _, blk := range []*proto.Block{empty, blocks[1]} {
		if err := encodeBlock(&wire, blk, bridgeRevision); err != nil {
			t.Fatal(err)
		}
	}
	r := chproto.NewReader(bytes.NewReader(wire.Buf))
	for i, want := range []int{0, 2} {
		got := proto.NewBlock()
		if err := got.Decode(r, bridgeRevision); err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		if got.Rows() != want || len(got.Columns) == 0 {
			t.Fatalf("block %d: %d rows, %d columns", i, got.Rows(), len(got.Columns))
		}
	}
}

// A port another process takes between Start's check and the engine's bind
// (another test binary's server, say) is reported as in use, so that Start
// picks other ports: the output of what runs after the failed bind must
// not push that out of sight.
func TestSpawnOnATakenPortSaysAddressInUse(t *testing.T) {
	if _, err := LibPath(); err != nil {
		t.Fatalf("this test needs the embedded ClickHouse engine: %v", err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	http, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	opts, err := FillDefaults(Options{DataDir: t.TempDir(), TCPPort: taken.Addr().(*net.TCPAddr).Port, HTTPPort: http})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := spawn(ctx, opts, false)
	if err == nil {
		_ = s.Stop()
		t.Fatal("the engine started on a port another process holds")
	}
	if !errors.Is(err, errAddrInUse) {
		t.Fatalf("not reported as a port in use: %v", err)
	}
}

// The ports handed to tests' collectors and engines come from below the
// kernel's ephemeral range, which outgoing connections draw from, and are
// free to bind.
func TestFreePortIsBelowTheEphemeralRange(t *testing.T) {
	start := ephemeralStart()
	for range 20 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if start-10000 >= 1000 && (p < 10000 || p >= start) {
			t.Fatalf("port %d: want one in [10000, %d)", p, start)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		_ = l.Close()
	}
}
