package sourcefreshnessreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/decisiontrace/decisiontrace/receivers/sourcefreshnessreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	minimal := createDefaultConfig().(*Config)
	minimal.Sources = []SourceConfig{{
		Name: "policy-db", Kind: KindPostgreSQL,
		DSN:   "postgres://dt@policy-db.internal:5432/policies",
		Query: "SELECT max(updated_at) FROM policies",
	}}

	full := createDefaultConfig().(*Config)
	full.Interval = time.Minute
	full.Timeout = 10 * time.Second
	full.Sources = []SourceConfig{
		{
			Name: "policy-db", Workflows: []string{"claims-triage", "underwriting"}, Kind: KindPostgreSQL,
			DSN:      "postgres://dt_reader@policy-db.internal:5432/policies?sslmode=require",
			Password: "${env:POLICY_DB_PASSWORD}",
			Query:    "SELECT max(updated_at) FROM policies",
			Interval: 2 * time.Minute, Timeout: 3 * time.Second,
		},
		{
			Name: "customer-crm", Workflow: "claims-triage", Kind: KindMySQL,
			DSN: "dt_reader@tcp(crm.internal:3306)/crm", Password: "${env:CRM_PASSWORD}",
			Query: "SELECT UNIX_TIMESTAMP(max(modified)) FROM customers",
		},
		{
			Name: "claims-events", Workflow: "claims-triage", Kind: KindClickHouse,
			DSN: "clickhouse://ch.internal:9000/claims", Username: "reader", Password: "${env:CLICKHOUSE_PASSWORD}",
			Query: "SELECT max(ingested_at) FROM claims.events",
		},
		{
			Name: "weather-feed", Workflow: "claims-triage", Kind: KindHTTP,
			URL:     "https://feeds.example.com/v1/status",
			Headers: map[string]configopaque.String{"Authorization": "Bearer ${env:FEED_TOKEN}"},
			Field:   "status.last_updated",
			TLS:     configtls.ClientConfig{Config: configtls.Config{CAFile: "/etc/ssl/feeds-ca.pem"}},
		},
	}
	full.Queues = []SourceConfig{{
		Name: "manual-review", Workflow: "claims-triage", Kind: KindPostgreSQL,
		DSN:      "postgres://dt_reader@review.internal:5432/review",
		Query:    "SELECT count(*) FROM tasks WHERE state = 'open'",
		Interval: 15 * time.Second,
	}}

	tests := []struct {
		id       component.ID
		expected component.Config
	}{
		{id: component.NewID(metadata.Type), expected: minimal},
		{id: component.NewIDWithName(metadata.Type, "full"), expected: full},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			assert.NoError(t, confmap.Validate(cfg))
			assert.Equal(t, tt.expected, cfg)
		})
	}
}

func TestInvalidConfigFromFile(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig()
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, "invalid").String())
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(cfg))
	require.EqualError(t, confmap.Validate(cfg), "interval: must be positive, got 0s\n"+
		"sources[0].dsn: required for kind postgresql\n"+
		"sources[0].query: required for kind postgresql\n"+
		"sources[0].url: not used by kind postgresql\n"+
		`sources[1].name: "policy-db" is already used by sources[0]`+"\n"+
		`sources[1].kind: "oracle" is not one of postgresql, mysql, clickhouse, http`)
}

