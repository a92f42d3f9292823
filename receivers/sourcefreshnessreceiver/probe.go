package sourcefreshnessreceiver

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"go.uber.org/zap"

	"github.com/decisiontrace/decisiontrace/internal/chconn"
)

// A prober reads one raw value from a source: a timestamp-like value for
// sources, a number for queues. It is used by one goroutine at a time.
type prober interface {
	read(ctx context.Context) (any, error)
	close() error
}

// errNoValue is a source that answered without a usable value: NULL, no
// row, or a zero time (what max() of an empty ClickHouse table returns).
var errNoValue = errors.New("no value (NULL, no row, or the zero time: is the table empty?)")

func newProber(ctx context.Context, s *SourceConfig, timeout time.Duration, logger *zap.Logger) (prober, error) {
	switch s.Kind {
	case KindPostgreSQL:
		cfg, err := postgresConfig(s, timeout)
		if err != nil {
			return nil, err
		}
		return &pgProber{cfg: cfg, query: s.Query}, nil
	case KindMySQL:
		cfg, err := mysqlConfig(s, timeout)
		if err != nil {
			return nil, err
		}
		// The driver's default logger writes to stderr, past the collector's.
		cfg.Logger = mysqlLogger{logger.With(zap.String("source", s.Name))}
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, err
		}
		return newSQLProber(sql.OpenDB(conn), s.Query), nil
	case KindClickHouse:
		opts, err := clickhouseOptions(s, timeout)
		if err != nil {
			return nil, err
		}
		return newSQLProber(clickhouse.OpenDB(opts), s.Query), nil
	case KindHTTP:
		return newHTTPProber(ctx, s)
	}
	return nil, fmt.Errorf("kind %q is not supported", s.Kind)
}

// postgresConfig parses the DSN with pgx, so key=value strings, URLs and the
// PG* environment variables work as with any libpq client.
func postgresConfig(s *SourceConfig, timeout time.Duration) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(string(s.DSN))
	if err != nil {
		return nil, err
	}
	if s.Username != "" {
		cfg.User = s.Username
	}
	if s.Password != "" {
		cfg.Password = string(s.Password)
	}
	cfg.ConnectTimeout = timeout
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "decisiontrace-sourcefreshness"
	}
	return cfg, nil
}

// mysqlConfig makes DATETIME and TIMESTAMP arrive as time.Time in UTC: the
// session's time_zone is +00:00 (so TIMESTAMP is converted to UTC by the
// server) unless the DSN sets one, and a DATETIME, which has no zone, is
// read as UTC unless the DSN sets loc.
func mysqlConfig(s *SourceConfig, timeout time.Duration) (*mysql.Config, error) {
	cfg, err := mysql.ParseDSN(string(s.DSN))
	if err != nil {
		return nil, err
	}
	if s.Username != "" {
		cfg.User = s.Username
	}
	if s.Password != "" {
		cfg.Passwd = string(s.Password)
	}
	cfg.ParseTime = true
	if cfg.Timeout == 0 || cfg.Timeout > timeout {
		cfg.Timeout = timeout
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	if _, ok := cfg.Params["time_zone"]; !ok {
		cfg.Params["time_zone"] = "'+00:00'"
	}
	return cfg, nil
}

func clickhouseOptions(s *SourceConfig, timeout time.Duration) (*clickhouse.Options, error) {
	return chconn.Options(chconn.Settings{Endpoint: string(s.DSN), Username: s.Username, Password: s.Password,
		DialTimeout: timeout, KeepDatabase: true})
}

type mysqlLogger struct{ l *zap.Logger }

// Print gets what the driver notes about dropped connections; the poll's own
// result already reports what matters, so this is debug detail.
func (m mysqlLogger) Print(v ...any) { m.l.Debug(strings.TrimSpace(fmt.Sprint(v...))) }

// pgProber keeps one connection and drops it on any error, so a restarted
// server is reconnected at the next poll. pgx's database/sql adapter would
// bring in pgxpool and its pool dependency for one connection's worth of work.
type pgProber struct {
	cfg   *pgx.ConnConfig
	query string
	conn  *pgx.Conn
}

func (p *pgProber) read(ctx context.Context) (any, error) {
	if p.conn == nil || p.conn.IsClosed() {
		conn, err := pgx.ConnectConfig(ctx, p.cfg)
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		p.conn = conn
	}
	var v any
	if err := p.conn.QueryRow(ctx, p.query).Scan(&v); err != nil {
		p.dropConn()
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, errNoValue
		}
		return nil, fmt.Errorf("query: %w", err)
	}
	return v, nil
}

func (p *pgProber) dropConn() {
	if p.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.conn.Close(ctx)
		p.conn = nil
	}
}

func (p *pgProber) close() error {
	p.dropConn()
	return nil
}

// sqlProber serves the database/sql drivers, which reconnect by themselves.
type sqlProber struct {
	db    *sql.DB
	query string
}

func newSQLProber(db *sql.DB, query string) *sqlProber {
	// One poller, one query at a time: a second connection is never needed.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	return &sqlProber{db: db, query: query}
}

func (p *sqlProber) read(ctx context.Context) (any, error) {
	var v any
	if err := p.db.QueryRowContext(ctx, p.query).Scan(&v); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errNoValue
		}
		return nil, fmt.Errorf("query: %w", err)
	}
	return v, nil
}

func (p *sqlProber) close() error { return p.db.Close() }

// maxBody bounds what is read of an HTTP answer: a status document, not a
// data export.
const maxBody = 8 << 20

type httpProber struct {
	client  *http.Client
	url     string
	headers http.Header
	field   []string
}

