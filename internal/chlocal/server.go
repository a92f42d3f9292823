package chlocal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultStartTimeout bounds Start when ctx has no deadline: loading the
// library and opening the listeners takes about 2 s, so a minute means
// something is wrong, and tests must not hang on it.
const DefaultStartTimeout = 2 * time.Minute

// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const StopTimeout = 10 * time.Second

// Server is a running embedded ClickHouse child process.
type Server struct {
	opts Options
	cmd  *exec.Cmd
	log  *os.File

	done    chan struct{} // closed when the child has exited
	waitErr error         // set before done is closed

	stopOnce sync.Once
	stopErr  error
}

// Start spawns the current executable as an embedded ClickHouse server (see
// ServeIfChild) and returns once it answers on both HTTP and native TCP.
// Zero ports are replaced by free ones; Options() reports what was chosen, so
// Start(ctx, s.Options()) after s.Stop() brings back the same server.
func Start(ctx context.Context, opts Options) (*Server, error) {
	return start(ctx, opts, false)
}

// StartDetached is Start for a server that must outlive the caller: the child
// runs in its own session, is not killed when the caller dies, and keeps
// running after the caller exits. The caller may still Stop it.
func StartDetached(ctx context.Context, opts Options) (*Server, error) {
	return start(ctx, opts, true)
}

// TCPAddr is the native-protocol address, e.g. "127.0.0.1:9000".
func (s *Server) TCPAddr() string {
	return net.JoinHostPort(s.opts.ListenHost, strconv.Itoa(s.opts.TCPPort))
}

// HTTPURL is the HTTP interface, e.g. "http://127.0.0.1:8123".
func (s *Server) HTTPURL() string {
	return "http://" + net.JoinHostPort(s.opts.ListenHost, strconv.Itoa(s.opts.HTTPPort))
}

// Options are the effective options, with defaults and chosen ports filled.
func (s *Server) Options() Options { return s.opts }

// PID is the child's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Done is closed when the child has exited, for whatever reason.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop sends SIGTERM (a clean shutdown), waits up to StopTimeout, then
// SIGKILLs. Later calls return the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	defer s.log.Close()
	select {
	case <-s.done:
		return fmt.Errorf("chlocal: server (pid %d) had already exited: %v%s", s.PID(), s.waitErr, s.logTail())
	default:
	}
	// The child leads its own process group; signal the group so nothing it
	// might have spawned is left behind.
	_ = syscall.Kill(-s.PID(), syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(StopTimeout):
	}
	_ = syscall.Kill(-s.PID(), syscall.SIGKILL)
	<-s.done
	return nil
}

func (s *Server) logTail() string {
	return tail(s.opts.LogPath, 0)
}

// FillDefaults returns opts with the defaults Start would use, except for
// ports: LibPath from LibPath(), ListenHost 127.0.0.1, LogPath in DataDir.
func FillDefaults(opts Options) (Options, error) {
	if opts.DataDir == "" {
		return opts, errors.New("chlocal: Options.DataDir is required")
	}
	abs, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return opts, err
	}
	opts.DataDir = abs
	if opts.ListenHost == "" {
		opts.ListenHost = "127.0.0.1"
	}
	if opts.LibPath == "" {
		p, err := LibPath()
		if err != nil {
			return opts, err
		}
		opts.LibPath = p
	}
	if opts.LogPath == "" {
		opts.LogPath = filepath.Join(opts.DataDir, "clickhouse.log")
	}
	return opts, nil
}

func start(ctx context.Context, opts Options, detached bool) (*Server, error) {
	if _, ok := os.LookupEnv(ServeEnv); ok {
		// Only a child whose binary skipped ServeIfChild gets here; without
		// this it would spawn children of its own, forever.
		return nil, fmt.Errorf("chlocal: %s is set but this binary did not call chlocal.ServeIfChild() first thing in main/TestMain", ServeEnv)
	}
	opts, err := FillDefaults(opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(opts.LogPath), 0o755); err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultStartTimeout)
		defer cancel()
	}
	pickTCP, pickHTTP := opts.TCPPort == 0, opts.HTTPPort == 0

	var lastErr error
	for attempt := 1; ; attempt++ {
		if pickTCP {
			if opts.TCPPort, err = FreePort(); err != nil {
				return nil, err
			}
		}
		if pickHTTP {
			if opts.HTTPPort, err = FreePort(); err != nil {
				return nil, err
			}
		}
		// A server stopped a moment ago may still hold its ports while the
		// kernel tears the process down; wait for them rather than have
		// the child fail to bind (or, worse, find another server there).
		if err := waitPortsFree(ctx, opts); err != nil {
			return nil, err
		}
		s, err := spawn(ctx, opts, detached)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil || !errors.Is(err, errAddrInUse) || attempt >= 20 {
			return nil, lastErr
		}
		select {
		case <-ctx.Done():
			return nil, lastErr
		case <-time.After(250 * time.Millisecond):
		}
	}
}

