package decisionstoreexporter

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/decisiontest"
	"github.com/decisiontrace/decisiontrace/internal/store"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// The tests in this file run against a real ClickHouse: the embedded engine
// testenv starts, or the server named by DECISIONTRACE_TEST_CLICKHOUSE_ADDR.

type harness struct {
	exp  *storeExporter
	conn driver.Conn
	db   string
	tel  *componenttest.Telemetry
}

func newHarness(t *testing.T, mut func(*Config)) *harness {
	t.Helper()
	addr := testenv.ClickHouse(t)
	user, pass := testenv.ClickHouseAuth()
	db := testenv.Database(t, addr, "dt_test")

	cfg := createDefaultConfig().(*Config)
	cfg.Endpoint = "clickhouse://" + addr
	cfg.Username, cfg.Password = user, configopaque.String(pass)
	cfg.Database = db
	if mut != nil {
		mut(cfg)
	}
	require.NoError(t, cfg.Validate())

	tel := componenttest.NewTelemetry()
	set := exportertest.NewNopSettings(typ)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	exp, err := newExporter(cfg, set)
	require.NoError(t, err)
	require.NoError(t, exp.start(context.Background(), componenttest.NewNopHost()))
	select { // the schema, which tests change or read
	case <-exp.schemaDone:
		require.NoError(t, exp.schemaErr)
	case <-time.After(time.Minute):
		t.Fatal("the schema was not created within a minute")
	}

	conn := testenv.Conn(t, addr)
	t.Cleanup(func() {
		_ = exp.shutdown(context.Background())
		_ = tel.Shutdown(context.Background())
	})
	return &harness{exp: exp, conn: conn, db: db, tel: tel}
}

func render(q, db string) string { return strings.ReplaceAll(q, "{db}", db) }

func (h *harness) count(t *testing.T, query string, args ...any) uint64 {
	t.Helper()
	var n uint64
	require.NoError(t, h.conn.QueryRow(context.Background(), render(query, h.db), args...).Scan(&n))
	return n
}

func TestIntegrationLogAndSpanLandWithTypedColumns(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)

	ld := plog.NewLogs()
	decisiontest.Log(ld, now, map[string]any{
		conventions.DecisionID: "dec-landing", conventions.DecisionWorkflow: "claims-triage",
		conventions.DecisionLayer: "data", conventions.DecisionEvent: "context.read",
		conventions.DataSource: "policy-db", conventions.DataAsOf: now.Add(-90 * time.Second).Format(time.RFC3339Nano),
		conventions.DataComplete: true, conventions.DataEntitySystem: "crm", conventions.DataEntityID: "C-77",
		"claim.region": "north",
	})
	require.NoError(t, h.exp.pushLogs(ctx, ld))

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "claims-model-svc")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName("chat claims-model")
	sp.SetTraceID(pcommon.TraceID{0xab, 1})
	sp.SetSpanID(pcommon.SpanID{0xcd, 2})
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(420 * time.Millisecond)))
	require.NoError(t, sp.Attributes().FromRaw(map[string]any{
		conventions.DecisionID: "dec-landing", conventions.DecisionWorkflow: "claims-triage",
		conventions.DecisionLayer: "model", conventions.DecisionEvent: "model.output",
		conventions.ModelName: "claims-model", conventions.ModelVersion: "2.3.0", conventions.ModelConfidence: 0.87,
		conventions.ModelRecommendation: "approve", conventions.GenAIUsageInputTokens: 1200, "gen_ai.system": "openai",
	}))
	require.NoError(t, h.exp.pushTraces(ctx, td))

	rows, err := h.conn.Query(ctx, render(`SELECT signal, layer, event, workflow, source, as_of, data_complete, entity_id,
		model_name, model_version, confidence, recommendation, input_tokens, service_name, trace_id, duration_ns, attributes
		FROM {db}.events WHERE decision_id = ? ORDER BY layer`, h.db), "dec-landing")
	require.NoError(t, err)
	defer rows.Close()
	type row struct {
		signal, layer, event, workflow, source string
		asOf                                   *time.Time
		complete                               *bool
		entityID, modelName, modelVersion      string
		confidence                             *float64
		recommendation                         string
		inputTokens                            *int64
		service, traceID                       string
		duration                               uint64
		attrs                                  map[string]string
	}
	var got []row
	for rows.Next() {
		var r row
		require.NoError(t, rows.Scan(&r.signal, &r.layer, &r.event, &r.workflow, &r.source, &r.asOf, &r.complete, &r.entityID,
			&r.modelName, &r.modelVersion, &r.confidence, &r.recommendation, &r.inputTokens, &r.service, &r.traceID, &r.duration, &r.attrs))
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	require.Len(t, got, 2)

	data, model := got[0], got[1]
	assert.Equal(t, "log", data.signal)
	assert.Equal(t, "data", data.layer)
	assert.Equal(t, "context.read", data.event)
	assert.Equal(t, "claims-triage", data.workflow)
	assert.Equal(t, "policy-db", data.source)
	require.NotNil(t, data.asOf)
	assert.WithinDuration(t, now.Add(-90*time.Second), *data.asOf, time.Microsecond)
	require.NotNil(t, data.complete)
	assert.True(t, *data.complete)
	assert.Equal(t, "C-77", data.entityID)
	assert.Equal(t, map[string]string{"claim.region": "north"}, data.attrs)
	assert.Nil(t, data.confidence)

	assert.Equal(t, "span", model.signal)
	assert.Equal(t, "model", model.layer)
	assert.Equal(t, "claims-model", model.modelName)
	assert.Equal(t, "2.3.0", model.modelVersion)
	require.NotNil(t, model.confidence)
	assert.InDelta(t, 0.87, *model.confidence, 1e-12)
	assert.Equal(t, "approve", model.recommendation)
	require.NotNil(t, model.inputTokens)
	assert.Equal(t, int64(1200), *model.inputTokens)
	assert.Equal(t, "claims-model-svc", model.service)
	assert.Equal(t, "ab010000000000000000000000000000", model.traceID)
	assert.Equal(t, uint64(420*time.Millisecond), model.duration)
	assert.Equal(t, "openai", model.attrs["gen_ai.system"])
}

