package decisionstoreexporter

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/decisiontrace/decisiontrace/exporters/decisionstoreexporter/internal/metadata"
	"github.com/decisiontrace/decisiontrace/internal/chconn"
)

type storeExporter struct {
	cfg    *Config
	logger *zap.Logger

	conn driver.Conn

	// schemaMu guards schemaReady: the schema is created at start when
	// ClickHouse answers, or by the first push after it comes back, so a
	// briefly unreachable ClickHouse never stops the collector from starting.
	schemaMu    sync.Mutex
	schemaReady bool

	rowsInserted  metric.Int64Counter
	parseErrors   metric.Int64Counter
	unclassified  metric.Int64Counter
	insertsFailed metric.Int64Counter
}

func newExporter(cfg *Config, set exporter.Settings) (*storeExporter, error) {
	meter := set.MeterProvider.Meter(metadata.ScopeName)
	e := &storeExporter{cfg: cfg, logger: set.Logger}
	var errs, err error
	e.rowsInserted, err = meter.Int64Counter("otelcol_decisionstore_rows_inserted",
		metric.WithDescription("Events written to the ClickHouse events table."), metric.WithUnit("{event}"))
	errs = errors.Join(errs, err)
	e.parseErrors, err = meter.Int64Counter("otelcol_decisionstore_attribute_parse_errors",
		metric.WithDescription("decision.* attribute values that did not fit their convention; the raw value is stored in attributes and the record is kept."), metric.WithUnit("{attribute}"))
	errs = errors.Join(errs, err)
	e.unclassified, err = meter.Int64Counter("otelcol_decisionstore_unclassified_records",
		metric.WithDescription("Records without decision.* attributes, by what was done with them (stored or refused)."), metric.WithUnit("{record}"))
	errs = errors.Join(errs, err)
	e.insertsFailed, err = meter.Int64Counter("otelcol_decisionstore_inserts_failed",
		metric.WithDescription("Insert attempts that failed, by whether a retry can fix them (retryable or permanent)."), metric.WithUnit("{insert}"))
	errs = errors.Join(errs, err)
	return e, errs
}

func (e *storeExporter) start(ctx context.Context, _ component.Host) error {
	opts, err := clientOptions(e.cfg)
	if err != nil {
		return err
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return fmt.Errorf("decisionstore: open %s: %w", chconn.Redact(e.cfg.Endpoint), err)
	}
	e.conn = conn
	ctx, cancel := context.WithTimeout(ctx, 2*e.cfg.ConnectTimeout+e.cfg.Timeout)
	defer cancel()
	if err := e.ensureSchema(ctx); err != nil {
		if errors.Is(err, errSchemaTooNew) {
			return fmt.Errorf("decisionstore: %w", err)
		}
		e.logger.Warn("ClickHouse not ready at start; accepted data waits in the sending queue and the schema is created once it answers",
			zap.String("endpoint", chconn.Redact(e.cfg.Endpoint)), zap.Error(err))
	}
	return nil
}

func (e *storeExporter) shutdown(context.Context) error {
	if e.conn == nil {
		return nil
	}
	return e.conn.Close()
}

func (e *storeExporter) ensureSchema(ctx context.Context) error {
	e.schemaMu.Lock()
	defer e.schemaMu.Unlock()
	if e.schemaReady {
		return nil
	}
	from, to, err := migrate(ctx, e.conn, e.cfg.Database, e.cfg.layout())
	if err != nil {
		return err
	}
	if err := applyTTL(ctx, e.conn, e.cfg.Database, e.cfg.layout(), e.cfg.TTL); err != nil {
		return err
	}
	if from != to {
		e.logger.Info("decision store schema migrated", zap.String("database", e.cfg.Database), zap.Uint32("from", from), zap.Uint32("to", to))
	}
	e.schemaReady = true
	return nil
}

func (e *storeExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	return e.insert(ctx, newBuilder(e.cfg.Unclassified).logs(ld))
}

func (e *storeExporter) pushTraces(ctx context.Context, td ptrace.Traces) error {
	return e.insert(ctx, newBuilder(e.cfg.Unclassified).traces(td))
}