var errAddrInUse = errors.New("address already in use")

func spawn(ctx context.Context, opts Options, detached bool) (*Server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("chlocal: find own executable: %w", err)
	}
	enc, err := json.Marshal(opts)
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(opts.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("chlocal: open log: %w", err)
	}
	logStart, _ := logf.Seek(0, io.SeekEnd)

	cmd := exec.Command(exe)
	cmd.Dir = opts.DataDir
	cmd.Env = append(envWithout(os.Environ(), ServeEnv), ServeEnv+"="+string(enc))
	cmd.Stdout, cmd.Stderr = logf, logf
	if detached {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		// Nobody watches a detached server: it restarts itself.
		cmd.Env = append(cmd.Env, SuperviseEnv+"=1")
	} else {
		// Pdeathsig: a test binary that dies (panic, timeout, SIGKILL) must
		// not leave a 300 MB server behind.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("chlocal: start %s: %w", exe, err)
	}
	s := &Server{opts: opts, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()

	err = waitReady(ctx, opts, s.done)
	if err == nil {
		return s, nil
	}
	select {
	case <-s.done:
		logf.Close()
		err = fmt.Errorf("chlocal: server exited during start-up (%v); log %s:%s", s.waitErr, opts.LogPath, tail(opts.LogPath, logStart))
		// The whole start-up's output, not the tail: after a failed bind
		// the engine is retried as the bridge, whose own errors fill the
		// tail.
		if logHas(opts.LogPath, logStart, "ddress already in use") {
			err = fmt.Errorf("%w: %w", errAddrInUse, err)
		}
		return nil, err
	default:
	}
	_ = s.Stop()
	return nil, fmt.Errorf("chlocal: server did not become ready: %v; log %s:%s", err, opts.LogPath, tail(opts.LogPath, logStart))
}

func waitReady(ctx context.Context, opts Options, died <-chan struct{}) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = Healthy(ctx, opts); last == nil {
			select {
			case <-died:
				return errors.New("exited")
			default:
				return nil
			}
		}
		select {
		case <-died:
			return errors.New("exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last check: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// Healthy reports whether a server answers `GET /ping` with "Ok." on
// HTTPPort and accepts native-protocol connections on TCPPort.
func Healthy(ctx context.Context, opts Options) error {
	host := opts.ListenHost
	if host == "" {
		host = "127.0.0.1"
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, strconv.Itoa(opts.HTTPPort)) + "/ping"
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(bytes.TrimSpace(body), []byte("Ok.")) {
		return fmt.Errorf("GET %s: %s %q", url, resp.Status, body)
	}
	var d net.Dialer
	c, err := d.DialContext(cctx, "tcp", net.JoinHostPort(host, strconv.Itoa(opts.TCPPort)))
	if err != nil {
		return err
	}
	return c.Close()
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago,
// picked at random below the kernel's ephemeral range where there is room.
// A port the kernel picks (port 0) is one it also gives the outgoing
// connections of every other process: in a test run full of them (each
// package's binary connecting to ClickHouse) one takes it between this
// check and the bind of whoever asked, and a collector under test fails to
// start with "address already in use".
func FreePort() (int, error) {
	if lo, hi := 10000, ephemeralStart(); hi-lo >= 1000 {
		for range 100 {
			p := lo + rand.IntN(hi-lo)
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				continue
			}
			_ = l.Close()
			return p, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("chlocal: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralStart is the first port of the kernel's ephemeral range
// (Linux's default where it cannot be read).
func ephemeralStart() int {
	var p int
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		_, err = fmt.Sscan(string(b), &p)
	}
	if err != nil {
		return 32768
	}
	return p
}

func waitPortsFree(ctx context.Context, opts Options) error {
	for {
		err := portsFree(opts)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chlocal: %w (another server, or one still shutting down, holds the port)", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// portsFree binds both ports the way the server will. Go sets SO_REUSEADDR,
// as ClickHouse does, so sockets in TIME_WAIT do not count as busy.
func portsFree(opts Options) error {
	for _, p := range []int{opts.TCPPort, opts.HTTPPort} {
		l, err := net.Listen("tcp", net.JoinHostPort(opts.ListenHost, strconv.Itoa(p)))
		if err != nil {
			return err
		}
		l.Close()
	}
	return nil
}

func envWithout(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// tail returns the last lines of the log written since offset, indented for
// an error message.
// logHas says whether what the log gained from offset on (at most a few
// MB: one start-up's output) contains s.
func logHas(path string, offset int64, s string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(io.NewSectionReader(f, offset, 1<<62), 4<<20))
	return err == nil && strings.Contains(string(b), s)
}

func tail(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 4096
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return ""
	}
	from := max64(offset, end-max)
	buf := make([]byte, end-from)
	n, _ := f.ReadAt(buf, from)
	lines := strings.Split(strings.TrimRight(string(buf[:n]), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return " (empty)"
	}
	return "\n\t" + strings.Join(lines, "\n\t")
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
