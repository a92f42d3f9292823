package sourcefreshnessreceiver

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"
)

func TestAsTime(t *testing.T) {
	want := time.Date(2026, 11, 26, 9, 30, 15, 0, time.UTC)
	wantMS := want.Add(250 * time.Millisecond)
	local := want.In(time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		in   any
		want time.Time
		err  string
	}{
		{name: "time", in: local, want: local},
		{name: "nullable time", in: &local, want: local},
		{name: "rfc3339", in: "2026-11-26T10:30:15+01:00", want: want},
		{name: "rfc3339 nano utc", in: "2026-11-26T09:30:15.25Z", want: wantMS},
		{name: "sql text is utc", in: []byte("2026-11-26 09:30:15"), want: want},
		{name: "unix seconds int64", in: want.Unix(), want: want},
		{name: "unix seconds uint32 (ClickHouse toUnixTimestamp)", in: uint32(want.Unix()), want: want},
		{name: "unix seconds fraction", in: float64(want.Unix()) + 0.25, want: wantMS},
		{name: "unix seconds json", in: json.Number("1795685415"), want: want},
		{name: "unix milliseconds json", in: json.Number("1795685415250"), want: wantMS},
		{name: "unix seconds string", in: "1795685415", want: want},
		{name: "unix seconds mysql decimal text", in: []byte("1795685415.250000"), want: wantMS},
		{name: "postgres numeric", in: pgtype.Numeric{Int: big.NewInt(179568541525), Exp: -2, Valid: true}, want: wantMS},
		{name: "null", in: nil, err: errNoValue.Error()},
		{name: "null pointer", in: (*time.Time)(nil), err: errNoValue.Error()},
		{name: "empty clickhouse max", in: time.Unix(0, 0), err: errNoValue.Error()},
		{name: "zero", in: int64(0), err: errNoValue.Error()},
		{name: "text", in: "yesterday", err: `cannot read "yesterday" as an RFC 3339 time or Unix seconds/milliseconds`},
		{name: "bool", in: true, err: "cannot read a bool as a time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := asTime(tt.in)
			if tt.err != "" {
				require.EqualError(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.True(t, tt.want.Equal(got), "want %s, got %s", tt.want, got)
		})
	}
}

func TestAsDepth(t *testing.T) {
	tests := []struct {
		in   any
		want int64
		err  string
	}{
		{in: int64(12), want: 12},
		{in: uint64(7), want: 7},
		{in: json.Number("42"), want: 42},
		{in: json.Number("42.0"), want: 42},
		{in: []byte("3"), want: 3},
		{in: float64(0), want: 0},
		{in: json.Number("-1"), err: "queue depth -1 is not a whole number of zero or more"},
		{in: 2.5, err: "queue depth 2.5 is not a whole number of zero or more"},
		{in: "many", err: `cannot read "many" as a queue depth`},
		{in: nil, err: errNoValue.Error()},
	}
	for _, tt := range tests {
		got, err := asDepth(tt.in)
		if tt.err != "" {
			require.EqualError(t, err, tt.err, "%#v", tt.in)
			continue
		}
		require.NoError(t, err, "%#v", tt.in)
		assert.Equal(t, tt.want, got, "%#v", tt.in)
	}
}

func TestLookup(t *testing.T) {
	var doc any
	dec := json.NewDecoder(strings.NewReader(`{"status":{"last_updated":"2026-11-26T09:30:15Z","feeds":[{"ts":1795685415}],"gone":null}}`))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&doc))

	v, err := lookup(doc, []string{"status", "last_updated"})
	require.NoError(t, err)
	assert.Equal(t, "2026-11-26T09:30:15Z", v)
	v, err = lookup(doc, []string{"status", "feeds", "0", "ts"})
	require.NoError(t, err)
	assert.Equal(t, json.Number("1795685415"), v)

	_, err = lookup(doc, []string{"status", "updated"})
	assert.EqualError(t, err, `field status.updated: not in the response (no "status.updated")`)
	_, err = lookup(doc, []string{"status", "feeds", "3"})
	assert.EqualError(t, err, `field status.feeds.3: "status.feeds" is an array of 1, "3" is no index in it`)
	_, err = lookup(doc, []string{"status", "last_updated", "x"})
	assert.EqualError(t, err, `field status.last_updated.x: "status.last_updated" is a string, not an object`)
	_, err = lookup(doc, []string{"status", "gone"})
	assert.EqualError(t, err, `field status.gone: is null`)
}

