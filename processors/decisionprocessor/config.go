package decisionprocessor

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"

	"github.com/decisiontrace/decisiontrace/internal/chconn"
	"github.com/decisiontrace/decisiontrace/internal/contract"
)

// Config is the decision processor's configuration. The processor holds no
// decision state, so nothing here concerns verdicts: the decision store
// derives them from the stored events (see the README's migration note).
type Config struct {
	// Aliases map a source system's local entity ID to the canonical one.
	Aliases AliasesConfig `mapstructure:"aliases"`

	// UnknownWorkflows is what becomes of a record whose decision.workflow
	// is not in KnownWorkflows: a workflow name is whatever a producer
	// sends. store keeps it as it is; tag keeps it with
	// decision.workflow.unknown=true; refuse refuses the request that
	// carries it, as a permanent error naming the workflow (the OTLP
	// receiver cannot take part of a request, so its other records are
	// refused with it, never acknowledged and dropped).
	UnknownWorkflows UnknownWorkflowPolicy `mapstructure:"unknown_workflows"`
	// KnownWorkflows are the workflows with a contract and those named.
	KnownWorkflows KnownWorkflowsConfig `mapstructure:"known_workflows"`

	// DecisionIDFromTraceID gives a decision signal without decision.id
	// its trace's ID, so that one traced request is one decision: GenAI
	// instrumentation (OpenLLMetry, OpenInference) records the model call
	// and the retrieval of one request in one trace, and knows no
	// decision ID. Signals of a source or queue (source.freshness,
	// queue.depth) are left alone.
	DecisionIDFromTraceID bool `mapstructure:"decision_id_from_trace_id"`

	// Version 1's verdict settings, read only so that Validate can refuse
	// them saying what replaced each (see removedSetting).
	RemovedContracts           any `mapstructure:"contracts"`
	RemovedVerdictWindow       any `mapstructure:"verdict_window"`
	RemovedMaxPendingDecisions any `mapstructure:"max_pending_decisions"`
	// queue_metrics moved to the decisionqueue connector.
	RemovedQueueMetrics any `mapstructure:"queue_metrics"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// UnknownWorkflowPolicy is one of store, tag and refuse.
type UnknownWorkflowPolicy string

// The policies for a record of an unknown workflow.
const (
	UnknownWorkflowsStore  UnknownWorkflowPolicy = "store"
	UnknownWorkflowsTag    UnknownWorkflowPolicy = "tag"
	UnknownWorkflowsRefuse UnknownWorkflowPolicy = "refuse"
)

// KnownWorkflowsConfig lists the workflows a producer may name.
type KnownWorkflowsConfig struct {
	// Contracts are contract files (patterns), as the alertrules
	// receiver's: their workflows are known.
	Contracts []string `mapstructure:"contracts"`
	// Names are further known workflows, without a contract.
	Names []string `mapstructure:"names"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// known returns the set of known workflows.
func (k *KnownWorkflowsConfig) known() (map[string]bool, error) {
	files, errs := contract.Expand("", "known_workflows.contracts", k.Contracts)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out, err := contract.Workflows(files)
	if err != nil {
		return nil, fmt.Errorf("known_workflows.contracts: %w", err)
	}
	for _, wf := range k.Names {
		out[wf] = true
	}
	return out, nil
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
	// The ClickHouse: the same settings as the decisionstore exporter's.
	chconn.ClientConfig `mapstructure:",squash"`
	// Table is database.table.
	Table string `mapstructure:"table"`

	// prevent unkeyed literal initialization
	_ struct{}
}

func (a *AliasTableConfig) databaseTable() (db, table string, ok bool) {
	db, table, found := strings.Cut(a.Table, ".")
	return db, table, found && chconn.Identifier(db) && chconn.Identifier(table)
}

var _ component.Config = (*Config)(nil)

// removedSetting is a setting an earlier processor had (version 1's
// verdict tracker, its queue metrics), with what replaced it. A
// configuration that still sets one is refused with this text, rather than
// with the collector's bare "invalid keys", so that whoever upgrades learns
// where it went.
type removedSetting struct {
	key, instead string
	value        any
}

func (cfg *Config) removedSettings() []removedSetting {
	return []removedSetting{
		{"contracts", "verdicts are derived by the decision store, against the contracts written into it (list the files in the alertrules receiver's contracts)", cfg.RemovedContracts},
		{"verdict_window", "verdicts are derived by the decision store, where a decision whose context is late stays pending until the context arrives or the contract's max_context_lag has passed", cfg.RemovedVerdictWindow},
		{"max_pending_decisions", "the processor holds no decisions", cfg.RemovedMaxPendingDecisions},
		{"queue_metrics", "queue metrics become queue.depth signals in the decisionqueue connector: move the list to connectors: decisionqueue: queue_metrics, put decisionqueue among the metrics pipeline's exporters and the logs pipeline's receivers, and take this processor out of the metrics pipeline", cfg.RemovedQueueMetrics},
	}
}

// Validate checks the settings, and the alias files themselves, so that
// `decisiontrace validate` catches a broken map before a deploy does.
func (cfg *Config) Validate() error {
	var errs []error
	for _, s := range cfg.removedSettings() {
		if s.value != nil {
			errs = append(errs, fmt.Errorf("%s: removed: %s; delete it (see the migration note in the decision processor's README)", s.key, s.instead))
		}
	}
	if t := cfg.Aliases.ClickHouse.Get(); t != nil {
		for _, err := range t.ClientConfig.Problems() {
			errs = append(errs, fmt.Errorf("aliases.clickhouse.%w", err))
		}
		if _, _, ok := t.databaseTable(); !ok {
			errs = append(errs, fmt.Errorf("aliases.clickhouse.table: %q is not database.table (plain identifiers)", t.Table))
		}
	}
	if cfg.reconciles() && cfg.Aliases.ReloadInterval <= 0 {
		errs = append(errs, fmt.Errorf("aliases.reload_interval: must be positive, got %s", cfg.Aliases.ReloadInterval))
	}
	for i, f := range cfg.Aliases.Files {
		if _, err := loadAliasFile(f); err != nil {
			errs = append(errs, fmt.Errorf("aliases.files[%d]: %w", i, err))
		}
	}
	switch cfg.UnknownWorkflows {
	case UnknownWorkflowsStore:
	case UnknownWorkflowsTag, UnknownWorkflowsRefuse:
		if len(cfg.KnownWorkflows.Contracts) == 0 && len(cfg.KnownWorkflows.Names) == 0 {
			errs = append(errs, fmt.Errorf("known_workflows: required with unknown_workflows: %s (contracts or names)", cfg.UnknownWorkflows))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown_workflows: %q is not one of store, tag, refuse", cfg.UnknownWorkflows))
	}
	for i, wf := range cfg.KnownWorkflows.Names {
		if wf == "" {
			errs = append(errs, fmt.Errorf("known_workflows.names[%d]: empty", i))
		}
	}
	if _, err := cfg.KnownWorkflows.known(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// reconciles is whether any alias map is configured: without one there is
// nothing to reconcile identifiers against.
func (cfg *Config) reconciles() bool {
	return len(cfg.Aliases.Files) > 0 || cfg.Aliases.ClickHouse.HasValue()
}
