package sourcefreshnessreceiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/decisiontrace/decisiontrace/receivers/sourcefreshnessreceiver/internal/metadata"
)

// Defaults of every source and queue that sets no interval or timeout of its
// own.
const (
	defaultInterval = 30 * time.Second
	defaultTimeout  = 5 * time.Second
)

// NewFactory returns the sourcefreshness receiver factory.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Interval: defaultInterval,
		Timeout:  defaultTimeout,
	}
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return newReceiver(cfg.(*Config), set, next)
}
