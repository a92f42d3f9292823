package decisionprocessor

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

	"github.com/decisiontrace/decisiontrace/processors/decisionprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	def := createDefaultConfig().(*Config)
	def.Contracts = []string{"testdata/contracts/*.yaml"}

	full := createDefaultConfig().(*Config)
	full.Contracts = []string{"testdata/contracts/claims-triage.yaml"}
	full.VerdictWindow = 30 * time.Second
	full.MaxPendingDecisions = 5000
	full.Aliases.Files = []string{"testdata/aliases.csv"}
	full.Aliases.ReloadInterval = 2 * time.Second

	tests := []struct {
		id       component.ID
		expected component.Config
	}{
		{id: component.NewID(metadata.Type), expected: def},
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

func TestValidate(t *testing.T) {
	valid := func(mut func(*Config)) *Config {
		c := createDefaultConfig().(*Config)
		c.Contracts = []string{"testdata/contracts/claims-triage.yaml"}
		mut(c)
		return c
	}
	tests := []struct {
		name string
		cfg  *Config
		want string
	}{
		{"valid", valid(func(*Config) {}), ""},
		{"no contracts", valid(func(c *Config) { c.Contracts = nil }),
			"contracts: at least one dependency contract file is required"},
		{"pattern matches nothing", valid(func(c *Config) { c.Contracts = []string{"testdata/nope/*.yaml"} }),
			`contracts[0]: "testdata/nope/*.yaml" matches no file`},
		{"window, pending and reload", valid(func(c *Config) {
			c.VerdictWindow = 0
			c.MaxPendingDecisions = 0
			c.Aliases.Files = []string{"testdata/aliases.csv"}
			c.Aliases.ReloadInterval = 0
		}), "verdict_window: must be positive, got 0s\n" +
			"max_pending_decisions: must be positive, got 0\n" +
			"aliases.reload_interval: must be positive, got 0s"},
		{"broken contract names file, workflow and field", valid(func(c *Config) { c.Contracts = []string{"testdata/broken/bad-floor.yaml"} }),
			"testdata/broken/bad-floor.yaml: workflow loans: confidence_floor: 2 is outside [0, 1]"},
		{"queue metrics", valid(func(c *Config) {
			c.QueueMetrics = []QueueMetric{{Queue: "q"}, {Metric: "m", Queue: "q", QueueFrom: "queue"}}
		}), "queue_metrics[0].metric: required\n" +
			"queue_metrics[1]: set exactly one of queue and queue_from"},
		{"alias table", valid(func(c *Config) {
			c.Aliases.ClickHouse = configoptional.Some(AliasTableConfig{Endpoint: "mysql://h", Table: "aliases; DROP TABLE x"})
		}), "aliases.clickhouse.endpoint: scheme \"mysql\" is not one of clickhouse, clickhouses, tcp, http, https\n" +
			"aliases.clickhouse.table: \"aliases; DROP TABLE x\" is not database.table (plain identifiers)"},
		{"broken alias map", valid(func(c *Config) { c.Aliases.Files = []string{"testdata/broken/aliases.csv"} }),
			"aliases.files[0]: testdata/broken/aliases.csv: line 3: system, local_id and canonical_id must all be set"},
	}
	for _, tt := range tests {
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
