// Package testenv gives integration tests a real ClickHouse: an external
// server named by DECISIONTRACE_TEST_CLICKHOUSE_ADDR, or else the embedded
// engine (internal/chlocal) in a child process, shared by the test binary.
//
// A test package that uses it must have
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// because the embedded server is the test binary itself, re-executed.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/decisiontrace/decisiontrace/internal/chlocal"
)

// Environment variables naming an external ClickHouse for the tests.
const (
	AddrEnv     = "DECISIONTRACE_TEST_CLICKHOUSE_ADDR"
	UserEnv     = "DECISIONTRACE_TEST_CLICKHOUSE_USER"
	PasswordEnv = "DECISIONTRACE_TEST_CLICKHOUSE_PASSWORD"
)

const startTimeout = 2 * time.Minute

const howToFix = "run `go run ./cmd/dtlocal fetch` once to download the embedded ClickHouse engine " +
	"(or set DECISIONTRACE_LIBCHDB to a libchdb.so), or set " + AddrEnv + "=host:9000 to use a running ClickHouse server"

// mainCalled tells whether the test binary runs testenv.Main: without it the
// embedded server (this binary, re-executed) would run the tests instead of
// serving.
var mainCalled bool

const needMain = "testenv: this package's tests need `func TestMain(m *testing.M) { testenv.Main(m) }` " +
	"(the embedded ClickHouse server is the test binary itself, re-executed)"

var shared struct {
	once sync.Once
	srv  *chlocal.Server
	dir  string
	err  error
}

// Main is the TestMain of packages that use this one: it serves ClickHouse
// when the binary was started as the embedded server, and stops the shared
// server once the tests are done.
func Main(m *testing.M) {
	chlocal.ServeIfChild()
	mainCalled = true
	code := m.Run()
	stopShared()
	os.Exit(code)
}

func stopShared() {
	if shared.srv != nil {
		select {
		case <-shared.srv.Done():
			// It died under the tests: its last words, before its
			// directory goes.
			if log, err := os.ReadFile(shared.srv.Options().LogPath); err == nil {
				if len(log) > 8000 {
					log = log[len(log)-8000:]
				}
				fmt.Fprintf(os.Stderr, "testenv: the shared embedded ClickHouse (pid %d) exited during the tests; the end of its log:\n%s\n", shared.srv.PID(), log)
			}
		default:
		}
		_ = shared.srv.Stop()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
}

// ClickHouse returns the native-protocol host:port of a ClickHouse server for
// tests. Tests share it, so each should use its own database.
func ClickHouse(t testing.TB) string {
	t.Helper()
	if addr := os.Getenv(AddrEnv); addr != "" {
		return addr
	}
	if !mainCalled {
		t.Fatal(needMain)
	}
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "decisiontrace-test-clickhouse-")
		if shared.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		shared.srv, shared.err = chlocal.Start(ctx, chlocal.Options{DataDir: shared.dir})
	})
	if shared.err != nil {
		t.Fatalf("testenv: no ClickHouse for this test: %v\n%s", shared.err, howToFix)
	}
	select {
	case <-shared.srv.Done():
		t.Fatalf("testenv: the shared embedded ClickHouse (pid %d) has exited; see %s", shared.srv.PID(), shared.srv.Options().LogPath)
	default:
	}
	return shared.srv.TCPAddr()
}

// ClickHouseAuth is the user and password for the server ClickHouse returns.
func ClickHouseAuth() (user, pass string) {
	if os.Getenv(AddrEnv) != "" {
		user = os.Getenv(UserEnv)
		if user == "" {
			user = "default"
		}
		return user, os.Getenv(PasswordEnv)
	}
	return "default", ""
}

// NewClickHouse starts a private embedded server on dataDir (a new temporary
// directory when empty) that the test may Stop and start again with
// chlocal.Start(ctx, srv.Options()). It is stopped when the test ends.
func NewClickHouse(t testing.TB, dataDir string) *chlocal.Server {
	t.Helper()
	if !mainCalled {
		t.Fatal(needMain)
	}
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	srv, err := chlocal.Start(ctx, chlocal.Options{DataDir: dataDir})
	if err != nil {
		t.Fatalf("testenv: start embedded ClickHouse: %v\n%s", err, howToFix)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return srv
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := chlocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// String describes where the tests' ClickHouse comes from, for logs.
func String() string {
	if addr := os.Getenv(AddrEnv); addr != "" {
		return fmt.Sprintf("external ClickHouse at %s", addr)
	}
	return "embedded ClickHouse (internal/chlocal)"
}

// Conn opens a connection to the ClickHouse at addr (host:port of the
// native protocol) with the tests' credentials; it is closed when the test
// ends.
func Conn(t testing.TB, addr string) driver.Conn {
	t.Helper()
	user, pass := ClickHouseAuth()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Username: user, Password: pass}})
	if err != nil {
		t.Fatalf("testenv: open %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Database names a database of its own for a test, prefix_<random>, on the
// ClickHouse at addr, and drops it with everything in it when the test
// ends. It creates nothing: the test, or the component under test, does.
func Database(t testing.TB, addr, prefix string) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	db := prefix + "_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		user, pass := ClickHouseAuth()
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Username: user, Password: pass}})
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" SYNC")
	})
	return db
}
