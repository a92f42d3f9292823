package decisioneventsreceiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/decisiontrace/decisiontrace/receivers/decisioneventsreceiver/internal/metadata"
)

// defaultEndpoint sits next to OTLP's 4317 (gRPC) and 4318 (HTTP); 4319 is
// left alone because some distributions already use it for a second OTLP
// listener.
const defaultEndpoint = "localhost:4320"

// NewFactory returns the decisionevents receiver factory.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = defaultEndpoint
	// Set explicitly (it is confighttp's own default) so the limit the
	// receiver names in its 413 answers is the one in the configuration.
	srv.MaxRequestBodySize = 20 << 20
	// A client that declares a body and sends it slowly, or never, must
	// not hold a connection: confighttp reads bodies without a deadline
	// unless read_timeout is set.
	srv.ReadHeaderTimeout = 10 * time.Second
	srv.ReadTimeout = 30 * time.Second
	return &Config{
		ServerConfig:          srv,
		MaxEventsPerRequest:   10000,
		MaxAttributesPerEvent: 128,
		RetryAfter:            5 * time.Second,
	}
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return newReceiver(cfg.(*Config), set, next)
}
