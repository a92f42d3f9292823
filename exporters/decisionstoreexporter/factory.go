package decisionstoreexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/decisiontrace/decisiontrace/exporters/decisionstoreexporter/internal/metadata"
)

// NewFactory returns the decisionstore exporter factory.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithLogs(createLogs, metadata.LogsStability),
		exporter.WithTraces(createTraces, metadata.TracesStability),
	)
}

func createDefaultConfig() component.Config {
	queue := exporterhelper.NewDefaultQueueConfig()
	// ClickHouse wants few large inserts. Batching after the queue (rather
	// than in a batch processor in front of it) keeps a persistent queue's
	// promise: what the receiver acknowledged is on disk.
	batch := exporterhelper.NewDefaultBatchConfig()
	batch.FlushTimeout = time.Second
	batch.MinSize = 10000
	batch.MaxSize = 20000
	queue.Batch = configoptional.Some(batch)
	retry := configretry.NewDefaultBackOffConfig()
	// Never give up on accepted data because ClickHouse is down for long.
	retry.MaxElapsedTime = 0
	return &Config{
		TimeoutConfig:  exporterhelper.TimeoutConfig{Timeout: 10 * time.Second},
		QueueConfig:    configoptional.Some(queue),
		BackOffConfig:  retry,
		Endpoint:       "clickhouse://127.0.0.1:9000",
		Database:       "decisiontrace",
		ConnectTimeout: 5 * time.Second,
		TTL:            30 * 24 * time.Hour,
		Unclassified:   UnclassifiedStore,
	}
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	c := cfg.(*Config)
	e, err := newExporter(c, set)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewLogs(ctx, set, cfg, e.pushLogs, options(c, e)...)
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	c := cfg.(*Config)
	e, err := newExporter(c, set)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewTraces(ctx, set, cfg, e.pushTraces, options(c, e)...)
}

func options(c *Config, e *storeExporter) []exporterhelper.Option {
	return []exporterhelper.Option{
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithQueue(c.QueueConfig),
		exporterhelper.WithRetry(c.BackOffConfig),
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
	}
}
