package decisionstoreexporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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
	"github.com/decisiontrace/decisiontrace/internal/decision"
	"github.com/decisiontrace/decisiontrace/internal/store"
)

type storeExporter struct {
	cfg    *Config
	logger *zap.Logger

	conn  driver.Conn
	store *store.Store

	// The schema is created or migrated by one goroutine, started at
	// start, that keeps trying until it is done (schemaDone closes) or the
	// store is too new for this binary (schemaErr, set before). The
	// migration has no deadline: a step that copies a large table may take
	// minutes, and one cut off by each push's timeout would start over
	// forever. Until it is done, pushes wait within their deadline and then
	// fail as retryable: accepted data waits in the sending queue. An
	// unreachable ClickHouse, or a long migration, never stops or holds up
	// the collector's start.
	schemaDone chan struct{}
	schemaErr  error
	versionErr error // of the first version check, for start
	stopSchema context.CancelFunc
	stopped    <-chan struct{} // closed by shutdown
	schemaWG   sync.WaitGroup

	rowsInserted  metric.Int64Counter
	parseErrors   metric.Int64Counter
	unclassified  metric.Int64Counter
	insertsFailed metric.Int64Counter
	flattened     metric.Int64Counter
	refused       metric.Int64Counter

	// now is the clock records are judged against for retention; tests
	// set it.
	now func() time.Time
}

func newExporter(cfg *Config, set exporter.Settings) (*storeExporter, error) {
	e := &storeExporter{cfg: cfg, logger: set.Logger, now: time.Now, schemaDone: make(chan struct{})}
	// Its own metrics, as metadata.yaml declares them.
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	e.rowsInserted = tb.DecisionstoreRowsInserted
	e.parseErrors = tb.DecisionstoreAttributeParseErrors
	e.unclassified = tb.DecisionstoreUnclassifiedRecords
	e.flattened = tb.DecisionstoreFlattenedValues
	e.refused = tb.DecisionstoreRefusedRecords
	e.insertsFailed = tb.DecisionstoreInsertsFailed
	return e, nil
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
	e.store = store.New(conn, e.cfg.Database, e.cfg.layout())
	schemaCtx, stop := context.WithCancel(context.Background())
	e.stopped, e.stopSchema = schemaCtx.Done(), stop
	checked := make(chan struct{})
	e.schemaWG.Add(1)
	go e.ensureSchema(schemaCtx, checked)
	// Start waits for the version check, which is quick when ClickHouse
	// answers: a schema too new for this binary is a configuration error.
	wait := time.NewTimer(2*e.cfg.ConnectTimeout + e.cfg.Timeout)
	defer wait.Stop()
	select {
	case <-checked:
		if errors.Is(e.versionErr, store.ErrSchemaTooNew) {
			return fmt.Errorf("decisionstore: %w", e.versionErr)
		}
	case <-wait.C:
	case <-ctx.Done():
	}
	return nil
}

var errSchemaNotReady = errors.New("decision store schema not ready: ClickHouse unreachable since start, or a migration still running (see the decisionstore exporter's log)")

func (e *storeExporter) shutdown(context.Context) error {
	if e.stopSchema != nil {
		e.stopSchema()
		e.schemaWG.Wait()
	}
	if e.conn == nil {
		return nil
	}
	return e.conn.Close()
}