// fiveLayers returns one request per layer for a decision.
func fiveLayers(id string, base time.Time) []plog.Logs {
	layer := func(off time.Duration, attrs map[string]any) plog.Logs {
		attrs[conventions.DecisionID] = id
		attrs[conventions.DecisionWorkflow] = "loan-underwriting"
		ld := plog.NewLogs()
		decisiontest.Log(ld, base.Add(off), attrs)
		return ld
	}
	return []plog.Logs{
		layer(0, map[string]any{conventions.DecisionLayer: "data", conventions.DecisionEvent: "context.read", conventions.DataSource: "credit-bureau", conventions.DataAsOf: base.Add(-time.Minute).Format(time.RFC3339)}),
		layer(1*time.Second, map[string]any{conventions.DecisionLayer: "model", conventions.DecisionEvent: "model.output", conventions.ModelName: "underwriter", conventions.ModelVersion: "7", conventions.ModelConfidence: 0.64}),
		layer(2*time.Second, map[string]any{conventions.DecisionLayer: "workflow", conventions.DecisionEvent: "workflow.routed", conventions.WorkflowRoute: "manual", conventions.WorkflowQueue: "underwriter-review"}),
		layer(3*time.Second, map[string]any{conventions.DecisionLayer: "human", conventions.DecisionEvent: "human.action", conventions.HumanAction: "overridden", conventions.HumanActor: "rev-9"}),
		layer(4*time.Second, map[string]any{conventions.DecisionLayer: "business", conventions.DecisionEvent: "business.outcome", conventions.BusinessOutcome: "declined", conventions.BusinessCycleTimeS: 5400.0}),
	}
}

func TestIntegrationRollupOneRowPerDecisionInAnyOrder(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	base := time.Now().UTC().Truncate(time.Second)
	rng := mrand.New(mrand.NewPCG(1, 2))
	const decisions = 20
	for d := 0; d < decisions; d++ {
		reqs := fiveLayers(fmt.Sprintf("loan-%02d", d), base)
		rng.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
		for _, r := range reqs {
			require.NoError(t, h.exp.pushLogs(ctx, r))
		}
	}
	// A redelivered request must not change the summary either, nor events
	// a producer resends in another request.
	require.NoError(t, h.exp.pushLogs(ctx, fiveLayers("loan-00", base)[3]))
	resent := fiveLayers("loan-01", base)
	resent[1].ResourceLogs().MoveAndAppendTo(resent[2].ResourceLogs())
	require.NoError(t, h.exp.pushLogs(ctx, resent[2]))

	assert.Equal(t, uint64(decisions), h.count(t, `SELECT count() FROM {db}.decision_summary`))
	rows, err := h.conn.Query(ctx, render(`SELECT decision_id, workflow, first_seen, last_seen, layers_seen, events,
		model_name, model_version, confidence, route, queue, human_action, outcome, cycle_time_s
		FROM {db}.decision_summary ORDER BY decision_id`, h.db))
	require.NoError(t, err)
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			id, workflow                                         string
			first, last                                          time.Time
			layers                                               []string
			events                                               uint64
			modelName, modelVersion, route, queue, action, outcm *string
			confidence, cycle                                    *float64
		)
		require.NoError(t, rows.Scan(&id, &workflow, &first, &last, &layers, &events, &modelName, &modelVersion, &confidence, &route, &queue, &action, &outcm, &cycle))
		assert.Equal(t, fmt.Sprintf("loan-%02d", n), id)
		assert.Equal(t, "loan-underwriting", workflow)
		assert.Equal(t, base, first.UTC())
		assert.Equal(t, base.Add(4*time.Second), last.UTC())
		assert.Equal(t, []string{"data", "model", "workflow", "human", "business"}, layers)
		assert.Equal(t, uint64(5), events, "a redelivered event is not counted twice")
		assert.Equal(t, "underwriter", deref(modelName))
		assert.Equal(t, "7", deref(modelVersion))
		require.NotNil(t, confidence)
		assert.InDelta(t, 0.64, *confidence, 1e-12)
		assert.Equal(t, "manual", deref(route))
		assert.Equal(t, "underwriter-review", deref(queue))
		assert.Equal(t, "overridden", deref(action))
		assert.Equal(t, "declined", deref(outcm))
		require.NotNil(t, cycle)
		assert.InDelta(t, 5400.0, *cycle, 1e-9)
		n++
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, decisions, n)
}

