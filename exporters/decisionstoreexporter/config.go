package decisionstoreexporter

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/decisiontrace/decisiontrace/internal/chconn"
	"github.com/decisiontrace/decisiontrace/internal/store"
)

// Unclassified says what happens to a record that carries no decision.*
// attribute.
type Unclassified string

const (
	// UnclassifiedStore keeps the record with layer "unclassified".
	UnclassifiedStore Unclassified = "store"
	// UnclassifiedRefuse counts and logs the record and does not store it.
	UnclassifiedRefuse Unclassified = "refuse"
)

// Config is the decisionstore exporter's configuration.
type Config struct {
	exporterhelper.TimeoutConfig `mapstructure:",squash"`
	QueueConfig                  configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	BackOffConfig                configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`

	// The ClickHouse; connect_timeout also bounds the schema check at
	// start.
	chconn.ClientConfig `mapstructure:",squash"`
	// Database is owned by decisiontrace: created and migrated at start.
	Database string `mapstructure:"database"`
	// TTL is how long events are kept; 0 keeps them forever. A change is
	// applied to the existing tables at the next start.
	TTL time.Duration `mapstructure:"ttl"`
	// Unclassified is "store" or "refuse".
	Unclassified Unclassified `mapstructure:"unclassified"`
	// Cluster lays the schema out on a ClickHouse cluster: on every shard
	// local tables (events_local, decisions_local), behind Distributed
	// tables of the usual names sharded by decision ID, all created
	// ON CLUSTER. Unset: one server.
	Cluster configoptional.Optional[store.ClusterConfig] `mapstructure:"cluster"`

	// prevent unkeyed literal initialization
	_ struct{}
}

func (cfg *Config) layout() store.Layout { return store.LayoutOf(cfg.Cluster.Get()) }

var _ component.Config = (*Config)(nil)

// Validate checks the configuration without changing it.
func (cfg *Config) Validate() error {
	errs := cfg.ClientConfig.Problems()
	if !chconn.Identifier(cfg.Database) {
		errs = append(errs, fmt.Errorf("database: %q is not a plain identifier (letters, digits, underscore; not starting with a digit)", cfg.Database))
	}
	if cfg.TTL < 0 {
		errs = append(errs, fmt.Errorf("ttl: must not be negative, got %s", cfg.TTL))
	} else if cfg.TTL%time.Second != 0 {
		errs = append(errs, fmt.Errorf("ttl: must be a whole number of seconds, got %s", cfg.TTL))
	}
	switch cfg.Unclassified {
	case UnclassifiedStore, UnclassifiedRefuse:
	default:
		errs = append(errs, fmt.Errorf("unclassified: %q is not one of store, refuse", cfg.Unclassified))
	}
	if c := cfg.Cluster.Get(); c != nil {
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("cluster.%w", err))
		}
	}
	return errors.Join(errs...)
}
