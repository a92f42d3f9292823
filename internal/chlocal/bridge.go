package chlocal

// The bridge serves ClickHouse's native-TCP and HTTP protocols from Go for
// engines whose clickhouse-local cannot open ClickHouse's own listeners
// (chDB before 26.7 refuses SYSTEM START LISTEN). It exists so that the
// schema and its tests can run on the oldest engine obtainable, and covers
// what decisiontrace's clients use: clickhouse-go's native protocol without
// compression (queries, DDL, inserts of Native blocks, per-query settings,
// ping), and plain HTTP queries, inserts with their data in the body and
// /ping. Queries run one at a time on one
// in-process session. Engines that can listen never use it.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"golang.org/x/sys/unix"
)

// bridgeRevision is the native protocol revision the bridge speaks: the
// last before custom serialization flags (54454) and the hello addendum
// (54458), so that a block in the engine's Native format is a block of the
// protocol.
const bridgeRevision = 54451

// Packet codes of the native protocol.
const (
	clientHello  = 0
	clientQuery  = 1
	clientData   = 2
	clientCancel = 3
	clientPing   = 4

	serverHello       = 0
	serverData        = 1
	serverException   = 2
	serverProgress    = 3
	serverEndOfStream = 5
	serverPong        = 4
)

type bridge struct {
	eng      *engine
	dir      string // where an insert's rows are written for the engine to read
	tz       *time.Location
	tzName   string
	version  [3]uint64
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	closing  bool
	handlers sync.WaitGroup
}

// serveBridge opens the engine's session and serves it on opts' ports
// until stop is closed.
func serveBridge(eng *engine, opts Options, stop <-chan struct{}) error {
	if sid, err := unix.Getsid(0); err == nil && sid != os.Getpid() && os.Getenv(bridgeEnv) != "" {
		// Re-executed from a server child that Start (not StartDetached)
		// made: restore the parent-death signal exec may have dropped.
		_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0)
		if os.Getppid() == 1 {
			return errors.New("chlocal: the process that started this server has exited")
		}
	}
	if err := eng.open(commandLine(opts, "")); err != nil {
		return err
	}
	if !opts.Bridge {
		// Only an engine that refuses to listen is served here; any other
		// failure of the listeners is a real error.
		if _, err := eng.query([]byte("SYSTEM START LISTEN TCP"), "TabSeparated"); err == nil || !strings.Contains(err.Error(), listenUnsupported) {
			return fmt.Errorf("chlocal: server query ended without a stop signal (the engine can listen: %v)", err)
		}
		fmt.Fprintf(os.Stderr, "chlocal: %s cannot open ClickHouse's listeners (%s); serving its native and HTTP protocols through chlocal's bridge\n", opts.LibPath, listenUnsupported)
	}
	b := &bridge{eng: eng, dir: opts.DataDir, conns: map[net.Conn]struct{}{}}
	// An insert's file outlives a bridge killed during it.
	if b.dir != "" {
		stale, _ := filepath.Glob(filepath.Join(b.dir, insertFilePattern))
		for _, f := range stale {
			_ = os.Remove(f)
		}
	}
	if err := b.describeEngine(); err != nil {
		return err
	}
	tcp, err := net.Listen("tcp", net.JoinHostPort(opts.ListenHost, strconv.Itoa(opts.TCPPort)))
	if err != nil {
		return fmt.Errorf("chlocal: bridge: %w", err)
	}
	web, err := net.Listen("tcp", net.JoinHostPort(opts.ListenHost, strconv.Itoa(opts.HTTPPort)))
	if err != nil {
		tcp.Close()
		return fmt.Errorf("chlocal: bridge: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(b.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(web) }()
	go b.acceptNative(tcp)
	fmt.Fprintf(os.Stderr, "chlocal: bridge to ClickHouse %d.%d.%d serving native on %s and HTTP on %s\n",
		b.version[0], b.version[1], b.version[2], tcp.Addr(), web.Addr())

	<-stop
	_ = tcp.Close()
	_ = srv.Close()
	b.mu.Lock()
	b.closing = true
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.handlers.Wait()
	return nil
}

func (b *bridge) describeEngine() error {
	res, err := b.eng.query([]byte("SELECT version(), timezone()"), "TabSeparated")
	if err != nil {
		return fmt.Errorf("chlocal: bridge: %w", err)
	}
	v, tz, _ := strings.Cut(strings.TrimSpace(string(res.out)), "\t")
	for i, part := range strings.SplitN(v, ".", 4) {
		if i < 3 {
			b.version[i], _ = strconv.ParseUint(part, 10, 64)
		}
	}
	b.tzName = tz
	if b.tz, err = time.LoadLocation(tz); err != nil {
		b.tz = time.UTC
	}
	return nil
}

func (b *bridge) acceptNative(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		if b.closing {
			b.mu.Unlock()
			c.Close()
			return
		}
		b.conns[c] = struct{}{}
		b.handlers.Add(1)
		b.mu.Unlock()
		go func() {
			defer b.handlers.Done()
			defer func() {
				b.mu.Lock()
				delete(b.conns, c)
				b.mu.Unlock()
				c.Close()
			}()
			if err := b.serveNative(c); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				fmt.Fprintf(os.Stderr, "chlocal: bridge: connection from %s: %v\n", c.RemoteAddr(), err)
			}
		}()
	}
}