// ensureSchema checks the store's version (closing checked after the first
// try) and migrates it, retrying with backoff until it is done, the store
// is too new, or ctx ends.
func (e *storeExporter) ensureSchema(ctx context.Context, checked chan<- struct{}) {
	defer e.schemaWG.Done()
	backoff := time.Second
	for {
		version, err := e.store.CheckVersion(ctx)
		if checked != nil {
			e.versionErr = err
			close(checked)
			checked = nil
		}
		if err == nil {
			if version > 0 && version < store.Latest() {
				e.logger.Info("migrating the decision store schema; stored events wait in the sending queue until it is done",
					zap.String("database", e.cfg.Database), zap.Uint32("from", version), zap.Uint32("to", store.Latest()))
			}
			err = e.migrate(ctx)
		}
		if err == nil || errors.Is(err, store.ErrSchemaTooNew) {
			e.schemaErr = err
			close(e.schemaDone)
			return
		}
		if ctx.Err() != nil {
			return
		}
		e.logger.Warn("decision store schema not ready (ClickHouse unreachable or a migration failed); retrying, accepted data waits in the sending queue",
			zap.String("endpoint", chconn.Redact(e.cfg.Endpoint)), zap.Duration("retry_in", backoff), zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (e *storeExporter) migrate(ctx context.Context) error {
	from, to, err := e.store.Migrate(ctx)
	if err != nil {
		return err
	}
	if err := e.store.ApplyTTL(ctx, e.cfg.TTL); err != nil {
		return err
	}
	if from != to {
		e.logger.Info("decision store schema migrated", zap.String("database", e.cfg.Database), zap.Uint32("from", from), zap.Uint32("to", to))
	}
	return nil
}

func (e *storeExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	return e.insert(ctx, store.LogEvents(ld, e.cfg.Unclassified == UnclassifiedStore))
}

func (e *storeExporter) pushTraces(ctx context.Context, td ptrace.Traces) error {
	return e.insert(ctx, store.SpanEvents(td, e.cfg.Unclassified == UnclassifiedStore))
}

func (e *storeExporter) insert(ctx context.Context, r *store.Events) error {
	e.count(ctx, r)
	if r.Len() == 0 {
		return nil
	}
	// A push waits for the schema within its own deadline.
	select {
	case <-e.schemaDone:
		if e.schemaErr != nil {
			return e.failed(ctx, consumererror.NewPermanent(e.schemaErr))
		}
	case <-ctx.Done():
		return e.failed(ctx, errSchemaNotReady)
	case <-e.stopped:
		return e.failed(ctx, errSchemaNotReady)
	}
	if err := e.store.InsertEvents(ctx, r); err != nil {
		return e.failed(ctx, classify(err))
	}
	e.rowsInserted.Add(ctx, int64(r.Len()))
	return nil
}

func (e *storeExporter) count(ctx context.Context, r *store.Events) {
	for key, n := range r.ParseErrors() {
		e.parseErrors.Add(ctx, int64(n), metric.WithAttributes(attribute.String("attribute", key)))
	}
	stored, refused := r.Unclassified()
	if stored > 0 {
		e.unclassified.Add(ctx, int64(stored), metric.WithAttributes(attribute.String("action", "stored")))
	}
	if refused > 0 {
		e.unclassified.Add(ctx, int64(refused), metric.WithAttributes(attribute.String("action", "refused")))
		e.logger.Debug("refused records without decision.* attributes", zap.Int("records", refused))
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
	var col *store.ColumnError
	if errors.As(err, &col) {
		return consumererror.NewPermanent(err)
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
	opts, err := cfg.ClientConfig.Options()
	if err != nil {
		return nil, fmt.Errorf("decisionstore: %w", err)
	}
	return opts, nil
}

// refuse answers a request with records outside the retention: a
// permanent error naming them, as the OTLP receiver cannot take part of a
// request, and a 200 for records the TTL deletes at once would be a lie.
func (e *storeExporter) refuse(ctx context.Context, refused *decision.Refusals) error {
	e.refused.Add(ctx, int64(refused.Len()))
	err := refused.Err(store.RefusedWhy)
	e.logger.Debug("request refused", zap.Error(err))
	return err
}

func (e *storeExporter) countFlattened(ctx context.Context, n int) {
	if n > 0 {
		e.flattened.Add(ctx, int64(n))
		e.logger.Debug("values nested too deep for the sending queue taken as their JSON text", zap.Int("values", n))
	}
}
