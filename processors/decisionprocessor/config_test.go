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

	"github.com/decisiontrace/decisiontrace/internal/chconn"
	"github.com/decisiontrace/decisiontrace/processors/decisionprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	full := createDefaultConfig().(*Config)
	full.Aliases.Files = []string{"testdata/aliases.csv"}
	full.Aliases.ReloadInterval = 2 * time.Second
	// The same ClickHouse settings as every component's, connect_timeout
	// kept at its default.
	table := AliasTableConfig{ClientConfig: chconn.NewClientConfig(), Table: "decisiontrace.entity_aliases"}
	table.Endpoint, table.Username = "clickhouse://ch.example.internal:9000", "decisiontrace"
	full.Aliases.ClickHouse = configoptional.Some(table)
	full.UnknownWorkflows = UnknownWorkflowsTag
	full.KnownWorkflows = KnownWorkflowsConfig{Contracts: []string{"../../deploy/contracts/*.yaml"}, Names: []string{"batch-backfill"}}
	full.DecisionIDFromTraceID = true

	unknownWorkflows := createDefaultConfig().(*Config)
	unknownWorkflows.UnknownWorkflows = "drop"
	unknownWorkflows.KnownWorkflows = KnownWorkflowsConfig{Contracts: []string{"testdata/none/*.yaml"}, Names: []string{""}}

	v1 := createDefaultConfig().(*Config)
	v1.Aliases.Files = []string{"testdata/aliases.csv"}
	v1.RemovedContracts = []any{"deploy/contracts/*.yaml"}
	v1.RemovedVerdictWindow = "2m"
	v1.RemovedMaxPendingDecisions = 200000

	invalid := createDefaultConfig().(*Config)
	invalid.Aliases.Files = []string{"testdata/broken/aliases.csv"}
	invalid.Aliases.ReloadInterval = 0

	queues := createDefaultConfig().(*Config)
	queues.RemovedQueueMetrics = []any{map[string]any{"metric": "rabbitmq.message.current", "queue_from": "rabbitmq.queue.name"}}

	tests := []struct {
		id       component.ID
		expected component.Config
		// unmarshalErr and validateErr are whole error texts.
		unmarshalErr, validateErr string
	}{
		{id: component.NewID(metadata.Type), expected: createDefaultConfig()},
		{id: component.NewIDWithName(metadata.Type, "full"), expected: full},
		{id: component.NewIDWithName(metadata.Type, "v1"), expected: v1, validateErr: "" +
			"contracts: removed: verdicts are derived by the decision store, against the contracts written into it (list the files in the alertrules receiver's contracts); delete it (see the migration note in the decision processor's README)\n" +
			"verdict_window: removed: verdicts are derived by the decision store, where a decision whose context is late stays pending until the context arrives or the contract's max_context_lag has passed; delete it (see the migration note in the decision processor's README)\n" +
			"max_pending_decisions: removed: the processor holds no decisions; delete it (see the migration note in the decision processor's README)"},
		{id: component.NewIDWithName(metadata.Type, "unknown"), unmarshalErr: "decoding failed due to the following error(s):\n\n'decisionprocessor.Config' has invalid keys: alias"},
		{id: component.NewIDWithName(metadata.Type, "invalid"), expected: invalid, validateErr: "aliases.reload_interval: must be positive, got 0s\n" +
			"aliases.files[0]: testdata/broken/aliases.csv: line 3: system, local_id and canonical_id must all be set"},
		{id: component.NewIDWithName(metadata.Type, "queues"), expected: queues, validateErr: "queue_metrics: removed: queue metrics become queue.depth signals in the decisionqueue connector: move the list to connectors: decisionqueue: queue_metrics, put decisionqueue among the metrics pipeline's exporters and the logs pipeline's receivers, and take this processor out of the metrics pipeline; delete it (see the migration note in the decision processor's README)"},
		{id: component.NewIDWithName(metadata.Type, "unknown_workflows"), expected: unknownWorkflows, validateErr: "" +
			"unknown_workflows: \"drop\" is not one of store, tag, refuse\n" +
			"known_workflows.names[0]: empty\n" +
			"known_workflows.contracts[0]: \"testdata/none/*.yaml\" matches no file"},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			err = sub.Unmarshal(cfg)
			if tt.unmarshalErr != "" {
				require.Error(t, err)
				assert.Equal(t, tt.unmarshalErr, err.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.expected, cfg)
			err = confmap.Validate(cfg)
			if tt.validateErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.validateErr, err.Error())
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
		want string
	}{
		{"default", valid(func(*Config) {}), ""},
		{"no reload interval needed without alias maps", valid(func(c *Config) { c.Aliases.ReloadInterval = 0 }), ""},
		{"reload interval", valid(func(c *Config) {
			c.Aliases.Files = []string{"testdata/aliases.csv"}
			c.Aliases.ReloadInterval = -time.Second
		}), "aliases.reload_interval: must be positive, got -1s"},
		{"queue metrics moved to the connector", valid(func(c *Config) {
			c.RemovedQueueMetrics = []any{map[string]any{"metric": "m", "queue": "q"}}
		}), "queue_metrics: removed: queue metrics become queue.depth signals in the decisionqueue connector: move the list to connectors: decisionqueue: queue_metrics, put decisionqueue among the metrics pipeline's exporters and the logs pipeline's receivers, and take this processor out of the metrics pipeline; delete it (see the migration note in the decision processor's README)"},
		{"alias table", valid(func(c *Config) {
			c.Aliases.ClickHouse = configoptional.Some(AliasTableConfig{ClientConfig: chconn.ClientConfig{Endpoint: "mysql://h", ConnectTimeout: chconn.DefaultConnectTimeout}, Table: "aliases; DROP TABLE x"})
		}), "aliases.clickhouse.endpoint: scheme \"mysql\" is not one of clickhouse, clickhouses, tcp, http, https\n" +
			"aliases.clickhouse.table: \"aliases; DROP TABLE x\" is not database.table (plain identifiers)"},
		{"broken and absent alias maps", valid(func(c *Config) {
			c.Aliases.Files = []string{"testdata/broken/aliases.csv", "testdata/none.csv"}
		}), "aliases.files[0]: testdata/broken/aliases.csv: line 3: system, local_id and canonical_id must all be set\n" +
			"aliases.files[1]: open testdata/none.csv: no such file or directory"},
		{"a policy needs known workflows", valid(func(c *Config) { c.UnknownWorkflows = UnknownWorkflowsRefuse }),
			"known_workflows: required with unknown_workflows: refuse (contracts or names)"},
		{"known workflows need a workflow in each contract", valid(func(c *Config) {
			c.UnknownWorkflows = UnknownWorkflowsTag
			c.KnownWorkflows.Contracts = []string{"testdata/broken/contract.yaml"}
		}), "known_workflows.contracts: contract testdata/broken/contract.yaml: workflow: required"},
		{"every error at once", valid(func(c *Config) {
			c.Aliases.ClickHouse = configoptional.Some(AliasTableConfig{ClientConfig: chconn.NewClientConfig(), Table: "aliases"})
			c.Aliases.ReloadInterval = 0
		}), "aliases.clickhouse.table: \"aliases\" is not database.table (plain identifiers)\n" +
			"aliases.reload_interval: must be positive, got 0s"},
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
