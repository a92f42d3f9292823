package alertrulesreceiver

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"

	"github.com/decisiontrace/decisiontrace/internal/chconn"
	"github.com/decisiontrace/decisiontrace/internal/contract"
	"github.com/decisiontrace/decisiontrace/internal/rules"
	"github.com/decisiontrace/decisiontrace/internal/store"
)

// Config is the alertrules receiver's configuration.
type Config struct {
	// The decision store: the same ClickHouse settings as the decisionstore
	// exporter's.
	chconn.ClientConfig `mapstructure:",squash"`
	Database            string `mapstructure:"database"`
	// Cluster is the store's clustered layout, as the decisionstore
	// exporter's: the receiver migrates the schema too, and writes alert
	// state through the Distributed tables. Unset: one server.
	Cluster configoptional.Optional[store.ClusterConfig] `mapstructure:"cluster"`

	// RuleFiles are rule files; glob patterns are expanded.
	RuleFiles []string `mapstructure:"rule_files"`
	// Contracts give each workflow its default rules; glob patterns allowed.
	Contracts []string `mapstructure:"contracts"`
	// ContractRulesInterval is the evaluation interval of contract rules.
	ContractRulesInterval time.Duration `mapstructure:"contract_rules_interval"`
	// VerdictRefreshInterval is how often the decisions whose verdict may
	// have changed are judged again (verdicts), which the verdict rules
	// read: how late a verdict rate can be.
	VerdictRefreshInterval time.Duration `mapstructure:"verdict_refresh_interval"`
	// QueryTimeout bounds one query: a rule's, or that of the rules
	// evaluated together.
	QueryTimeout time.Duration `mapstructure:"query_timeout"`
	// RuleQueryConcurrency is how many queries of a group's rules run at
	// once (Prometheus' rule_query_concurrency); results are applied in
	// the group's order whatever it is.
	RuleQueryConcurrency int `mapstructure:"rule_query_concurrency"`
	// DashboardURL is a Go template for an alert's generatorURL and the
	// {{ .DashboardURL }} of annotations; it sees the alert's labels.
	DashboardURL string `mapstructure:"dashboard_url"`
	// ResendInterval is how often every firing alert is sent again, as
	// Prometheus' rule manager does (its resend delay): the Alertmanager
	// exporter sets endsAt ahead of each send, so a firing alert stays in
	// Alertmanager while this receiver runs and leaves it by itself when it
	// stops, and a record lost on the way arrives with the next send.
	ResendInterval time.Duration `mapstructure:"resend_interval"`
	// ExampleDecisions is how many recent decision IDs that show a firing
	// alert's condition its annotations get ({{ .ExampleDecisions }}); 0
	// turns the lookup off.
	ExampleDecisions int `mapstructure:"example_decisions"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

// Validate checks the settings, the rule files and the contracts, so that
// `decisiontrace validate` catches a broken rule before a deploy does.
func (cfg *Config) Validate() error {
	errs := cfg.ClientConfig.Problems()
	if !chconn.Identifier(cfg.Database) {
		errs = append(errs, fmt.Errorf("database: %q is not a plain identifier", cfg.Database))
	}
	if len(cfg.RuleFiles) == 0 && len(cfg.Contracts) == 0 {
		errs = append(errs, errors.New("rule_files, contracts: name at least one rule file or contract"))
	}
	if cfg.ContractRulesInterval <= 0 {
		errs = append(errs, fmt.Errorf("contract_rules_interval: must be positive, got %s", cfg.ContractRulesInterval))
	}
	if cfg.VerdictRefreshInterval <= 0 {
		errs = append(errs, fmt.Errorf("verdict_refresh_interval: must be positive, got %s", cfg.VerdictRefreshInterval))
	}
	if cfg.QueryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("query_timeout: must be positive, got %s", cfg.QueryTimeout))
	}
	if cfg.ResendInterval <= 0 {
		errs = append(errs, fmt.Errorf("resend_interval: must be positive, got %s", cfg.ResendInterval))
	}
	if cfg.RuleQueryConcurrency < 1 || cfg.RuleQueryConcurrency > 64 {
		errs = append(errs, fmt.Errorf("rule_query_concurrency: must be between 1 and 64, got %d", cfg.RuleQueryConcurrency))
	}
	if cfg.ExampleDecisions < 0 || cfg.ExampleDecisions > 100 {
		errs = append(errs, fmt.Errorf("example_decisions: must be between 0 and 100, got %d", cfg.ExampleDecisions))
	}
	if _, err := dashboardTemplate(cfg.DashboardURL); err != nil {
		errs = append(errs, fmt.Errorf("dashboard_url: %w", err))
	}
	if c := cfg.Cluster.Get(); c != nil {
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("cluster.%w", err))
		}
	}
	if _, _, err := cfg.loadRules(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (cfg *Config) layout() store.Layout { return store.LayoutOf(cfg.Cluster.Get()) }

// group is rules evaluated together.
type group struct {
	name     string
	interval time.Duration
	rules    []*rules.Rule
}

// loadRules loads the rule files and the contracts, with the contracts'
// default rules.
func (cfg *Config) loadRules() ([]group, map[string]*contract.Contract, error) {
	ruleFiles, errs := contract.Expand("", "rule_files", cfg.RuleFiles)
	contractFiles, errContracts := contract.Expand("", "contracts", cfg.Contracts)
	contracts, errLoad := contract.Load(contractFiles)
	loaded, err := rules.Load(ruleFiles, contracts, cfg.ContractRulesInterval)
	out := make([]group, 0, len(loaded))
	for gi := range loaded {
		g := group{name: loaded[gi].Name, interval: loaded[gi].Interval.D()}
		for ri := range loaded[gi].Rules {
			g.rules = append(g.rules, &loaded[gi].Rules[ri])
		}
		out = append(out, g)
	}
	if err := errors.Join(append(append(errs, errContracts...), errLoad, err)...); err != nil {
		return out, nil, err
	}
	return out, contracts, nil
}