func (e *storeExporter) insert(ctx context.Context, r *rows) error {
	e.count(ctx, r)
	if r.len() == 0 {
		return nil
	}
	if err := e.ensureSchema(ctx); err != nil {
		if errors.Is(err, errSchemaTooNew) {
			return e.failed(ctx, consumererror.NewPermanent(err))
		}
		return e.failed(ctx, err)
	}
	settings := clickhouse.Settings{
		"insert_deduplication_token": r.dedupToken(),
		// ...and the rollup's materialized view drops it too: without this
		// ClickHouse skips the duplicate in events but still feeds it to
		// the view.
		"deduplicate_blocks_in_dependent_materialized_views": 1,
		// Send LowCardinality columns as plain strings and let the server
		// build the dictionaries: clickhouse-go's own LowCardinality encoder
		// hashes every value through an interface and was a tenth of the
		// collector's CPU.
		"low_cardinality_allow_in_native_format": 0,
	}
	if e.cfg.layout().cluster != "" {
		// The insert returns once every shard has its part: a failure is
		// seen, and retried, instead of waiting in the Distributed
		// table's own queue on one server.
		settings["distributed_foreground_insert"] = 1
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(settings))
	if err := e.send(ctx, r); err != nil {
		return e.failed(ctx, classify(err))
	}
	e.rowsInserted.Add(ctx, int64(r.len()))
	return nil
}

// send writes one request as one native batch.
func (e *storeExporter) send(ctx context.Context, r *rows) error {
	batch, err := e.conn.PrepareBatch(ctx, insertStatement(e.cfg.Database))
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	defer func() { _ = batch.Close() }()
	for i, col := range r.columns() {
		if err := batch.Column(i).Append(col); err != nil {
			return consumererror.NewPermanent(fmt.Errorf("append column %s: %w", insertColumns[i], err))
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("send %d events: %w", r.len(), err)
	}
	return nil
}

func (e *storeExporter) count(ctx context.Context, r *rows) {
	for key, n := range r.parseErrorsByKey {
		e.parseErrors.Add(ctx, int64(n), metric.WithAttributes(attribute.String("attribute", key)))
	}
	if r.unclassifiedStored > 0 {
		e.unclassified.Add(ctx, int64(r.unclassifiedStored), metric.WithAttributes(attribute.String("action", "stored")))
	}
	if r.unclassifiedRefused > 0 {
		e.unclassified.Add(ctx, int64(r.unclassifiedRefused), metric.WithAttributes(attribute.String("action", "refused")))
		e.logger.Debug("refused records without decision.* attributes", zap.Int("records", r.unclassifiedRefused))
	}
}

func (e *storeExporter) failed(ctx context.Context, err error) error {
	kind := "retryable"
	if consumererror.IsPermanent(err) {
		kind = "permanent"
	}
	e.insertsFailed.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", kind)))
	return err
}

// permanentCodes are ClickHouse exception codes for which resending the same
// rows cannot succeed: the data or the statement is wrong, not the moment.
var permanentCodes = map[int32]string{
	6:   "CANNOT_PARSE_TEXT",
	16:  "NO_SUCH_COLUMN_IN_TABLE",
	27:  "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
	41:  "CANNOT_PARSE_DATETIME",
	47:  "UNKNOWN_IDENTIFIER",
	53:  "TYPE_MISMATCH",
	62:  "SYNTAX_ERROR",
	69:  "ARGUMENT_OUT_OF_BOUND",
	70:  "CANNOT_CONVERT_TYPE",
	117: "INCORRECT_DATA",
	131: "TOO_LARGE_STRING_SIZE",
}

// classify marks errors that retrying cannot fix as permanent; everything
// else (network, server overload, a missing table while ClickHouse restarts,
// authentication an operator may fix) stays retryable so nothing accepted is
// dropped by the exporter's own judgement.
func classify(err error) error {
	if consumererror.IsPermanent(err) {
		return err
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		if _, ok := permanentCodes[ex.Code]; ok {
			return consumererror.NewPermanent(err)
		}
	}
	return err
}

func clientOptions(cfg *Config) (*clickhouse.Options, error) {
	opts, err := chconn.Options(chconn.Settings{
		Endpoint: cfg.Endpoint, Username: cfg.Username, Password: cfg.Password,
		TLS: cfg.TLS, DialTimeout: cfg.ConnectTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("decisionstore: %w", err)
	}
	return opts, nil
}
