package decisionprocessor

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"go.opentelemetry.io/collector/component"

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

	// prevent unkeyed literal initialization
	_ struct{}
}

// AliasesConfig names the alias maps and how often they are reloaded.
type AliasesConfig struct {
	// Files are CSV files with the header system,local_id,canonical_id.
	Files []string `mapstructure:"files"`
	// ReloadInterval is how often changed files are reloaded, without a
	// restart.
	ReloadInterval time.Duration `mapstructure:"reload_interval"`

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
	if len(cfg.Aliases.Files) > 0 && cfg.Aliases.ReloadInterval <= 0 {
		errs = append(errs, fmt.Errorf("aliases.reload_interval: must be positive, got %s", cfg.Aliases.ReloadInterval))
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