func TestValidate(t *testing.T) {
	pg := SourceConfig{Name: "policy-db", Kind: KindPostgreSQL, DSN: "postgres://dt@db:5432/p", Query: "SELECT now()"}
	web := SourceConfig{Name: "feed", Kind: KindHTTP, URL: "https://feed.example.com/status", Field: "status.last_updated"}
	with := func(mut func(*Config)) *Config {
		c := createDefaultConfig().(*Config)
		c.Sources = []SourceConfig{pg, web}
		mut(c)
		return c
	}
	tests := []struct {
		name string
		cfg  *Config
		err  string
	}{
		{name: "valid", cfg: with(func(*Config) {})},
		{name: "queues only", cfg: with(func(c *Config) { c.Sources, c.Queues = nil, []SourceConfig{pg} })},
		{name: "nothing to poll", cfg: with(func(c *Config) { c.Sources = nil }),
			err: "sources: at least one source or queue is required"},
		{name: "sql without query", cfg: with(func(c *Config) { c.Sources[0].Query = " " }),
			err: "sources[0].query: required for kind postgresql"},
		{name: "third source without query names its index", cfg: with(func(c *Config) {
			c.Sources = append(c.Sources, SourceConfig{Name: "ch", Kind: KindClickHouse, DSN: "clickhouse://ch:9000"})
		}), err: "sources[2].query: required for kind clickhouse"},
		{name: "missing kind", cfg: with(func(c *Config) { c.Sources[1].Kind = "" }),
			err: "sources[1].kind: required: postgresql, mysql, clickhouse or http"},
		{name: "bad mysql dsn hides the password", cfg: with(func(c *Config) {
			c.Sources[0].Kind, c.Sources[0].DSN = KindMySQL, "dt:s3cretpw@tcp(db:3306/crm"
		}), err: "sources[0].dsn: not a valid mysql DSN: invalid DSN: network address not terminated (missing closing brace)"},
		{name: "bad postgres dsn hides the password", cfg: with(func(c *Config) {
			c.Sources[0].DSN = "postgres://dt:s3cretpw@db:notaport/p"
		}), err: "sources[0].dsn: not a valid postgresql DSN: cannot parse `postgres://dt:xxxxx@db:notaport/p`: invalid port"},
		{name: "http without url and field", cfg: with(func(c *Config) { c.Sources[1].URL, c.Sources[1].Field = "", "" }),
			err: "sources[1].url: required for kind http\n" +
				"sources[1].field: required for kind http (a dotted path into the JSON response, e.g. status.last_updated)"},
		{name: "http url scheme and empty field segment", cfg: with(func(c *Config) {
			c.Sources[1].URL, c.Sources[1].Field = "ftp://feed/x", "status..last_updated"
		}), err: `sources[1].url: scheme "ftp" is not http or https` + "\n" +
			`sources[1].field: "status..last_updated" has an empty path segment`},
		{name: "http with sql fields", cfg: with(func(c *Config) {
			c.Sources[1].DSN, c.Sources[1].Password, c.Sources[1].Query = "x", "y", "SELECT 1"
		}), err: "sources[1].dsn: not used by kind http\nsources[1].password: not used by kind http\nsources[1].query: not used by kind http"},
		{name: "empty workflow in list", cfg: with(func(c *Config) { c.Sources[0].Workflows = []string{"claims", ""} }),
			err: "sources[0].workflows[1]: must not be empty"},
		{name: "queue problems name the queues list", cfg: with(func(c *Config) {
			c.Queues = []SourceConfig{pg, pg}
			c.Queues[1].Timeout = -time.Second
		}), err: `queues[1].name: "policy-db" is already used by queues[0]` + "\n" +
			"queues[1].timeout: must not be negative, got -1s"},
		{name: "every problem at once", cfg: with(func(c *Config) {
			c.Interval, c.Timeout = 0, -time.Second
			c.Sources[0].Name, c.Sources[0].DSN, c.Sources[0].Interval = "", "", -time.Minute
			c.Sources[1].Kind = "oracle"
		}), err: "interval: must be positive, got 0s\n" +
			"timeout: must be positive, got -1s\n" +
			"sources[0].name: required\n" +
			"sources[0].interval: must not be negative, got -1m0s\n" +
			"sources[0].dsn: required for kind postgresql\n" +
			`sources[1].kind: "oracle" is not one of postgresql, mysql, clickhouse, http`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := *tt.cfg
			before.Sources = append([]SourceConfig(nil), tt.cfg.Sources...)
			err := tt.cfg.Validate()
			assert.Equal(t, before, *tt.cfg, "Validate must not change the configuration")
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.err)
			assert.NotContains(t, err.Error(), "s3cretpw")
		})
	}
}
