package decisionqueueconnector

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"

	"github.com/decisiontrace/decisiontrace/connectors/decisionqueueconnector/internal/metadata"
)

// NewFactory returns the decisionqueue connector factory.
func NewFactory() connector.Factory {
	return connector.NewFactory(
		metadata.Type,
		createDefaultConfig,
		connector.WithMetricsToLogs(createMetricsToLogs, metadata.MetricsToLogsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{}
}

func createMetricsToLogs(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Logs) (connector.Metrics, error) {
	return &queueConnector{cfg: cfg.(*Config), next: next, logger: set.Logger}, nil
}
