package alertrulesreceiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/decisiontrace/decisiontrace/internal/chconn"
	"github.com/decisiontrace/decisiontrace/receivers/alertrulesreceiver/internal/metadata"
)

// NewFactory returns the alertrules receiver factory.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		ClientConfig:           chconn.NewClientConfig(),
		Database:               "decisiontrace",
		ContractRulesInterval:  30 * time.Second,
		VerdictRefreshInterval: 15 * time.Second,
		QueryTimeout:           10 * time.Second,
		RuleQueryConcurrency:   1,
		ResendInterval:         time.Minute,
		ExampleDecisions:       3,
	}
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return newReceiver(cfg.(*Config), set, next)
}
