package decisionstoreexporter

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/decisiontrace/decisiontrace/exporters/decisionstoreexporter/internal/metadata"
	"github.com/decisiontrace/decisiontrace/internal/store"
)

func TestLoadConfig(t *testing.T) {
	t.Setenv("CLICKHOUSE_PASSWORD", "from-env")
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	full := createDefaultConfig().(*Config)
	full.Endpoint = "clickhouses://ch.example.internal:9440?compress=lz4"
	full.Username = "decisiontrace"
	full.Password = "${env:CLICKHOUSE_PASSWORD}"
	full.Database = "dt_prod"
	full.ConnectTimeout = 3 * time.Second
	full.TTL = 720 * time.Hour
	full.Unclassified = UnclassifiedRefuse
	full.Timeout = 10 * time.Second
	full.TLS = configoptional.Some(configtls.ClientConfig{Config: configtls.Config{CAFile: "/etc/ssl/clickhouse-ca.pem"}})
	full.BackOffConfig = configretry.BackOffConfig{
		Enabled: true, InitialInterval: time.Second, MaxInterval: 30 * time.Second,
		RandomizationFactor: full.BackOffConfig.RandomizationFactor, Multiplier: full.BackOffConfig.Multiplier,
	}
	q := *createDefaultConfig().(*Config).QueueConfig.Get()
	q.NumConsumers = 4
	q.QueueSize = 5000
	storage := component.MustNewID("file_storage")
	q.StorageID = &storage
	full.QueueConfig = configoptional.Some(q)

	// A batch section overrides only what it names.
	batching := createDefaultConfig().(*Config)
	bq := *batching.QueueConfig.Get()
	b := *bq.Batch.Get()
	b.MinSize = 15000
	bq.Batch = configoptional.Some(b)
	batching.QueueConfig = configoptional.Some(bq)

	cluster := createDefaultConfig().(*Config)
	cluster.Cluster = configoptional.Some(store.ClusterConfig{Name: "decisiontrace", Replicated: true})

	tests := []struct {
		id       component.ID
		expected component.Config
	}{
		{id: component.NewIDWithName(metadata.Type, "cluster"), expected: cluster},
		{id: component.NewID(metadata.Type), expected: createDefaultConfig()},
		{id: component.NewIDWithName(metadata.Type, "full"), expected: full},
		{id: component.NewIDWithName(metadata.Type, "queue_batching"), expected: batching},
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

func TestValidate(t *testing.T) {
	valid := func(mut func(*Config)) *Config {
		c := createDefaultConfig().(*Config)
		mut(c)
		return c
	}
	tests := []struct {
		name string
		cfg  *Config
		err  string
	}{
		{name: "default", cfg: valid(func(*Config) {})},
		{name: "no endpoint", cfg: valid(func(c *Config) { c.Endpoint = "" }),
			err: "endpoint: must be set, e.g. clickhouse://127.0.0.1:9000"},
		{name: "bad scheme", cfg: valid(func(c *Config) { c.Endpoint = "mysql://x" }),
			err: `endpoint: scheme "mysql" is not one of clickhouse, clickhouses, tcp, http, https`},
		{name: "database not an identifier", cfg: valid(func(c *Config) { c.Database = "dt; DROP TABLE x" }),
			err: `database: "dt; DROP TABLE x" is not a plain identifier (letters, digits, underscore; not starting with a digit)`},
		{name: "fractional ttl", cfg: valid(func(c *Config) { c.TTL = 1500 * time.Millisecond }),
			err: "ttl: must be a whole number of seconds, got 1.5s"},
		{name: "cluster name not an identifier", cfg: valid(func(c *Config) {
			c.Cluster = configoptional.Some(store.ClusterConfig{Name: "dt'; DROP"})
		}), err: `cluster.name: "dt'; DROP" is not a plain identifier`},
		{name: "every problem at once", cfg: valid(func(c *Config) {
			c.Endpoint = "mysql://x"
			c.Database = "dt-prod"
			c.ConnectTimeout = 0
			c.TTL = -time.Hour
			c.Unclassified = "drop"
		}), err: `endpoint: scheme "mysql" is not one of clickhouse, clickhouses, tcp, http, https` + "\n" +
			"connect_timeout: must be positive, got 0s\n" +
			`database: "dt-prod" is not a plain identifier (letters, digits, underscore; not starting with a digit)` + "\n" +
			"ttl: must not be negative, got -1h0m0s\n" +
			`unclassified: "drop" is not one of store, refuse`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.err)
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
	require.ErrorContains(t, confmap.Validate(cfg), `unclassified: "drop" is not one of store, refuse`)
}
