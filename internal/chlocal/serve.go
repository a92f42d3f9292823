package chlocal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ServeIfChild turns the process into an embedded ClickHouse server when it
// was started by Start (ServeEnv holds the Options) and never returns then.
// Otherwise it returns at once.
func ServeIfChild() {
	raw, ok := os.LookupEnv(ServeEnv)
	if !ok {
		return
	}
	// Anything the server might spawn must not become a server too.
	_ = os.Unsetenv(ServeEnv)
	var opts Options
	if err := json.Unmarshal([]byte(raw), &opts); err != nil {
		fmt.Fprintf(os.Stderr, "chlocal: bad %s: %v\n", ServeEnv, err)
		os.Exit(2)
	}
	if _, ok := os.LookupEnv(SuperviseEnv); ok {
		os.Exit(supervise(raw, opts))
	}
	if err := Serve(opts); err != nil {
		fmt.Fprintf(os.Stderr, "chlocal: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// blockingQuery keeps chdb_query_cmdline (and with it the listeners) alive:
// it reads stdin to EOF. Serve makes stdin a pipe whose write end only it
// holds, so the query ends exactly when Serve closes that end on SIGTERM or
// SIGINT, which lets ClickHouse shut down its listeners and tables cleanly.
const blockingQuery = "SELECT count() FROM file(stdin, 'LineAsString') FORMAT Null"

// shutdownGrace bounds the clean shutdown after SIGTERM; one without idle
// client connections takes about 1.5 s.
const shutdownGrace = 3 * time.Second

// serverArgs is the clickhouse-local command line; separate for testing.
func serverArgs(opts Options) []string {
	return commandLine(opts, "--query=SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP; "+blockingQuery)
}

// commandLine is clickhouse-local's command line with the server settings
// of opts; query ("" for none) is the query argument.
func commandLine(opts Options, query string) []string {
	args := []string{"clickhouse", "--path=" + opts.DataDir}
	if opts.LogPath != "" {
		// clickhouse-local logs at trace level unless told otherwise, and
		// ignores logger.level for that.
		args = append(args, "--log-level=information")
	}
	if query != "" {
		args = append(args, query)
	}
	args = append(args,
		"--",
		"--tcp_port="+strconv.Itoa(opts.TCPPort),
		"--http_port="+strconv.Itoa(opts.HTTPPort),
		"--listen_host="+opts.ListenHost,
		// clickhouse-local sizes its background pools for one-shot queries
		// (2 threads each): a server taking a steady stream of inserts then
		// logs "pause scheduling" warnings and merges fall behind.
		"--background_schedule_pool_size=16",
		"--background_pool_size=4",
		"--background_common_pool_size=2",
	)
	if opts.LogPath != "" {
		args = append(args, "--logger.log="+opts.LogPath)
	}
	for _, c := range opts.Config {
		args = append(args, "--"+c)
	}
	return args
}

// Serve runs the server in this process until SIGTERM or SIGINT. It loads
// libchdb.so into the process: call it only in a process meant for that (see
// ServeIfChild).
func Serve(opts Options) error {
	if opts.ListenHost == "" {
		opts.ListenHost = "127.0.0.1"
	}
	if opts.LibPath == "" {
		p, err := LibPath()
		if err != nil {
			return err
		}
		opts.LibPath = p
	}
	if opts.DataDir == "" {
		return errors.New("chlocal: Options.DataDir is required")
	}
	if opts.TCPPort <= 0 || opts.HTTPPort <= 0 {
		return errors.New("chlocal: Options.TCPPort and HTTPPort are required")
	}
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return err
	}

	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	if err := unix.Dup2(int(r.Fd()), 0); err != nil {
		return fmt.Errorf("chlocal: stdin pipe: %w", err)
	}
	_ = r.Close()

	// Signals are registered before ClickHouse loads so that Go's handlers
	// are the ones installed; ClickHouse's own local mode leaves SIGTERM alone.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	var stopping atomic.Bool
	stop := make(chan struct{})
	go func() {
		<-sigs
		stopping.Store(true)
		close(stop)
		_ = w.Close()
		// clickhouse-local's shutdown waits 5 s for every idle keep-alive
		// connection (shutdown_wait_unfinished does not apply to it).
		// Acknowledged inserts are already in part files by then, so cut
		// that wait short rather than make every Stop slow.
		time.Sleep(shutdownGrace)
		fmt.Fprintf(os.Stderr, "chlocal: clean shutdown took longer than %v, exiting\n", shutdownGrace)
		os.Exit(0)
	}()

	runtime.LockOSThread()
	eng, err := loadEngine(opts.LibPath)
	if err != nil {
		return err
	}
	if opts.Bridge || os.Getenv(bridgeEnv) != "" {
		return serveBridge(eng, opts, stop)
	}
	msg, err := eng.cmdline(serverArgs(opts))
	if err != nil {
		return err
	}
	if msg != "" {
		return fmt.Errorf("chlocal: server on tcp %d / http %d: %s", opts.TCPPort, opts.HTTPPort, msg)
	}
	if stopping.Load() {
		return nil
	}
	// The query ended by itself. An engine older than chDB 26.7 does that:
	// its clickhouse-local refuses SYSTEM START LISTEN (printing the error
	// rather than returning it). Such an engine serves through the bridge,
	// in a fresh process image, as the library cannot open a session after
	// a command line in the same process.
	return reexecAsBridge(opts)
}

// bridgeEnv makes a re-executed server child serve through the bridge.
const bridgeEnv = "DECISIONTRACE_CHLOCAL_BRIDGE"

func reexecAsBridge(opts Options) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("chlocal: find own executable: %w", err)
	}
	enc, err := json.Marshal(opts)
	if err != nil {
		return err
	}
	env := append(envWithout(envWithout(os.Environ(), ServeEnv), bridgeEnv), ServeEnv+"="+string(enc), bridgeEnv+"=1")
	// The pid, process group, log and parent stay: to Start this is the
	// same child. (The parent-death signal does not when this is not the
	// main thread; serveBridge sets it again.)
	return fmt.Errorf("chlocal: re-execute %s as the bridge: %w", exe, syscall.Exec(exe, os.Args, env))
}

// listenUnsupported is how engines before chDB 26.7 refuse SYSTEM START
// LISTEN in clickhouse-local.
const listenUnsupported = "SYSTEM START LISTEN query is not supported in clickhouse-local"
