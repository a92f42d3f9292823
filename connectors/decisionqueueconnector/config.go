package decisionqueueconnector

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"
)

// Config is the decisionqueue connector's configuration.
type Config struct {
	// QueueMetrics name the metrics whose data points are queue depths.
	QueueMetrics []QueueMetric `mapstructure:"queue_metrics"`

	// prevent unkeyed literal initialization
	_ struct{}
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

// Validate checks the configuration without changing it.
func (cfg *Config) Validate() error {
	var errs []error
	if len(cfg.QueueMetrics) == 0 {
		errs = append(errs, errors.New("queue_metrics: name at least one metric"))
	}
	for i, q := range cfg.QueueMetrics {
		if q.Metric == "" {
			errs = append(errs, fmt.Errorf("queue_metrics[%d].metric: required", i))
		}
		if (q.Queue == "") == (q.QueueFrom == "") {
			errs = append(errs, fmt.Errorf("queue_metrics[%d]: set exactly one of queue and queue_from", i))
		}
	}
	return errors.Join(errs...)
}
