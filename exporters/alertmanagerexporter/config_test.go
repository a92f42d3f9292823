package alertmanagerexporter

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/decisiontrace/decisiontrace/exporters/alertmanagerexporter/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	full := createDefaultConfig().(*Config)
	full.Endpoints = []string{"https://am1.example.internal:9093", "https://am2.example.internal:9093/alertmanager"}
	full.TLS = configtls.ClientConfig{Config: configtls.Config{CAFile: "/etc/ssl/alertmanager-ca.pem"}}
	full.Headers = configopaque.MapList{{Name: "X-Scope-OrgID", Value: "decisions"}}
	// confmaptest does not resolve ${env:...}; the collector does.
	full.BasicAuth = configoptional.Some(BasicAuth{Username: "decisiontrace", Password: "${env:ALERTMANAGER_PASSWORD}"})
	full.Timeout = 5 * time.Second
	// A configuration of the previous release still loads: resend_interval
	// is ignored (with a warning at start, see TestResendIntervalIsIgnoredWithAWarning).
	full.ResendInterval = 30 * time.Second
	full.EndsAtAhead = 2 * time.Minute
	full.BackOffConfig = configretry.BackOffConfig{
		Enabled: true, InitialInterval: time.Second, MaxInterval: 30 * time.Second,
		RandomizationFactor: full.BackOffConfig.RandomizationFactor, Multiplier: full.BackOffConfig.Multiplier,
	}
	q := *createDefaultConfig().(*Config).QueueConfig.Get()
	q.QueueSize = 500
	storage := component.MustNewID("file_storage")
	q.StorageID = &storage
	full.QueueConfig = configoptional.Some(q)

	authExtension := createDefaultConfig().(*Config)
	authExtension.Endpoints = []string{"http://am:9093"}
	authExtension.Auth = configoptional.Some(configauth.Config{AuthenticatorID: component.MustNewID("bearertokenauth")})

	contribStyle := createDefaultConfig().(*Config)
	contribStyle.Endpoint = "http://am:9093"

	v03 := createDefaultConfig().(*Config)
	v03.Endpoints = []string{"http://am:9093"}
	v03.RemovedRequestTimeout = "5s"

	bearer := createDefaultConfig().(*Config)
	bearer.Endpoints = []string{"http://am:9093"}
	bearer.BearerToken = "${env:ALERTMANAGER_TOKEN}"

	tests := []struct {
		id       component.ID
		expected component.Config
		err      string
	}{
		{id: component.NewID(metadata.Type), expected: createDefaultConfig()},
		{id: component.NewIDWithName(metadata.Type, "full"), expected: full},
		{id: component.NewIDWithName(metadata.Type, "bearer"), expected: bearer},
		{id: component.NewIDWithName(metadata.Type, "auth_extension"), expected: authExtension},
		{id: component.NewIDWithName(metadata.Type, "v0.3"), expected: v03,
			err: "request_timeout: renamed to timeout, the HTTP client's setting (one POST to one Alertmanager); timeout no longer bounds a whole push on its own, the POSTs of a push run at once"},
		{id: component.NewIDWithName(metadata.Type, "contrib_style"), expected: contribStyle,
			err: "endpoint: use endpoints, a list: every Alertmanager listed gets every alert"},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			assert.Equal(t, tt.expected, cfg)
			if tt.err == "" {
				assert.NoError(t, confmap.Validate(cfg))
			} else {
				assert.EqualError(t, confmap.Validate(cfg), tt.err)
			}
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
		{name: "two endpoints with a path prefix", cfg: valid(func(c *Config) {
			c.Endpoints = []string{"http://am1:9093", "https://am2/alertmanager"}
		})},
		{name: "no endpoints", cfg: valid(func(c *Config) { c.Endpoints = nil }),
			err: "endpoints: at least one Alertmanager URL is required, e.g. http://127.0.0.1:9093"},
		{name: "no scheme", cfg: valid(func(c *Config) { c.Endpoints = []string{"am1:9093"} }),
			err: `endpoints[0]: "am1:9093": scheme must be http or https`},
		{name: "no host", cfg: valid(func(c *Config) { c.Endpoints = []string{"http:///x"} }),
			err: `endpoints[0]: "http:///x": no host`},
		{name: "query", cfg: valid(func(c *Config) { c.Endpoints = []string{"http://am:9093?x=1"} }),
			err: `endpoints[0]: "http://am:9093?x=1": no query or fragment allowed`},
		{name: "credentials in the URL are not echoed", cfg: valid(func(c *Config) { c.Endpoints = []string{"http://u:secret@am:9093"} }),
			err: "endpoints[0]: credentials in the URL are not allowed; use basic_auth"},
		{name: "duplicate", cfg: valid(func(c *Config) { c.Endpoints = []string{"http://am:9093", "http://am:9093"} }),
			err: `endpoints[1]: "http://am:9093" is listed twice`},
		{name: "ends_at_ahead not positive", cfg: valid(func(c *Config) { c.EndsAtAhead = 0 }),
			err: "ends_at_ahead: must be positive, got 0s"},
		{name: "resend_interval of an older configuration", cfg: valid(func(c *Config) { c.ResendInterval = time.Minute })},
		{name: "every problem at once", cfg: valid(func(c *Config) {
			c.Endpoints = []string{"ftp://am:21", "http://user:secret@am:9093"}
			c.BasicAuth = configoptional.Some(BasicAuth{})
			c.BearerToken = "t"
			c.Timeout = 0
			c.EndsAtAhead = -time.Second
		}), err: `endpoints[0]: "ftp://am:21": scheme must be http or https` + "\n" +
			"endpoints[1]: credentials in the URL are not allowed; use basic_auth\n" +
			"basic_auth: username must be set\n" +
			"bearer_token: cannot be combined with basic_auth\n" +
			"timeout: must be positive, got 0s\n" +
			"ends_at_ahead: must be positive, got -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := *tt.cfg
			err := tt.cfg.Validate()
			assert.Equal(t, before, *tt.cfg, "Validate changes nothing")
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
	require.ErrorContains(t, err, "bearer_token: cannot be combined with basic_auth")
	require.ErrorContains(t, err, "ends_at_ahead: must be positive, got 0s")
	assert.NotContains(t, err.Error(), "secret")
}

// A configuration of the previous release sets resend_interval here: it
// loads, and the start says where the setting went.
func TestResendIntervalIsIgnoredWithAWarning(t *testing.T) {
	for _, tt := range []struct {
		resend time.Duration
		warned int
	}{{resend: 0, warned: 0}, {resend: time.Minute, warned: 1}} {
		core, logs := observer.New(zap.WarnLevel)
		cfg := createDefaultConfig().(*Config)
		cfg.ResendInterval = tt.resend
		set := exportertest.NewNopSettings(metadata.Type)
		set.Logger = zap.New(core)
		e, err := newExporter(cfg, set)
		require.NoError(t, err)
		require.NoError(t, e.start(context.Background(), componenttest.NewNopHost()))
		require.NoError(t, e.shutdown(context.Background()))
		got := logs.FilterMessageSnippet("set resend_interval there").Len()
		assert.Equal(t, tt.warned, got, "resend_interval %s", tt.resend)
	}
}
