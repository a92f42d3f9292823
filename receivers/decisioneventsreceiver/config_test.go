package decisioneventsreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/decisiontrace/decisiontrace/receivers/decisioneventsreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	full := createDefaultConfig().(*Config)
	full.NetAddr.Endpoint = "0.0.0.0:14320"
	full.MaxRequestBodySize = 1 << 20
	full.IncludeMetadata = true
	full.TLS = configoptional.Some(configtls.ServerConfig{Config: configtls.Config{
		CertFile: "/etc/decisiontrace/tls.crt", KeyFile: "/etc/decisiontrace/tls.key",
	}})
	full.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: component.MustNewID("bearertokenauth")}})
	full.MaxEventsPerRequest = 500
	full.MaxAttributesPerEvent = 64
	full.RetryAfter = 10 * time.Second

	limitsOnly := createDefaultConfig().(*Config)
	limitsOnly.MaxEventsPerRequest = 100000

	tests := []struct {
		id       component.ID
		expected component.Config
	}{
		{id: component.NewID(metadata.Type), expected: createDefaultConfig()},
		{id: component.NewIDWithName(metadata.Type, "full"), expected: full},
		{id: component.NewIDWithName(metadata.Type, "limits_only"), expected: limitsOnly},
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

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	assert.Equal(t, "localhost:4320", cfg.NetAddr.Endpoint)
	assert.Equal(t, int64(20<<20), cfg.MaxRequestBodySize)
	assert.Equal(t, 10000, cfg.MaxEventsPerRequest)
	assert.Equal(t, 128, cfg.MaxAttributesPerEvent)
	assert.Equal(t, 5*time.Second, cfg.RetryAfter)
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
		{name: "no endpoint", cfg: valid(func(c *Config) { c.NetAddr.Endpoint = "" }),
			err: "endpoint: must be set, e.g. localhost:4320"},
		{name: "negative body size", cfg: valid(func(c *Config) { c.MaxRequestBodySize = -1 }),
			err: "max_request_body_size: must not be negative, got -1"},
		{name: "no events allowed", cfg: valid(func(c *Config) { c.MaxEventsPerRequest = 0 }),
			err: "max_events_per_request: must be at least 1, got 0"},
		{name: "no attributes allowed", cfg: valid(func(c *Config) { c.MaxAttributesPerEvent = 0 }),
			err: "max_attributes_per_event: must be at least 1, got 0"},
		{name: "retry_after under a second", cfg: valid(func(c *Config) { c.RetryAfter = 500 * time.Millisecond }),
			err: "retry_after: must be at least 1s, got 500ms"},
		{name: "fractional retry_after", cfg: valid(func(c *Config) { c.RetryAfter = 1500 * time.Millisecond }),
			err: "retry_after: must be a whole number of seconds, got 1.5s"},
		{name: "every problem at once", cfg: valid(func(c *Config) {
			c.NetAddr.Endpoint = ""
			c.MaxRequestBodySize = -5
			c.MaxEventsPerRequest = -1
			c.MaxAttributesPerEvent = 0
			c.RetryAfter = 0
		}), err: "endpoint: must be set, e.g. localhost:4320\n" +
			"max_request_body_size: must not be negative, got -5\n" +
			"max_events_per_request: must be at least 1, got -1\n" +
			"max_attributes_per_event: must be at least 1, got 0\n" +
			"retry_after: must be at least 1s, got 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := *tt.cfg
			err := tt.cfg.Validate()
			assert.Equal(t, before, *tt.cfg, "Validate changed the configuration")
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
	err = confmap.Validate(cfg)
	require.ErrorContains(t, err, "endpoint: must be set, e.g. localhost:4320")
	require.ErrorContains(t, err, "max_events_per_request: must be at least 1, got 0")
	require.ErrorContains(t, err, "max_attributes_per_event: must be at least 1, got -1")
	require.ErrorContains(t, err, "retry_after: must be a whole number of seconds, got 1.5s")
}
