package decisionstoreexporter

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/decisiontrace/decisiontrace/exporters/decisionstoreexporter/internal/metadata"
	"github.com/decisiontrace/decisiontrace/internal/chconn"
	"github.com/decisiontrace/decisiontrace/internal/store"
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
		TimeoutConfig: exporterhelper.TimeoutConfig{Timeout: 10 * time.Second},
		QueueConfig:   configoptional.Some(queue),
		BackOffConfig: retry,
		ClientConfig:  chconn.NewClientConfig(),
		Database:      "decisiontrace",
		TTL:           30 * 24 * time.Hour,
		Unclassified:  UnclassifiedStore,
	}
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	c := cfg.(*Config)
	e, err := newExporter(c, set)
	if err != nil {
		return nil, err
	}
	exp, err := exporterhelper.NewLogs(ctx, set, cfg, e.pushLogs, options(c, e)...)
	if err != nil {
		return nil, err
	}
	return &flatLogs{Logs: exp, e: e}, nil
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	c := cfg.(*Config)
	e, err := newExporter(c, set)
	if err != nil {
		return nil, err
	}
	exp, err := exporterhelper.NewTraces(ctx, set, cfg, e.pushTraces, options(c, e)...)
	if err != nil {
		return nil, err
	}
	return &flatTraces{Traces: exp, e: e}, nil
}

// flatLogs and flatTraces see every request before the sending queue,
// whichever receiver took it: acknowledged data must be storable. They
// refuse a request with records outside the retention (store.Retention),
// and take values nested deeper than a persistent queue can read back as
// their JSON text (see store.MaxNesting).
type flatLogs struct {
	exporter.Logs
	e *storeExporter
}

func (f *flatLogs) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if refused := (store.Retention{TTL: f.e.cfg.TTL}).Logs(ld, f.e.now()); refused.Len() > 0 {
		return f.e.refuse(ctx, refused)
	}
	ld, n := store.FlattenDeepLogs(ld)
	f.e.countFlattened(ctx, n)
	return refusal(f.Logs.ConsumeLogs(ctx, ld))
}

type flatTraces struct {
	exporter.Traces
	e *storeExporter
}

func (f *flatTraces) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	if refused := (store.Retention{TTL: f.e.cfg.TTL}).Traces(td, f.e.now()); refused.Len() > 0 {
		return f.e.refuse(ctx, refused)
	}
	td, n := store.FlattenDeepTraces(td)
	f.e.countFlattened(ctx, n)
	return refusal(f.Traces.ConsumeTraces(ctx, td))
}

// queueFullRetryAfter is how long a client is asked to wait when the
// sending queue is full.
const queueFullRetryAfter = 5 * time.Second

// refusal turns a full sending queue into the answer OTLP clients retry
// on, with when to retry: Unavailable with RetryInfo, which the OTLP
// receiver sends as gRPC status details and as HTTP 503 with Retry-After.
// The request was not accepted, so nothing of it is lost.
func refusal(err error) error {
	if !errors.Is(err, exporterhelper.ErrQueueIsFull) {
		return err
	}
	st, derr := status.New(codes.Unavailable, "the decision store's sending queue is full (ClickHouse unreachable or slower than the traffic): retry later").
		WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(queueFullRetryAfter)})
	if derr != nil {
		return err
	}
	return st.Err()
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
