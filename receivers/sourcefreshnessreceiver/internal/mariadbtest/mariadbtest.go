// Package mariadbtest gives integration tests a private MariaDB server:
// Debian's mariadb-server-core and mariadb-client-core binaries (installed with apt-get when missing
// and the tests run as root), a fresh data directory in a temporary
// directory, listening on a free 127.0.0.1 port, root without a password. The
// test may stop and start it again. It mirrors pgtest beside it.
//
// The core packages rather than mariadb-server: the full package also
// creates and starts a system service the tests do not want.
package mariadbtest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

const (
	installTimeout = 10 * time.Minute
	startTimeout   = 90 * time.Second
	stopTimeout    = 60 * time.Second
	serverBin      = "/usr/sbin/mariadbd"
	installDBBin   = "/usr/bin/mariadb-install-db"
	// mariadb-install-db runs my_print_defaults, from mariadb-client-core.
	printDefaultsBin = "/usr/bin/my_print_defaults"
)

// packages hold the server, mariadb-install-db and what it runs.
var packages = []string{"mariadb-server-core", "mariadb-client-core"}

// Server is one private MariaDB server.
type Server struct {
	// DSN reaches the server over TCP as root (no password), in the
	// go-sql-driver/mysql format.
	DSN string
	// Addr is 127.0.0.1:port.
	Addr string
	// Args are extra mariadbd options (e.g. --default-time-zone=+05:00),
	// applied by the next Restart.
	Args []string

	dir  string
	data string
	port int
	mu   sync.Mutex
	cmd  *exec.Cmd
}

var install struct {
	once sync.Once
	err  error
}

// Start creates a data directory and starts a server on it, with extra
// mariadbd options; both are removed when the test ends.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	install.once.Do(func() { install.err = ensureInstalled() })
	if install.err != nil {
		t.Fatalf("mariadbtest: %v", install.err)
	}
	dir, err := os.MkdirTemp("", "mariadbtest-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{dir: dir, data: filepath.Join(dir, "data"), Args: args}
	t.Cleanup(func() {
		s.stop(syscall.SIGKILL)
		_ = os.RemoveAll(dir)
	})
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	// Its own temporary directory: the bootstrap of two servers at once
	// (test packages run in parallel) lost temporary tables in a shared
	// /tmp ("Could not remove temporary table", then "Unknown table").
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatalf("mariadbtest: %v", err)
	}
	init := exec.CommandContext(ctx, installDBBin, "--no-defaults", "--datadir="+s.data, "--user="+currentUser(),
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve", "--tmpdir="+tmp)
	init.WaitDelay = 5 * time.Second
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("mariadbtest: mariadb-install-db: %v\n%s", err, out)
	}
	s.port = testenv.FreePort(t)
	s.Addr = fmt.Sprintf("127.0.0.1:%d", s.port)
	s.DSN = fmt.Sprintf("root@tcp(%s)/", s.Addr)
	s.Restart(t)
	return s
}

// Stop shuts the server down (SIGTERM: a clean shutdown) and waits until it
// has exited.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("mariadbtest: stop: %v", err)
	}
}

// Restart starts the server again on the same port and data (stopping it
// first if it runs) and waits until it answers queries.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	args := append([]string{"--no-defaults", "--datadir=" + s.data, "--user=" + currentUser(),
		"--port=" + fmt.Sprint(s.port), "--bind-address=127.0.0.1", "--socket=" + filepath.Join(s.dir, "mariadbd.sock"),
		"--pid-file=" + filepath.Join(s.dir, "mariadbd.pid"), "--log-error=" + filepath.Join(s.dir, "error.log"),
		"--tmpdir=" + filepath.Join(s.dir, "tmp"),
		"--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
		"--innodb-flush-log-at-trx-commit=0"}, s.Args...)
	// No Wait goroutine: Stop waits, so nothing of ours outlives the server
	// and tests that check for leaked goroutines stay exact.
	cmd := exec.Command(serverBin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("mariadbtest: start mariadbd: %v", err)
	}
	s.cmd = cmd
	if err := s.waitReady(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
		t.Fatalf("mariadbtest: %v\nerror log:\n%s", err, log)
	}
}

func (s *Server) waitReady() error {
	cfg, err := mysql.ParseDSN(s.DSN)
	if err != nil {
		return err
	}
	cfg.Timeout = time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mariadbd not ready after %s: %v", startTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) stop(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	cmd := s.cmd
	s.cmd = nil
	_ = cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return nil
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("mariadbd did not exit within %s of %s; killed", stopTimeout, sig)
	}
}

// ensureInstalled installs mariadb-server-core when its binaries are missing.
func ensureInstalled() error {
	if have() {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("no %s; install it with `sudo apt-get install -y %s`", serverBin, strings.Join(packages, " "))
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	apt := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"-o", "DPkg::Lock::Timeout=300"}, args...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	inst := append([]string{"install", "-y", "-qq"}, packages...)
	if _, err := apt(inst...); err != nil {
		// A stale package index is the usual reason; refresh it once.
		if out, err := apt("update", "-qq"); err != nil {
			return fmt.Errorf("apt-get update: %v\n%s", err, out)
		}
		if out, err := apt(inst...); err != nil {
			return fmt.Errorf("apt-get install %s: %v\n%s", strings.Join(packages, " "), err, out)
		}
	}
	if !have() {
		return fmt.Errorf("apt-get installed %s but %s, %s or %s is missing", strings.Join(packages, " "), serverBin, installDBBin, printDefaultsBin)
	}
	return nil
}

func have() bool {
	for _, p := range []string{serverBin, installDBBin, printDefaultsBin} {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// currentUser is the OS user mariadbd runs as: it refuses root unless told
// so explicitly, and there may be no mysql user (mariadb-server-core does not
// create one).
func currentUser() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return fmt.Sprint(os.Geteuid())
}
