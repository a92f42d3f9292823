package decisioneventsreceiver

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
)

// Config is the decisionevents receiver's configuration.
type Config struct {
	// ServerConfig brings endpoint, tls, auth, cors, max_request_body_size,
	// include_metadata and the rest of the collector's HTTP server settings,
	// so the receiver is secured and limited like any other HTTP receiver.
	confighttp.ServerConfig `mapstructure:",squash"`

	// MaxEventsPerRequest bounds the events of one request; a request with
	// more is refused whole (413), naming this limit, before it is converted.
	MaxEventsPerRequest int `mapstructure:"max_events_per_request"`
	// MaxAttributesPerEvent bounds the values of an event's free-form
	// attributes and resource maps together (every key and array element, at
	// any depth); an event over it is refused.
	MaxAttributesPerEvent int `mapstructure:"max_attributes_per_event"`
	// RetryAfter is the Retry-After the client is given when the pipeline
	// refuses data it may take later (memory_limiter, full queue).
	RetryAfter time.Duration `mapstructure:"retry_after"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration without changing it.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.NetAddr.Endpoint == "" {
		errs = append(errs, errors.New("endpoint: must be set, e.g. localhost:4320"))
	}
	if cfg.MaxRequestBodySize < 0 {
		errs = append(errs, fmt.Errorf("max_request_body_size: must not be negative, got %d", cfg.MaxRequestBodySize))
	}
	if cfg.MaxEventsPerRequest < 1 {
		errs = append(errs, fmt.Errorf("max_events_per_request: must be at least 1, got %d", cfg.MaxEventsPerRequest))
	}
	if cfg.MaxAttributesPerEvent < 1 {
		errs = append(errs, fmt.Errorf("max_attributes_per_event: must be at least 1, got %d", cfg.MaxAttributesPerEvent))
	}
	if cfg.RetryAfter < time.Second {
		errs = append(errs, fmt.Errorf("retry_after: must be at least 1s, got %s", cfg.RetryAfter))
	} else if cfg.RetryAfter%time.Second != 0 {
		// Retry-After carries whole seconds only.
		errs = append(errs, fmt.Errorf("retry_after: must be a whole number of seconds, got %s", cfg.RetryAfter))
	}
	return errors.Join(errs...)
}
