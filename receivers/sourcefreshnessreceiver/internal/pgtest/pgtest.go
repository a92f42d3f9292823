// Package pgtest gives integration tests a private PostgreSQL server: Debian's
// postgresql binaries (installed with apt-get when missing and the tests run
// as root), a fresh cluster in a temporary directory, listening on a free
// 127.0.0.1 port with its unix socket in that directory. The test may stop
// and start it again to see how a client lives through an outage.
//
// initdb refuses to run as root, so when the tests run as root the cluster
// and the server belong to the postgres OS user (runuser -u postgres).
package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// Server is one private PostgreSQL server.
type Server struct {
	// DSN reaches the server over TCP as the superuser postgres, without
	// a password (the cluster trusts local connections) and without TLS.
	DSN string
	// Port is the TCP port on 127.0.0.1.
	Port int

	bin     string
	dir     string
	data    string
	owner   string // OS user running initdb and the server; "" for the current one
	mu      sync.Mutex
	running bool
}

const (
	installTimeout = 10 * time.Minute
	ctlTimeout     = 90 * time.Second
)

var install struct {
	once sync.Once
	bin  string
	err  error
}

// Start creates a cluster and starts a server on it; both are removed when
// the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	install.once.Do(func() { install.bin, install.err = binDir() })
	if install.err != nil {
		t.Fatalf("pgtest: %v", install.err)
	}
	// Not t.TempDir: its parent directories are private to the current
	// user, and the postgres user has to reach the cluster directory.
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{bin: install.bin, dir: dir, data: filepath.Join(dir, "data")}
	t.Cleanup(func() {
		s.stop("immediate")
		_ = os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		s.owner = "postgres"
		u, err := user.Lookup(s.owner)
		if err != nil {
			t.Fatalf("pgtest: running as root needs the postgres OS user (created by Debian's postgresql package): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := s.run("initdb", "-D", s.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	s.Port = testenv.FreePort(t)
	s.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port)
	s.Restart(t)
	return s
}

// Stop shuts the server down (fast mode: open connections are cut) and
// waits until it is gone.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return
	}
	if out, err := s.run("pg_ctl", "-D", s.data, "-m", "fast", "-w", "-t", strconv.Itoa(int(ctlTimeout/time.Second)), "stop"); err != nil {
		t.Fatalf("pgtest: pg_ctl stop: %v\n%s", err, out)
	}
	s.running = false
}

// Restart starts the server again on the same port and data (stopping it
// first if it runs) and waits until it accepts connections.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off", s.Port, s.dir)
	out, err := s.run("pg_ctl", "-D", s.data, "-l", filepath.Join(s.dir, "server.log"), "-o", opts,
		"-w", "-t", strconv.Itoa(int(ctlTimeout/time.Second)), "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
		t.Fatalf("pgtest: pg_ctl start: %v\n%s\nserver log:\n%s", err, out, log)
	}
	s.running = true
}

func (s *Server) stop(mode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		_, _ = s.run("pg_ctl", "-D", s.data, "-m", mode, "-w", "stop")
		s.running = false
	}
}

func (s *Server) run(tool string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout+10*time.Second)
	defer cancel()
	name := filepath.Join(s.bin, tool)
	if s.owner != "" {
		args = append([]string{"-u", s.owner, "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = s.dir
	// The postmaster pg_ctl leaves behind keeps no descriptor of ours (it
	// logs to server.log), but do not hang on one if it ever does.
	cmd.WaitDelay = 5 * time.Second
	return cmd.CombinedOutput()
}

// binDir finds the newest /usr/lib/postgresql/<major>/bin, installing
// Debian's postgresql package first when there is none.
func binDir() (string, error) {
	if dir := newestBin(); dir != "" {
		return dir, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; install them with `sudo apt-get install -y postgresql` (or deploy/local/install-deps.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	apt := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"-o", "DPkg::Lock::Timeout=300"}, args...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	if _, err := apt("install", "-y", "-qq", "postgresql"); err != nil {
		// A stale package index is the usual reason; refresh it once.
		if out, err := apt("update", "-qq"); err != nil {
			return "", fmt.Errorf("apt-get update: %v\n%s", err, out)
		}
		if out, err := apt("install", "-y", "-qq", "postgresql"); err != nil {
			return "", fmt.Errorf("apt-get install postgresql: %v\n%s", err, out)
		}
	}
	if dir := newestBin(); dir != "" {
		return dir, nil
	}
	return "", fmt.Errorf("apt-get installed postgresql but no /usr/lib/postgresql/*/bin/pg_ctl exists")
}

func newestBin() string {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	sort.Slice(found, func(i, j int) bool {
		return major(found[i]) > major(found[j])
	})
	for _, f := range found {
		dir := filepath.Dir(f)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir
		}
	}
	return ""
}

func major(pgCtl string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(pgCtl))))
	return n
}
