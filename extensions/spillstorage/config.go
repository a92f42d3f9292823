package spillstorage

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"
)

// Config of the spillstorage extension.
type Config struct {
	// Storage is the storage extension that keeps the keys, the small
	// values and, for each large value, the name of its file; a write is
	// committed there, atomically, after its files are written.
	Storage component.ID `mapstructure:"storage"`
	// Directory holds the large values, a subdirectory per client; it is
	// created when missing.
	Directory string `mapstructure:"directory"`
	// MinFileSize is the size from which a value is written to a file of
	// its own instead of into Storage.
	MinFileSize int `mapstructure:"min_file_size"`
	// FSync makes each value file reach the disk before the write that
	// names it commits (as file_storage's fsync; off, a write survives the
	// process being killed, not the machine losing power).
	FSync bool `mapstructure:"fsync"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration; it changes nothing.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.Storage.Type().String() == "" {
		errs = append(errs, errors.New("storage: name the storage extension that keeps the keys (for example file_storage)"))
	}
	if cfg.Directory == "" {
		errs = append(errs, errors.New("directory: must be set"))
	}
	if cfg.MinFileSize < 1 {
		errs = append(errs, fmt.Errorf("min_file_size: must be positive, got %d", cfg.MinFileSize))
	}
	return errors.Join(errs...)
}
