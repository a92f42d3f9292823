package chlocal_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/rs/zerolog"

	"github.com/decisiontrace/decisiontrace/internal/chlocal"
)

func TestMain(m *testing.M) { chlocal.ServeIfChild(); os.Exit(m.Run()) }

func TestHome(t *testing.T) {
	t.Setenv(chlocal.HomeEnv, "/x/y")
	if got := chlocal.Home(); got != "/x/y" {
		t.Fatalf("Home() = %q", got)
	}
	t.Setenv(chlocal.HomeEnv, "")
	t.Setenv("HOME", "/home/u")
	if got := chlocal.Home(); got != "/home/u/.decisiontrace" {
		t.Fatalf("Home() = %q", got)
	}
}

func TestLibPathMissingSaysHowToFetch(t *testing.T) {
	t.Setenv(chlocal.HomeEnv, t.TempDir())
	t.Setenv(chlocal.LibEnv, "")
	_, err := chlocal.LibPath()
	if !errors.Is(err, chlocal.ErrNoLibrary) || !strings.Contains(err.Error(), "dtlocal fetch") {
		t.Fatalf("err = %v", err)
	}
	t.Setenv(chlocal.LibEnv, "/nonexistent/libchdb.so")
	if _, err := chlocal.LibPath(); !errors.Is(err, chlocal.ErrNoLibrary) {
		t.Fatalf("err = %v", err)
	}
}

func TestLibPathFromHome(t *testing.T) {
	home := t.TempDir()
	t.Setenv(chlocal.HomeEnv, home)
	t.Setenv(chlocal.LibEnv, "")
	p := chlocal.HomeLibPath(home)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := chlocal.LibPath()
	if err != nil || got != p {
		t.Fatalf("LibPath() = %q, %v", got, err)
	}
}

func TestFillDefaults(t *testing.T) {
	t.Setenv(chlocal.LibEnv, "/dev/null")
	if _, err := chlocal.FillDefaults(chlocal.Options{}); err == nil {
		t.Fatal("DataDir must be required")
	}
	o, err := chlocal.FillDefaults(chlocal.Options{DataDir: "rel"})
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(o.DataDir) || o.ListenHost != "127.0.0.1" || o.LibPath != "/dev/null" ||
		o.LogPath != filepath.Join(o.DataDir, "clickhouse.log") {
		t.Fatalf("%+v", o)
	}
}

