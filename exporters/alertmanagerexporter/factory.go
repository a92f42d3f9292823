package alertmanagerexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/xexporter"

	"github.com/decisiontrace/decisiontrace/exporters/alertmanagerexporter/internal/metadata"
)

// DeprecatedType is the type this exporter had before version 0.3, when
// it took the name of contrib's Alertmanager exporter (which turns span
// events into alerts), so that no distribution could hold both.
var DeprecatedType = component.MustNewType("alertmanager")

// NewFactory returns the decisionalertmanager exporter factory, for a
// distribution of any components (contrib's alertmanager exporter too).
func NewFactory() exporter.Factory {
	return xexporter.NewFactory(metadata.Type, createDefaultConfig,
		xexporter.WithLogs(createLogs, metadata.LogsStability))
}

// NewFactoryWithDeprecatedType is NewFactory that also answers to the old
// type, alertmanager, logging that it is deprecated: decisiontrace's own
// distribution uses it, so configurations written for 0.2 still load.
func NewFactoryWithDeprecatedType() exporter.Factory {
	return xexporter.NewFactory(metadata.Type, createDefaultConfig,
		xexporter.WithLogs(createLogs, metadata.LogsStability),
		xexporter.WithDeprecatedTypeAlias(DeprecatedType))
}

func createDefaultConfig() component.Config {
	queue := exporterhelper.NewDefaultQueueConfig()
	// One consumer keeps the records in order: a firing record retried
	// after the resolve of the same alert would page again.
	queue.NumConsumers = 1
	retry := configretry.NewDefaultBackOffConfig()
	// An alert waits for Alertmanager to come back rather than being
	// dropped; the queue's size bounds what waits.
	retry.MaxElapsedTime = 0
	client := confighttp.NewDefaultClientConfig()
	client.Timeout = 10 * time.Second
	return &Config{
		ClientConfig:  client,
		QueueConfig:   configoptional.Some(queue),
		BackOffConfig: retry,
		Endpoints:     []string{"http://127.0.0.1:9093"},
		EndsAtAhead:   4 * time.Minute,
	}
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	c := cfg.(*Config)
	e, err := newExporter(c, set)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewLogs(ctx, set, cfg, e.pushLogs,
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		// No deadline of exporterhelper's own: the client's timeout bounds
		// each POST, and a push posts to every endpoint at once.
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{}),
		exporterhelper.WithQueue(c.QueueConfig),
		exporterhelper.WithRetry(c.BackOffConfig),
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
	)
}
