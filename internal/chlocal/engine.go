package chlocal

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// engine is libchdb.so loaded into this process: its C functions, and the
// in-process session the bridge runs queries on.
type engine struct {
	path string

	queryCmdline func(argc int32, argv **byte) uintptr
	resultError  func(res uintptr) *byte
	resultBuffer func(res uintptr) *byte
	resultLength func(res uintptr) uint64
	// resultRowsRead and resultBytesRead are what a statement read, as
	// ClickHouse's progress counts it (nil: the engine does not say).
	resultRowsRead  func(res uintptr) uint64
	resultBytesRead func(res uintptr) uint64
	destroyResult   func(res uintptr)
	connect         func(argc int32, argv **byte) *uintptr
	queryN          func(conn uintptr, query *byte, queryLen uint64, format *byte, formatLen uint64) uintptr

	mu   sync.Mutex // one query at a time on the session
	conn uintptr    // chdb_connection, after open
}

func loadEngine(path string) (*engine, error) {
	lib, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("chlocal: load %s: %w", path, err)
	}
	e := &engine{path: path}
	for name, fn := range map[string]any{
		"chdb_query_cmdline":        &e.queryCmdline,
		"chdb_result_error":         &e.resultError,
		"chdb_result_buffer":        &e.resultBuffer,
		"chdb_result_length":        &e.resultLength,
		"chdb_destroy_query_result": &e.destroyResult,
		"chdb_connect":              &e.connect,
		"chdb_query_n":              &e.queryN,
	} {
		if _, err := purego.Dlsym(lib, name); err != nil {
			return nil, fmt.Errorf("chlocal: %s is not a chDB engine this version of decisiontrace can use: no %s", path, name)
		}
		purego.RegisterLibFunc(fn, lib, name)
	}
	for name, fn := range map[string]any{
		"chdb_result_storage_rows_read":  &e.resultRowsRead,
		"chdb_result_storage_bytes_read": &e.resultBytesRead,
	} {
		if _, err := purego.Dlsym(lib, name); err == nil {
			purego.RegisterLibFunc(fn, lib, name)
		}
	}
	return e, nil
}

// cArgs is argv for a C function; keep the result alive across the call.
func cArgs(args []string) []*byte {
	argv := make([]*byte, len(args)+1)
	for i, a := range args {
		b := append([]byte(a), 0)
		argv[i] = &b[0]
	}
	return argv
}

// cmdline runs clickhouse-local with args and returns its error message
// ("" when it succeeded).
func (e *engine) cmdline(args []string) (string, error) {
	argv := cArgs(args)
	res := e.queryCmdline(int32(len(args)), &argv[0])
	runtime.KeepAlive(argv)
	if res == 0 {
		return "", errors.New("chlocal: chdb_query_cmdline returned no result")
	}
	defer e.destroyResult(res)
	return cString(e.resultError(res)), nil
}

// open starts the in-process session on the arguments of a clickhouse-local
// command line (without a query).
func (e *engine) open(args []string) error {
	argv := cArgs(args)
	p := e.connect(int32(len(args)), &argv[0])
	runtime.KeepAlive(argv)
	if p == nil || *p == 0 {
		return fmt.Errorf("chlocal: chdb_connect on %s failed (see the log)", e.path)
	}
	e.conn = *p
	return nil
}

// EngineError is an error the engine reported for a query.
type EngineError struct {
	Code    int32  // ClickHouse's error code, 0 when the message had none
	Message string // as ClickHouse wrote it
}

func (e *EngineError) Error() string { return e.Message }

// result is a statement's output and what it read.
type result struct {
	out                 []byte
	readRows, readBytes uint64
}

// query runs one statement in the session and returns its output in format.
func (e *engine) query(q []byte, format string) (result, error) {
	if len(q) == 0 {
		return result{}, &EngineError{Code: 62, Message: "Empty query"}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.queryLocked(q, format)
}

// queryLocked is query for a caller that holds e.mu.
func (e *engine) queryLocked(q []byte, format string) (result, error) {
	if len(q) == 0 {
		return result{}, &EngineError{Code: 62, Message: "Empty query"}
	}
	f := append([]byte(format), 0)
	res := e.queryN(e.conn, &q[0], uint64(len(q)), &f[0], uint64(len(format)))
	runtime.KeepAlive(q)
	runtime.KeepAlive(f)
	if res == 0 {
		return result{}, errors.New("chlocal: chdb_query_n returned no result")
	}
	defer e.destroyResult(res)
	if msg := cString(e.resultError(res)); msg != "" {
		return result{}, engineError(msg)
	}
	var r result
	if e.resultRowsRead != nil && e.resultBytesRead != nil {
		r.readRows, r.readBytes = e.resultRowsRead(res), e.resultBytesRead(res)
	}
	if n := e.resultLength(res); n > 0 {
		r.out = append([]byte(nil), unsafe.Slice(e.resultBuffer(res), n)...)
	}
	return r, nil
}

// engineError reads ClickHouse's "Code: 60. DB::Exception: ..." form.
func engineError(msg string) *EngineError {
	msg = strings.TrimSpace(msg)
	var code int32
	if _, err := fmt.Sscanf(msg, "Code: %d.", &code); err != nil {
		code = 0
	}
	return &EngineError{Code: code, Message: msg}
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