// writeTarball writes a fake npm tarball of the engine into home's cache.
func writeTarball(t *testing.T, home, version, lib string) {
	t.Helper()
	cache := filepath.Join(home, "cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(cache, "chdb-lib-linux-x64-gnu-"+version+".tgz"))
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for name, body := range map[string]string{"package/README.md": "readme", "package/libchdb.so": lib} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []io.Closer{tw, zw, f} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Fetch with a cached tarball must extract without calling npm.
func TestFetchFromCachedTarball(t *testing.T) {
	home := t.TempDir()
	writeTarball(t, home, "26.7.3-stable.1", "ELF...")
	t.Setenv("PATH", "") // no npm: must not be needed
	p, err := chlocal.Fetch(context.Background(), home, nopLog)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "ELF..." || p != chlocal.HomeLibPath(home) {
		t.Fatalf("%s: %q %v", p, b, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

// Another engine version goes beside the default one, from its own
// cached tarball, and leaves the default alone.
func TestFetchEngineVersionBesideTheDefault(t *testing.T) {
	home := t.TempDir()
	writeTarball(t, home, "26.5.0", "old engine")
	t.Setenv("PATH", "")
	p, err := chlocal.FetchEngine(context.Background(), home, "26.5.0", nopLog)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home, "lib", "26.5.0", "libchdb.so"); p != want || p != chlocal.EngineLibPath(home, "26.5.0") {
		t.Fatalf("path %s, want %s", p, want)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "old engine" {
		t.Fatalf("%q %v", b, err)
	}
	if _, err := os.Stat(chlocal.HomeLibPath(home)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the default engine appeared: %v", err)
	}
	// Installed: a second fetch needs neither npm nor the tarball.
	if err := os.RemoveAll(filepath.Join(home, "cache")); err != nil {
		t.Fatal(err)
	}
	if p2, err := chlocal.FetchEngine(context.Background(), home, "26.5.0", nopLog); err != nil || p2 != p {
		t.Fatalf("second fetch: %s, %v", p2, err)
	}
	if chlocal.EngineLibPath(home, "") != chlocal.HomeLibPath(home) || chlocal.EngineLibPath(home, chlocal.DefaultEngine) != chlocal.HomeLibPath(home) {
		t.Fatal("the default engine has its own path")
	}
}

func TestFetchEngineRejectsWhatIsNotAVersion(t *testing.T) {
	t.Setenv("PATH", "")
	for _, v := range []string{"latest", "26.5", "../26.5.0", "26.5.0/x", "26.5.0 --registry=http://x", "@chdb/lib-linux-x64-gnu@26.5.0"} {
		_, err := chlocal.FetchEngine(context.Background(), t.TempDir(), v, nopLog)
		if err == nil || !strings.Contains(err.Error(), "is not a version of "+chlocal.PackageName) {
			t.Errorf("%q: err = %v", v, err)
		}
	}
}

func TestFetchWithoutNPM(t *testing.T) {
	t.Setenv("PATH", "")
	_, err := chlocal.Fetch(context.Background(), t.TempDir(), nopLog)
	if err == nil || !strings.Contains(err.Error(), "npm") {
		t.Fatalf("err = %v", err)
	}
}

func TestStartWithoutLibrarySaysHowToFetch(t *testing.T) {
	t.Setenv(chlocal.HomeEnv, t.TempDir())
	t.Setenv(chlocal.LibEnv, "")
	_, err := chlocal.Start(context.Background(), chlocal.Options{DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "dtlocal fetch") {
		t.Fatalf("err = %v", err)
	}
}

// TestServerPersistsAcrossRestart is the real thing: a ClickHouse server in a
// child process, a MergeTree table in an Atomic database, a stop and a start
// on the same data directory and ports, and the row still there.
func TestServerPersistsAcrossRestart(t *testing.T) {
	if _, err := chlocal.LibPath(); err != nil {
		t.Fatalf("this test needs the embedded ClickHouse engine: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()

	began := time.Now()
	s, err := chlocal.Start(ctx, chlocal.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	t.Logf("started pid %d in %v, tcp %s, http %s", s.PID(), time.Since(began), s.TCPAddr(), s.HTTPURL())
	if s.Options().TCPPort == 0 || s.Options().HTTPPort == 0 {
		t.Fatalf("ports not filled: %+v", s.Options())
	}

	if v := query(t, s.HTTPURL(), "SELECT version()"); !strings.HasPrefix(v, "26.") {
		t.Fatalf("version %q", v)
	}
	query(t, s.HTTPURL(), "CREATE DATABASE IF NOT EXISTS keep")
	query(t, s.HTTPURL(), "CREATE TABLE keep.t (id UInt64, ts DateTime64(9), attrs Map(String, String)) ENGINE = MergeTree ORDER BY id")
	query(t, s.HTTPURL(), "INSERT INTO keep.t VALUES (42, now64(9), map('k', 'v'))")
	if rss, err := rssKB(s.PID()); err == nil {
		t.Logf("child RSS %d MB", rss/1024)
	}

	began = time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped in %v", time.Since(began))
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := chlocal.Healthy(ctx, s.Options()); err == nil {
		t.Fatal("still answering after Stop")
	}

	began = time.Now()
	s2, err := chlocal.Start(ctx, s.Options())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Stop() })
	t.Logf("restarted in %v", time.Since(began))
	if s2.TCPAddr() != s.TCPAddr() || s2.HTTPURL() != s.HTTPURL() {
		t.Fatalf("restart moved: %s %s", s2.TCPAddr(), s2.HTTPURL())
	}
	if got := query(t, s2.HTTPURL(), "SELECT id, attrs['k'] FROM keep.t FORMAT TSV"); got != "42\tv" {
		t.Fatalf("after restart: %q", got)
	}
}

// A second server on ports that are taken must fail with the log, not hang
// and not mistake the first server for itself.
func TestStartOnBusyPortFails(t *testing.T) {
	if _, err := chlocal.LibPath(); err != nil {
		t.Fatalf("this test needs the embedded ClickHouse engine: %v", err)
	}
	s, err := chlocal.Start(context.Background(), chlocal.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	o := s.Options()
	o.DataDir, o.LogPath = t.TempDir(), ""
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if s2, err := chlocal.Start(ctx, o); err == nil {
		s2.Stop()
		t.Fatal("second server on the same ports started")
	} else {
		t.Logf("as expected: %v", err)
	}
}

func query(t *testing.T, url, sql string) string {
	t.Helper()
	resp, err := http.Post(url, "text/plain", strings.NewReader(sql))
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s: %s", sql, resp.Status, b)
	}
	return strings.TrimSpace(string(b))
}

func rssKB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var kb int
			_, err := fmt.Sscanf(strings.TrimPrefix(l, "VmRSS:"), "%d", &kb)
			return kb, err
		}
	}
	return 0, errors.New("no VmRSS")
}

var nopLog = zerolog.Nop()

// The embedded engine aborts when a client logs in over the native
// protocol with a wrong password. A detached server (the local stack's)
// is supervised: it is back, with its data, and the restart is recorded;
// a stop is not mistaken for a crash.
func TestDetachedServerRestartsAfterTheEngineCrashes(t *testing.T) {
	if _, err := chlocal.LibPath(); err != nil {
		t.Fatalf("this test needs the embedded ClickHouse engine: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := chlocal.StartDetached(ctx, chlocal.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	query(t, s.HTTPURL(), "CREATE TABLE default.kept (id UInt64) ENGINE = MergeTree ORDER BY id")
	query(t, s.HTTPURL(), "INSERT INTO default.kept VALUES (7)")

	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{s.TCPAddr()}, Auth: clickhouse.Auth{Username: "default", Password: "wrong"}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	_ = conn.Close()

	deadline := time.Now().Add(90 * time.Second)
	for len(chlocal.Restarts(s.Options())) == 0 || chlocal.Healthy(ctx, s.Options()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not back within 90 s; restarts %q; log:%s", chlocal.Restarts(s.Options()), tailOf(s.Options().LogPath))
		}
		time.Sleep(200 * time.Millisecond)
	}
	restarts := chlocal.Restarts(s.Options())
	if len(restarts) != 1 || !strings.Contains(restarts[0], "aborted") {
		t.Fatalf("restarts recorded: %q", restarts)
	}
	if got := query(t, s.HTTPURL(), "SELECT id FROM default.kept FORMAT TSV"); got != "7" {
		t.Fatalf("after the restart: %q", got)
	}
	select {
	case <-s.Done():
		t.Fatal("the supervisor itself exited")
	default:
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := chlocal.Healthy(ctx, s.Options()); err == nil {
		t.Fatal("answering after Stop: a stop was taken for a crash")
	}
	if got := chlocal.Restarts(s.Options()); len(got) != 1 {
		t.Fatalf("restarts after Stop: %q", got)
	}
}

func tailOf(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\n" + string(b)
}
