package decisionprocessor

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"

	"github.com/decisiontrace/decisiontrace/internal/chconn"
	"github.com/decisiontrace/decisiontrace/internal/contract"
)

// Config is the decision processor's configuration.
type Config struct {
	// Contracts are dependency contract files, one workflow each; glob
	// patterns are expanded. They are validated at start (and by
	// `decisiontrace validate`).
	Contracts []string `mapstructure:"contracts"`
	// VerdictWindow is how long after a decision's model output its
	// context reads may still arrive; the verdict goes out when every
	// required source has been read or the window has passed.
	VerdictWindow time.Duration `mapstructure:"verdict_window"`
	// MaxPendingDecisions bounds the decisions held while waiting; past it
	// the oldest is evicted and counted.
	MaxPendingDecisions int `mapstructure:"max_pending_decisions"`
	// Aliases map a source system's local entity ID to the canonical one.
	Aliases AliasesConfig `mapstructure:"aliases"`
	// QueueMetrics turn metrics of stock receivers (prometheus, rabbitmq,
	// redis, ...) into workflow-layer queue.depth signals.
	QueueMetrics []QueueMetric `mapstructure:"queue_metrics"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// AliasesConfig names the alias maps and how often they are reloaded.
type AliasesConfig struct {
	// Files are CSV files with the header system,local_id,canonical_id.
	Files []string `mapstructure:"files"`
	// ClickHouse reads the same three columns from a table; its entries
	// override the files'.
	ClickHouse configoptional.Optional[AliasTableConfig] `mapstructure:"clickhouse"`
	// ReloadInterval is how often changed files are reloaded, without a
	// restart.
	ReloadInterval time.Duration `mapstructure:"reload_interval"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// AliasTableConfig names a ClickHouse table with the columns system,
// local_id and canonical_id.
type AliasTableConfig struct {
	Endpoint string                                          `mapstructure:"endpoint"`
	Username string                                          `mapstructure:"username"`
	Password configopaque.String                             `mapstructure:"password"`
	TLS      configoptional.Optional[configtls.ClientConfig] `mapstructure:"tls"`
	// Table is database.table.
	Table string `mapstructure:"table"`

	// prevent unkeyed literal initialization
	_ struct{}
}

func (a *AliasTableConfig) databaseTable() (db, table string, ok bool) {
	db, table, found := strings.Cut(a.Table, ".")
	return db, table, found && chconn.Identifier(db) && chconn.Identifier(table)
}

// QueueMetric names a metric whose data points are a queue's depth.
type QueueMetric struct {
	// Metric is the metric name, e.g. rabbitmq.message.current.
	Metric string `mapstructure:"metric"`
	// Queue is a fixed queue name; QueueFrom names the data point or
	// resource attribute that holds it. Exactly one is set.
	Queue     string `mapstructure:"queue"`
	QueueFrom string `mapstructure:"queue_from"`
	// Workflow, when set, becomes decision.workflow of the signals.
	Workflow string `mapstructure:"workflow"`
	// Match keeps only data points whose attributes have these values.
	Match map[string]string `mapstructure:"match"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

// contractFiles expands the configured patterns.
func (cfg *Config) contractFiles() ([]string, error) {
	var files []string
	var errs []error
	for i, pattern := range cfg.Contracts {
		matches, err := filepath.Glob(pattern)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("contracts[%d]: %q: %w", i, pattern, err))
		case len(matches) == 0:
			errs = append(errs, fmt.Errorf("contracts[%d]: %q matches no file", i, pattern))
		}
		files = append(files, matches...)
	}
	return files, errors.Join(errs...)
}

// Validate checks the settings and the contracts themselves, so that
// `decisiontrace validate` catches a broken contract before a deploy does.
func (cfg *Config) Validate() error {
	var errs []error
	if len(cfg.Contracts) == 0 {
		errs = append(errs, errors.New("contracts: at least one dependency contract file is required"))
	}
	if cfg.VerdictWindow <= 0 {
		errs = append(errs, fmt.Errorf("verdict_window: must be positive, got %s", cfg.VerdictWindow))
	}
	if cfg.MaxPendingDecisions <= 0 {
		errs = append(errs, fmt.Errorf("max_pending_decisions: must be positive, got %d", cfg.MaxPendingDecisions))
	}
	if t := cfg.Aliases.ClickHouse.Get(); t != nil {
		if err := chconn.ValidateEndpoint(t.Endpoint); err != nil {
			errs = append(errs, fmt.Errorf("aliases.clickhouse.endpoint: %w", err))
		}
		if _, _, ok := t.databaseTable(); !ok {
			errs = append(errs, fmt.Errorf("aliases.clickhouse.table: %q is not database.table (plain identifiers)", t.Table))
		}
	}
	if (len(cfg.Aliases.Files) > 0 || cfg.Aliases.ClickHouse.HasValue()) && cfg.Aliases.ReloadInterval <= 0 {
		errs = append(errs, fmt.Errorf("aliases.reload_interval: must be positive, got %s", cfg.Aliases.ReloadInterval))
	}
	for i, q := range cfg.QueueMetrics {
		if q.Metric == "" {
			errs = append(errs, fmt.Errorf("queue_metrics[%d].metric: required", i))
		}
		if (q.Queue == "") == (q.QueueFrom == "") {
			errs = append(errs, fmt.Errorf("queue_metrics[%d]: set exactly one of queue and queue_from", i))
		}
	}
	files, err := cfg.contractFiles()
	errs = append(errs, err)
	if len(files) > 0 {
		_, err := contract.Load(files)
		errs = append(errs, err)
	}
	for i, f := range cfg.Aliases.Files {
		if _, err := loadAliasFile(f); err != nil {
			errs = append(errs, fmt.Errorf("aliases.files[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}