func deref(s *string) string {
	if s == nil {
		return "<NULL>"
	}
	return *s
}

func TestIntegrationSchemaNewerThanBinaryStopsStart(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	require.NoError(t, h.conn.Exec(ctx, render(`INSERT INTO {db}.schema_migrations (version, name, applied_at) VALUES (999, 'from the future', now())`, h.db)))

	cfg := *h.exp.cfg
	exp, err := newExporter(&cfg, exportertest.NewNopSettings(typ))
	require.NoError(t, err)
	err = exp.start(ctx, componenttest.NewNopHost())
	require.ErrorIs(t, err, store.ErrSchemaTooNew, "start refuses to write into a newer schema")
	assert.Contains(t, err.Error(), fmt.Sprintf("database %s is at schema version 999 but this decisiontrace knows versions up to %d", h.db, store.Latest()))
	require.NoError(t, exp.shutdown(ctx))
}

func TestIntegrationWrongTypedAttributesAreStoredAndCounted(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	now := time.Now()
	ld := plog.NewLogs()
	decisiontest.Log(ld, now, map[string]any{conventions.DecisionID: "bad-types", conventions.DecisionLayer: "model",
		conventions.ModelConfidence: "high", conventions.DataAsOf: "yesterday"})
	decisiontest.Log(ld, now, map[string]any{conventions.DecisionID: "good-neighbour", conventions.DecisionLayer: "model", conventions.ModelConfidence: 0.5})
	require.NoError(t, h.exp.pushLogs(ctx, ld))

	var (
		conf  *float64
		asOf  *time.Time
		attrs map[string]string
		errs  []string
	)
	require.NoError(t, h.conn.QueryRow(ctx, render(`SELECT confidence, as_of, attributes, parse_errors FROM {db}.events WHERE decision_id = 'bad-types'`, h.db)).
		Scan(&conf, &asOf, &attrs, &errs))
	assert.Nil(t, conf)
	assert.Nil(t, asOf)
	assert.Equal(t, "high", attrs[conventions.ModelConfidence])
	assert.Equal(t, "yesterday", attrs[conventions.DataAsOf])
	assert.ElementsMatch(t, []string{`model.confidence: "high" is not a number`, `data.as_of: "yesterday" is not an RFC 3339 timestamp`}, errs)
	assert.Equal(t, uint64(1), h.count(t, `SELECT count() FROM {db}.events WHERE decision_id = 'good-neighbour' AND confidence = 0.5`))

	m, err := h.tel.GetMetric("otelcol_decisionstore_attribute_parse_errors")
	require.NoError(t, err)
	got := map[string]int64{}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		v, _ := dp.Attributes.Value("attribute")
		got[v.AsString()] = dp.Value
	}
	assert.Equal(t, map[string]int64{conventions.ModelConfidence: 1, conventions.DataAsOf: 1}, got)
}