// nativeConn is one client connection of the native protocol.
type nativeConn struct {
	b   *bridge
	c   net.Conn
	r   *chproto.Reader
	w   *chproto.Buffer
	rev uint64
}

func (b *bridge) serveNative(c net.Conn) error {
	nc := &nativeConn{b: b, c: c, r: chproto.NewReader(c), w: new(chproto.Buffer)}
	code, err := nc.r.UVarInt()
	if err != nil {
		return err
	}
	if code != clientHello {
		return fmt.Errorf("expected hello, got packet %d", code)
	}
	var hello chproto.ClientHello
	if err := hello.Decode(nc.r); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	nc.rev = min(uint64(hello.ProtocolVersion), bridgeRevision)
	if nc.rev < proto.DBMS_MIN_REVISION_WITH_SETTINGS_SERIALIZED_AS_STRINGS {
		return fmt.Errorf("client protocol revision %d is older than the bridge supports", hello.ProtocolVersion)
	}
	nc.w.PutUVarInt(serverHello)
	nc.w.PutString("ClickHouse")
	nc.w.PutUVarInt(b.version[0])
	nc.w.PutUVarInt(b.version[1])
	nc.w.PutUVarInt(nc.rev)
	nc.w.PutString(b.tzName)
	nc.w.PutString("chlocal-bridge")
	nc.w.PutUVarInt(b.version[2])
	if err := nc.flush(); err != nil {
		return err
	}
	for {
		code, err := nc.r.UVarInt()
		if err != nil {
			return err
		}
		switch code {
		case clientPing:
			nc.w.PutUVarInt(serverPong)
			if err := nc.flush(); err != nil {
				return err
			}
		case clientCancel:
			// Queries run to completion; the answer follows as usual.
		case clientQuery:
			if err := nc.query(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected packet %d", code)
		}
	}
}

func (nc *nativeConn) flush() error {
	_, err := nc.c.Write(nc.w.Buf)
	nc.w.Reset()
	return err
}

// readData reads a Data packet's block (the packet code already read).
func (nc *nativeConn) readData() (*proto.Block, error) {
	if _, err := nc.r.Str(); err != nil { // external table name
		return nil, err
	}
	blk := proto.NewBlock()
	blk.ServerContext.Timezone = nc.b.tz
	if err := blk.Decode(nc.r, nc.rev); err != nil {
		return nil, err
	}
	return blk, nil
}

// readDataUntilEmpty reads Data packets up to the empty block that ends
// them and returns the blocks before it.
func (nc *nativeConn) readDataUntilEmpty() ([]*proto.Block, error) {
	var out []*proto.Block
	for {
		code, err := nc.r.UVarInt()
		if err != nil {
			return nil, err
		}
		if code != clientData {
			return nil, fmt.Errorf("expected a data packet, got packet %d", code)
		}
		blk, err := nc.readData()
		if err != nil {
			return nil, err
		}
		if len(blk.Columns) == 0 && blk.Rows() == 0 {
			return out, nil
		}
		out = append(out, blk)
	}
}

func (nc *nativeConn) query() error {
	var q chproto.Query
	if err := q.DecodeAware(nc.r, int(nc.rev)); err != nil {
		return fmt.Errorf("query: %w", err)
	}
	if q.Compression != chproto.CompressionDisabled {
		// The data that follows is compressed and cannot be read.
		_ = nc.exception(&EngineError{Code: 1, Message: "chlocal's bridge does not support compression: open the connection without it"})
		return errors.New("client asked for compression")
	}
	external, err := nc.readDataUntilEmpty()
	if err != nil {
		return fmt.Errorf("query %q: %w", q.ID, err)
	}
	if len(external) > 0 {
		return nc.exception(&EngineError{Code: 1, Message: "chlocal's bridge does not support external tables"})
	}
	settings := make([][2]string, 0, len(q.Settings))
	for _, s := range q.Settings {
		settings = append(settings, [2]string{s.Key, s.Value})
	}
	body := strings.TrimRight(strings.TrimSpace(q.Body), ";")
	if m := dropDatabaseSync.FindStringSubmatch(body); m != nil {
		// The session of chDB 26.5 never returns from DROP DATABASE ...
		// SYNC (26.7's does). Without SYNC the database is gone at once
		// all the same; only its files are removed later.
		body = m[1]
	}

	if m := insertData.FindStringSubmatch(body); m != nil && strings.EqualFold(m[4], "Native") {
		return nc.insert(m[1], m[2], m[3], settings)
	}
	res, err := nc.b.run(settings, body, "Native")
	if err != nil {
		return nc.exception(err)
	}
	blocks, err := nc.b.splitNative(res.out)
	if err != nil {
		return nc.exception(&EngineError{Code: 1, Message: "chlocal's bridge cannot read the engine's output as Native blocks (does the query have a FORMAT clause?): " + err.Error()})
	}
	if len(blocks) == 0 && selectLike.MatchString(body) {
		// ClickHouse sends a result's header even when it has no rows.
		header, err := nc.b.header(settings, "DESCRIBE ("+body+")", nil, false)
		if err != nil {
			return nc.exception(err)
		}
		blocks = append(blocks, header)
	}
	for _, blk := range blocks {
		if err := nc.sendData(blk); err != nil {
			return err
		}
	}
	// What the statement read, as ClickHouse reports it while a query
	// runs: clients count rows read from these packets (the rules'
	// ReadRows), which would otherwise be zero on a bridged engine.
	nc.w.PutUVarInt(serverProgress)
	chproto.Progress{Rows: res.readRows, Bytes: res.readBytes}.EncodeAware(nc.w, int(nc.rev))
	nc.w.PutUVarInt(serverEndOfStream)
	return nc.flush()
}

var (
	// insertData is an INSERT whose data follows the statement: as Data
	// packets (FORMAT Native, as clickhouse-go's PrepareBatch sends it) or
	// as an HTTP request's body. Table, optional column list, optional
	// SETTINGS clause, format.
	insertData       = regexp.MustCompile(`(?is)^INSERT\s+INTO\s+([^\s(]+)\s*(?:\(([^)]*)\))?\s*(SETTINGS\s+.*?)?\s*FORMAT\s+(\w+)$`)
	selectLike       = regexp.MustCompile(`(?is)^\(*\s*(SELECT|WITH)\b`)
	dropDatabaseSync = regexp.MustCompile(`(?is)^(DROP\s+DATABASE\s+.*?)\s+SYNC$`)
)

// insert answers an INSERT whose data follows: the header of the columns
// it names, then the rows the client sends, written in one statement.
// The rows reach the engine through a file (FROM INFILE), never inline
// after FORMAT Native: the engine ends inline data at a blank line, and
// binary rows hold "\n\n" wherever two bytes of a value are 0x0a.
func (nc *nativeConn) insert(table, columns, settingsClause string, settings [][2]string) error {
	var names []string
	for _, c := range strings.Split(columns, ",") {
		if c = strings.Trim(strings.TrimSpace(c), "`\""); c != "" {
			names = append(names, c)
		}
	}
	plainLowCardinality := false
	for _, s := range settings {
		if s[0] == "low_cardinality_allow_in_native_format" && (s[1] == "0" || strings.EqualFold(s[1], "false")) {
			plainLowCardinality = true
		}
	}
	header, err := nc.b.header(settings, "DESCRIBE TABLE "+table, names, plainLowCardinality)
	if err != nil {
		return nc.exception(err)
	}
	if err := nc.sendData(header); err != nil {
		return err
	}
	if err := nc.flush(); err != nil {
		return err
	}
	blocks, err := nc.readDataUntilEmpty()
	if err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	var data chproto.Buffer
	rows := 0
	for _, blk := range blocks {
		if blk.Rows() == 0 {
			continue
		}
		rows += blk.Rows()
		if err := blk.Encode(&data, 0); err != nil {
			return nc.exception(&EngineError{Code: 1, Message: "chlocal's bridge: re-encode block: " + err.Error()})
		}
	}
	if rows > 0 {
		if err := nc.b.insertFile(table, columns, settingsClause, "Native", settings, data.Buf); err != nil {
			return nc.exception(err)
		}
	}
	nc.w.PutUVarInt(serverEndOfStream)
	return nc.flush()
}

// insertFilePattern names the files insertFile writes, in the data directory.
const insertFilePattern = ".bridge-insert-*"

// insertFile writes an insert's data (in format) to a file of its own and
// has the engine insert it from there.
func (b *bridge) insertFile(table, columns, settingsClause, format string, settings [][2]string, data []byte) error {
	f, err := os.CreateTemp(b.dir, insertFilePattern)
	if err != nil {
		return &EngineError{Code: 1, Message: "chlocal's bridge: " + err.Error()}
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &EngineError{Code: 1, Message: "chlocal's bridge: " + err.Error()}
	}
	q := "INSERT INTO " + table
	if strings.TrimSpace(columns) != "" {
		q += " (" + columns + ")"
	}
	q += " FROM INFILE " + quote(f.Name()) + " " + settingsClause + " FORMAT " + format
	_, err = b.run(settings, q, "Native")
	return err
}

func (nc *nativeConn) sendData(blk *proto.Block) error {
	nc.w.PutUVarInt(serverData)
	nc.w.PutString("")
	return encodeBlock(nc.w, blk, nc.rev)
}

// encodeBlock is blk.Encode, except that a block without rows is only its
// columns' names and types, as ClickHouse writes it: clickhouse-go would
// add the LowCardinality state prefix, which its own decoder does not read
// for an empty block.
func encodeBlock(buf *chproto.Buffer, blk *proto.Block, rev uint64) error {
	if blk.Rows() > 0 {
		return blk.Encode(buf, rev)
	}
	if rev > 0 {
		buf.PutUVarInt(1) // block info: is_overflows
		buf.PutBool(false)
		buf.PutUVarInt(2) // bucket_num
		buf.PutInt32(-1)
		buf.PutUVarInt(0)
	}
	buf.PutUVarInt(uint64(len(blk.Columns)))
	buf.PutUVarInt(0)
	for _, c := range blk.Columns {
		buf.PutString(c.Name())
		buf.PutString(string(c.Type()))
	}
	return nil
}

// exception sends err to the client as ClickHouse's Exception packet.
func (nc *nativeConn) exception(err error) error {
	var ee *EngineError
	if !errors.As(err, &ee) {
		ee = &EngineError{Code: 1000, Message: err.Error()}
	}
	msg := ee.Message
	if i := strings.Index(msg, "DB::Exception: "); i >= 0 {
		msg = msg[i+len("DB::Exception: "):]
	}
	nc.w.PutUVarInt(serverException)
	nc.w.PutInt32(ee.Code)
	nc.w.PutString("DB::Exception")
	nc.w.PutString(msg)
	nc.w.PutString("")
	nc.w.PutBool(false)
	return nc.flush()
}

// run executes one statement with per-query settings. The session is shared,
// so the settings are set for the statement and reset after it.
func (b *bridge) run(settings [][2]string, query, format string) (result, error) {
	if len(settings) == 0 {
		return b.eng.query([]byte(query), format)
	}
	b.eng.mu.Lock()
	defer b.eng.mu.Unlock()
	set := make([]string, len(settings))
	reset := make([]string, len(settings))
	for i, s := range settings {
		set[i] = s[0] + " = " + quote(s[1])
		reset[i] = s[0] + " = DEFAULT"
	}
	if _, err := b.eng.queryLocked([]byte("SET "+strings.Join(set, ", ")), "TabSeparated"); err != nil {
		return result{}, err
	}
	res, err := b.eng.queryLocked([]byte(query), format)
	if _, rerr := b.eng.queryLocked([]byte("SET "+strings.Join(reset, ", ")), "TabSeparated"); rerr != nil && err == nil {
		err = rerr
	}
	return res, err
}

func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// splitNative reads the engine's Native output (revision 0) block by block.
func (b *bridge) splitNative(out []byte) ([]*proto.Block, error) {
	var blocks []*proto.Block
	// At least ch-go's own buffer size, so that its reader reads through
	// this one and Peek sees what is left.
	br := bufio.NewReaderSize(bytes.NewReader(out), 1<<20)
	r := chproto.NewReader(br)
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return blocks, nil
		}
		blk := proto.NewBlock()
		blk.ServerContext.Timezone = b.tz
		if err := blk.Decode(r, 0); err != nil {
			return nil, err
		}
		blocks = append(blocks, blk)
	}
}