func newHTTPProber(ctx context.Context, s *SourceConfig) (*httpProber, error) {
	tlsCfg, err := s.TLS.LoadTLSConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	h := http.Header{}
	h.Set("Accept", "application/json")
	h.Set("User-Agent", "decisiontrace-sourcefreshness")
	for k, v := range s.Headers {
		h.Set(k, string(v))
	}
	return &httpProber{
		client:  &http.Client{Transport: tr},
		url:     s.URL,
		headers: h,
		field:   strings.Split(s.Field, "."),
	}, nil
}

func (p *httpProber) read(ctx context.Context) (any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header = p.headers.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		// url.Error repeats the URL, which may carry a token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("http get: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return nil, fmt.Errorf("http status %s", resp.Status)
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxBody))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("response is not JSON: %w", err)
	}
	return lookup(doc, p.field)
}

func (p *httpProber) close() error {
	p.client.CloseIdleConnections()
	return nil
}

// lookup walks a dotted path through objects (by key) and arrays (by index).
func lookup(doc any, path []string) (any, error) {
	cur := doc
	for i, seg := range path {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return nil, fmt.Errorf("field %s: not in the response (no %q)", strings.Join(path, "."), strings.Join(path[:i+1], "."))
			}
			cur = v
		case []any:
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || n >= len(c) {
				return nil, fmt.Errorf("field %s: %q is an array of %d, %q is no index in it", strings.Join(path, "."), strings.Join(path[:i], "."), len(c), seg)
			}
			cur = c[n]
		default:
			return nil, fmt.Errorf("field %s: %q is a %s, not an object", strings.Join(path, "."), strings.Join(path[:i], "."), jsonType(cur))
		}
	}
	if cur == nil {
		return nil, fmt.Errorf("field %s: is null", strings.Join(path, "."))
	}
	return cur, nil
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
}

// unixMillisFrom: numbers at or above it are Unix milliseconds, below it
// Unix seconds. 1e11 seconds is the year 5138; 1e11 milliseconds is 1973.
const unixMillisFrom = 1e11

// asTime turns what a source returned into a time: a time value (SQL
// TIMESTAMP, DATETIME, timestamptz, DateTime64), an RFC 3339 string, or a
// number of Unix seconds (milliseconds from 1e11 on).
func asTime(v any) (time.Time, error) {
	v = deref(v)
	var t time.Time
	switch x := v.(type) {
	case nil:
		return time.Time{}, errNoValue
	case time.Time:
		t = x
	case []byte:
		return asTime(string(x))
	case string:
		s := strings.TrimSpace(x)
		var err error
		if t, err = parseTimeString(s); err != nil {
			f, nerr := strconv.ParseFloat(s, 64)
			if nerr != nil {
				return time.Time{}, fmt.Errorf("cannot read %q as an RFC 3339 time or Unix seconds/milliseconds", clip(s, 40))
			}
			t = unixTime(f)
		}
	default:
		f, ok := asFloat(v)
		if !ok {
			return time.Time{}, fmt.Errorf("cannot read a %T as a time", v)
		}
		t = unixTime(f)
	}
	if t.IsZero() || t.Unix() <= 0 {
		return time.Time{}, errNoValue
	}
	return t, nil
}

func parseTimeString(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	// SQL text forms; without a zone they are read as UTC.
	for _, layout := range []string{"2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("not a time")
}

func unixTime(f float64) time.Time {
	if math.Abs(f) >= unixMillisFrom {
		ms, frac := math.Modf(f)
		return time.UnixMilli(int64(ms)).Add(time.Duration(math.Round(frac * 1e6))).UTC()
	}
	// A float64 of Unix seconds today holds about a microsecond of
	// precision; rounding there keeps float noise out of data.as_of.
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC()
}

// asDepth turns what a queue returned into a depth: a whole number, zero or
// more.
func asDepth(v any) (int64, error) {
	v = deref(v)
	switch x := v.(type) {
	case nil:
		return 0, errNoValue
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return checkDepth(float64(n), n)
		}
		f, err := x.Float64()
		if err != nil {
			return 0, fmt.Errorf("cannot read %q as a queue depth", x.String())
		}
		return checkDepth(f, int64(f))
	case []byte:
		return asDepth(json.Number(strings.TrimSpace(string(x))))
	case string:
		return asDepth(json.Number(strings.TrimSpace(x)))
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return checkDepth(float64(rv.Int()), rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if rv.Uint() > math.MaxInt64 {
			return 0, fmt.Errorf("queue depth %d is out of range", rv.Uint())
		}
		return int64(rv.Uint()), nil
	}
	f, ok := asFloat(v)
	if !ok {
		return 0, fmt.Errorf("cannot read a %T as a queue depth", v)
	}
	return checkDepth(f, int64(f))
}

func checkDepth(f float64, n int64) (int64, error) {
	if f < 0 || f != math.Trunc(f) || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("queue depth %v is not a whole number of zero or more", f)
	}
	return n, nil
}

// asFloat reads numbers of any Go type the drivers return: sized ints and
// floats, json.Number, and pgx's numeric.
func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case pgtype.Numeric:
		f, err := x.Float64Value()
		return f.Float64, err == nil && f.Valid
	case interface{ Float64() (float64, bool) }: // shopspring decimal (ClickHouse Decimal)
		f, _ := x.Float64()
		return f, true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	}
	return 0, false
}

// deref unwraps the pointers drivers use for Nullable columns.
func deref(v any) any {
	for {
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Pointer {
			return v
		}
		if rv.IsNil() {
			return nil
		}
		v = rv.Elem().Interface()
	}
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