func TestMySQLConfig(t *testing.T) {
	s := &SourceConfig{Kind: KindMySQL, DSN: "dsnuser:dsnpass@tcp(crm.internal:3306)/crm?timeout=30s", Query: "SELECT 1"}
	cfg, err := mysqlConfig(s, 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "dsnuser", cfg.User)
	assert.Equal(t, "dsnpass", cfg.Passwd)
	assert.Equal(t, "crm.internal:3306", cfg.Addr)
	assert.Equal(t, "crm", cfg.DBName)
	assert.True(t, cfg.ParseTime, "DATETIME must arrive as time.Time")
	assert.Equal(t, time.UTC, cfg.Loc)
	assert.Equal(t, "'+00:00'", cfg.Params["time_zone"], "TIMESTAMP must be converted to UTC by the server")
	assert.Equal(t, 5*time.Second, cfg.Timeout, "the dial timeout never exceeds the poll timeout")

	// Separate username and password win over the DSN's; a time zone the
	// DSN chose is kept.
	s.DSN = "tcp(crm.internal:3306)/crm?time_zone=%27Europe%2FParis%27&loc=Europe%2FParis"
	s.Username, s.Password = "reader", configopaque.String("from-env")
	cfg, err = mysqlConfig(s, 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "reader", cfg.User)
	assert.Equal(t, "from-env", cfg.Passwd)
	assert.Equal(t, "'Europe/Paris'", cfg.Params["time_zone"])
	assert.Equal(t, "Europe/Paris", cfg.Loc.String())

	_, err = mysqlConfig(&SourceConfig{Kind: KindMySQL, DSN: "not a dsn"}, time.Second)
	require.Error(t, err)
}

func TestPostgresAndClickHouseCredentials(t *testing.T) {
	pg, err := postgresConfig(&SourceConfig{DSN: "postgres://dsnuser:dsnpass@db:5433/p?application_name=mine", Username: "reader", Password: "from-env"}, 2*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "reader", pg.User)
	assert.Equal(t, "from-env", pg.Password)
	assert.Equal(t, uint16(5433), pg.Port)
	assert.Equal(t, 2*time.Second, pg.ConnectTimeout)
	assert.Equal(t, "mine", pg.RuntimeParams["application_name"])

	ch, err := clickhouseOptions(&SourceConfig{DSN: "clickhouse://dsnuser:dsnpass@ch:9000/claims", Password: "from-env"}, 2*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "dsnuser", ch.Auth.Username)
	assert.Equal(t, "from-env", ch.Auth.Password)
	assert.Equal(t, "claims", ch.Auth.Database)
	assert.Equal(t, 2*time.Second, ch.DialTimeout)
}

func TestSecretsAreRedacted(t *testing.T) {
	s := &SourceConfig{
		Kind: KindMySQL, DSN: "dt:dsn-secret@tcp(db:3306)/crm", Password: "pw-secret",
		Headers: map[string]configopaque.String{"Authorization": "Bearer tok-secret"},
	}
	msg := redact("Error 1045: Access denied for dt (using pw-secret / dsn-secret) at dt:dsn-secret@tcp(db:3306)/crm, header Bearer tok-secret", secrets(s))
	assert.Equal(t, "Error 1045: Access denied for dt (using *** / ***) at ***, header ***", msg)

	h := &SourceConfig{Kind: KindHTTP, URL: "https://u:url-secret@feed/x?api_key=key-secret"}
	assert.Equal(t, "*** ***", redact("url-secret key-secret", secrets(h)))
}