// header is an empty block with the columns a DESCRIBE lists (only those
// named, in their order, when names is not empty).
func (b *bridge) header(settings [][2]string, describe string, names []string, plainLowCardinality bool) (*proto.Block, error) {
	res, err := b.run(settings, describe, "TabSeparated")
	if err != nil {
		return nil, err
	}
	types := map[string]string{}
	var order []string
	for _, line := range strings.Split(strings.TrimRight(string(res.out), "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 2 {
			continue
		}
		// DESCRIBE escapes as TabSeparated does; names and types here
		// need only backslashes and quotes undone.
		name, typ := unescapeTSV(f[0]), unescapeTSV(f[1])
		kind := ""
		if len(f) > 2 {
			kind = f[2]
		}
		types[name] = typ
		if kind == "" || kind == "DEFAULT" {
			order = append(order, name)
		}
	}
	if len(names) == 0 {
		names = order
	}
	blk := proto.NewBlock()
	blk.ServerContext.Timezone = b.tz
	for _, n := range names {
		t, ok := types[n]
		if !ok {
			return nil, &EngineError{Code: 16, Message: fmt.Sprintf("No such column %s (chlocal's bridge, from %s)", n, describe)}
		}
		if plainLowCardinality {
			t = stripLowCardinality(t)
		}
		if err := blk.AddColumn(n, column.Type(t)); err != nil {
			return nil, &EngineError{Code: 50, Message: fmt.Sprintf("chlocal's bridge cannot encode column %s %s: %v", n, t, err)}
		}
	}
	return blk, nil
}