func TestIntegrationErrorsRetryableOrPermanent(t *testing.T) {
	ctx := context.Background()
	t.Run("unreachable ClickHouse is retryable", func(t *testing.T) {
		cfg := createDefaultConfig().(*Config)
		cfg.Endpoint = fmt.Sprintf("clickhouse://127.0.0.1:%d", testenv.FreePort(t))
		cfg.ConnectTimeout = 200 * time.Millisecond
		exp, err := newExporter(cfg, exportertest.NewNopSettings(typ))
		require.NoError(t, err)
		require.NoError(t, exp.start(ctx, componenttest.NewNopHost()), "a down ClickHouse does not stop the collector from starting")
		defer func() { require.NoError(t, exp.shutdown(ctx)) }()
		ld := plog.NewLogs()
		decisiontest.Log(ld, time.Now(), map[string]any{conventions.DecisionID: "x", conventions.DecisionLayer: "data"})
		pushCtx, cancel := context.WithTimeout(ctx, time.Second) // exporterhelper's timeout
		defer cancel()
		err = exp.pushLogs(pushCtx, ld)
		require.Error(t, err)
		assert.False(t, consumererror.IsPermanent(err), "got %v", err)
	})
	t.Run("a table that cannot take the rows is permanent", func(t *testing.T) {
		h := newHarness(t, nil)
		require.NoError(t, h.conn.Exec(ctx, render(`ALTER TABLE {db}.events DROP COLUMN body`, h.db)))
		ld := plog.NewLogs()
		decisiontest.Log(ld, time.Now(), map[string]any{conventions.DecisionID: "x", conventions.DecisionLayer: "data"})
		err := h.exp.pushLogs(ctx, ld)
		require.Error(t, err)
		assert.True(t, consumererror.IsPermanent(err), "got %v", err)
		var ex *clickhouse.Exception
		require.True(t, errors.As(err, &ex))
	})
}

// A migration may take longer than any push may (version 12 copies the
// rollup: about a minute at 100M stored events). It runs on its own, not
// within the start's or a push's deadline, which would cut it off at each
// try for ever: here every deadline is a millisecond, and the schema is
// still created, after which pushes store.
func TestIntegrationMigrationOutlivesEveryDeadline(t *testing.T) {
	addr := testenv.ClickHouse(t)
	user, pass := testenv.ClickHouseAuth()
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoint = "clickhouse://" + addr
	cfg.Username, cfg.Password = user, configopaque.String(pass)
	cfg.Database = testenv.Database(t, addr, "dt_test")
	cfg.Timeout = time.Millisecond
	exp, err := newExporter(cfg, exportertest.NewNopSettings(typ))
	require.NoError(t, err)
	require.NoError(t, exp.start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, exp.shutdown(context.Background())) }()

	ld := plog.NewLogs()
	decisiontest.Log(ld, time.Now(), map[string]any{conventions.DecisionID: "x", conventions.DecisionLayer: "data"})
	push := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return exp.pushLogs(ctx, ld)
	}
	err = push(time.Millisecond)
	require.Error(t, err, "the schema of a fresh database takes longer than a millisecond")
	assert.False(t, consumererror.IsPermanent(err), "got %v", err)
	assert.Contains(t, err.Error(), "decision store schema not ready")
	require.Eventually(t, func() bool {
		_ = push(time.Millisecond) // what a sending queue keeps retrying meanwhile
		select {
		case <-exp.schemaDone:
			return true
		default:
			return false
		}
	}, time.Minute, 50*time.Millisecond, "the migration finishes, whatever the deadlines")
	require.NoError(t, exp.schemaErr)
	require.NoError(t, push(30*time.Second))
	conn := testenv.Conn(t, addr)
	var n uint64
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count() FROM "+cfg.Database+".events WHERE decision_id = 'x'").Scan(&n))
	assert.Equal(t, uint64(1), n)
}

// After Shutdown the exporter writes nothing more and leaves no goroutine of
// its own (ClickHouse connections, the sending queue) behind.
func TestIntegrationNothingAfterShutdownNoLeaks(t *testing.T) {
	h := newHarness(t, nil) // the harness's own connection is part of the baseline
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	f := NewFactory()
	cfg := h.exp.cfg
	set := exportertest.NewNopSettings(typ)
	exp, err := f.CreateLogs(ctx, set, cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(ctx, componenttest.NewNopHost()))

	ld := plog.NewLogs()
	decisiontest.Log(ld, time.Now(), map[string]any{conventions.DecisionID: "dec-before", conventions.DecisionWorkflow: "w",
		conventions.DecisionLayer: "human", conventions.DecisionEvent: "human.action", conventions.HumanAction: "accept"})
	require.NoError(t, exp.ConsumeLogs(ctx, ld))
	require.NoError(t, exp.Shutdown(ctx)) // drains the queue
	assert.Equal(t, uint64(1), h.count(t, "SELECT count() FROM {db}.events WHERE decision_id = 'dec-before'"))

	after := plog.NewLogs()
	decisiontest.Log(after, time.Now(), map[string]any{conventions.DecisionID: "dec-after", conventions.DecisionWorkflow: "w",
		conventions.DecisionLayer: "human", conventions.DecisionEvent: "human.action", conventions.HumanAction: "accept"})
	_ = exp.ConsumeLogs(ctx, after)
	time.Sleep(200 * time.Millisecond)
	assert.Zero(t, h.count(t, "SELECT count() FROM {db}.events WHERE decision_id = 'dec-after'"))
}
