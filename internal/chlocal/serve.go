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
	"unsafe"

	"github.com/ebitengine/purego"
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
	args := []string{"clickhouse", "--path=" + opts.DataDir}
	if opts.LogPath != "" {
		// clickhouse-local logs at trace level unless told otherwise, and
		// ignores logger.level for that.
		args = append(args, "--log-level=information")
	}
	args = append(args,
		"--query=SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP; "+blockingQuery,
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
	go func() {
		<-sigs
		stopping.Store(true)
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
	lib, err := purego.Dlopen(opts.LibPath, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return fmt.Errorf("chlocal: load %s: %w", opts.LibPath, err)
	}
	var (
		queryCmdline  func(argc int32, argv **byte) uintptr
		resultError   func(res uintptr) *byte
		destroyResult func(res uintptr)
	)
	purego.RegisterLibFunc(&queryCmdline, lib, "chdb_query_cmdline")
	purego.RegisterLibFunc(&resultError, lib, "chdb_result_error")
	purego.RegisterLibFunc(&destroyResult, lib, "chdb_destroy_query_result")

	args := serverArgs(opts)
	argv := make([]*byte, len(args)+1)
	for i, a := range args {
		b := append([]byte(a), 0)
		argv[i] = &b[0]
	}
	res := queryCmdline(int32(len(args)), &argv[0])
	runtime.KeepAlive(argv)
	if res == 0 {
		return errors.New("chlocal: chdb_query_cmdline returned no result")
	}
	defer destroyResult(res)
	if msg := cString(resultError(res)); msg != "" {
		return fmt.Errorf("chlocal: server on tcp %d / http %d: %s", opts.TCPPort, opts.HTTPPort, msg)
	}
	if !stopping.Load() {
		return errors.New("chlocal: server query ended without a stop signal")
	}
	return nil
}

func cString(p *byte) string {
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}