func unescapeTSV(s string) string {
	return strings.NewReplacer(`\\`, `\`, `\'`, `'`, `\t`, "\t", `\n`, "\n").Replace(s)
}

// stripLowCardinality removes LowCardinality(...) wrappers from a type, as
// ClickHouse does for a client that set low_cardinality_allow_in_native_format=0.
func stripLowCardinality(t string) string {
	const lc = "LowCardinality("
	for {
		i := strings.Index(t, lc)
		if i < 0 {
			return t
		}
		depth, j := 1, i+len(lc)
		for ; j < len(t) && depth > 0; j++ {
			switch t[j] {
			case '(':
				depth++
			case ')':
				depth--
			}
		}
		t = t[:i] + t[i+len(lc):j-1] + t[j:]
	}
}

// serveHTTP answers /ping and plain queries (?query= and/or the body) in
// TabSeparated, or the format of ?default_format=. An INSERT in ?query=
// with its data in the body is written from a file, as the native
// protocol's inserts are.
func (b *bridge) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ping" {
		_, _ = io.WriteString(w, "Ok.\n")
		return
	}
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q := r.URL.Query().Get("query")
	if m := insertData.FindStringSubmatch(strings.TrimRight(strings.TrimSpace(q), ";")); m != nil && len(body) > 0 {
		if err := b.insertFile(m[1], m[2], m[3], m[4], nil, body); err != nil {
			httpError(w, err)
		}
		return
	}
	if len(body) > 0 {
		if q != "" {
			q += "\n"
		}
		q += string(body)
	}
	q = strings.TrimRight(strings.TrimSpace(q), ";")
	if q == "" {
		_, _ = io.WriteString(w, "Ok.\n")
		return
	}
	format := r.URL.Query().Get("default_format")
	if format == "" {
		format = "TabSeparated"
	}
	res, err := b.run(nil, q, format)
	if err != nil {
		httpError(w, err)
		return
	}
	_, _ = w.Write(res.out)
}

func httpError(w http.ResponseWriter, err error) {
	w.Header().Set("X-ClickHouse-Exception-Code", strconv.Itoa(int(exceptionCode(err))))
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

func exceptionCode(err error) int32 {
	var ee *EngineError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 1000
}
