package alertrulesreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/decisiontrace/decisiontrace/internal/store"
	"github.com/decisiontrace/decisiontrace/receivers/alertrulesreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	t.Setenv("CLICKHOUSE_PASSWORD", "from-env")
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	def := createDefaultConfig().(*Config)
	def.Contracts = []string{"testdata/contracts/*.yaml"}
	full := createDefaultConfig().(*Config)
	full.Endpoint = "clickhouses://ch.example.internal:9440"
	full.Username = "decisiontrace"
	full.Password = "${env:CLICKHOUSE_PASSWORD}"
	full.ConnectTimeout = 2 * time.Second
	full.Database = "dt_prod"
	full.RuleFiles = []string{"testdata/rules/*.yaml"}
	full.Contracts = []string{"testdata/contracts/claims-triage.yaml"}
	full.ContractRulesInterval = time.Minute
	full.VerdictRefreshInterval = 30 * time.Second
	full.Cluster = configoptional.Some(store.ClusterConfig{Name: "decisiontrace", Replicated: true})
	full.QueryTimeout = 5 * time.Second
	full.RuleQueryConcurrency = 2
	full.ResendInterval = 30 * time.Second
	full.DashboardURL = "http://grafana:3000/d/decisiontrace-overview?var-workflow={{ .Labels.workflow }}"
	full.ExampleDecisions = 5
	for _, tt := range []struct {
		id       component.ID
		expected component.Config
	}{
		{component.NewID(metadata.Type), def},
		{component.NewIDWithName(metadata.Type, "full"), full},
	} {
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
		c.Contracts = []string{"testdata/contracts/*.yaml"}
		mut(c)
		return c
	}
	for _, tt := range []struct {
		name string
		cfg  *Config
		want string
	}{
		{"valid", valid(func(*Config) {}), ""},
		{"nothing to evaluate", valid(func(c *Config) { c.Contracts = nil }),
			"rule_files, contracts: name at least one rule file or contract"},
		{"settings", valid(func(c *Config) {
			c.Endpoint = "mysql://x"
			c.Database = "dt-prod"
			c.ContractRulesInterval = 0
			c.VerdictRefreshInterval = 0
			c.QueryTimeout = 0
			c.ResendInterval = 0
			c.RuleQueryConcurrency = 0
			c.DashboardURL = "{{ .Labels"
			c.ExampleDecisions = -1
		}), "endpoint: scheme \"mysql\" is not one of clickhouse, clickhouses, tcp, http, https\n" +
			"database: \"dt-prod\" is not a plain identifier\n" +
			"contract_rules_interval: must be positive, got 0s\n" +
			"verdict_refresh_interval: must be positive, got 0s\n" +
			"query_timeout: must be positive, got 0s\n" +
			"resend_interval: must be positive, got 0s\n" +
			"rule_query_concurrency: must be between 1 and 64, got 0\n" +
			"example_decisions: must be between 0 and 100, got -1\n" +
			"dashboard_url: template: dashboard_url:1: unclosed action"},
		{"cluster name not an identifier", valid(func(c *Config) {
			c.Cluster = configoptional.Some(store.ClusterConfig{Name: "dt'; DROP"})
		}), `cluster.name: "dt'; DROP" is not a plain identifier`},
		{"missing rule file", valid(func(c *Config) { c.RuleFiles = []string{"testdata/none/*.yaml"} }),
			`rule_files[0]: "testdata/none/*.yaml" matches no file`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
		})
	}
}
