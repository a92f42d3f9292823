package decisionprocessor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
)

type pipelines struct {
	logs      processor.Logs
	traces    processor.Traces
	logsSink  *consumertest.LogsSink
	spansSink *consumertest.TracesSink
	tel       *componenttest.Telemetry
}

// startPipelines builds the processor into a logs and a traces pipeline
// under one component ID, as a collector configuration would.
func startPipelines(t *testing.T, mut func(*Config)) *pipelines {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Contracts = []string{"testdata/contracts/claims-triage.yaml"}
	if mut != nil {
		mut(cfg)
	}
	require.NoError(t, cfg.Validate())
	p := &pipelines{logsSink: new(consumertest.LogsSink), spansSink: new(consumertest.TracesSink), tel: componenttest.NewTelemetry()}
	set := processortest.NewNopSettings(typ)
	set.TelemetrySettings = p.tel.NewTelemetrySettings()
	f := NewFactory()
	var err error
	p.logs, err = f.CreateLogs(context.Background(), set, cfg, p.logsSink)
	require.NoError(t, err)
	p.traces, err = f.CreateTraces(context.Background(), set, cfg, p.spansSink)
	require.NoError(t, err)
	require.NoError(t, p.logs.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, p.traces.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		_ = p.logs.Shutdown(context.Background())
		_ = p.traces.Shutdown(context.Background())
		_ = p.tel.Shutdown(context.Background())
	})
	return p
}

func (p *pipelines) shutdown(t *testing.T) {
	require.NoError(t, p.logs.Shutdown(context.Background()))
	require.NoError(t, p.traces.Shutdown(context.Background()))
}

func contextRead(id, source string, asOf time.Time, extra map[string]any) plog.Logs {
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	attrs := map[string]any{
		conventions.DecisionID: id, conventions.DecisionWorkflow: "claims-triage",
		conventions.DecisionLayer: "data", conventions.DecisionEvent: "context.read",
		conventions.DataSource: source, conventions.DataAsOf: asOf.Format(time.RFC3339Nano),
	}
	for k, v := range extra {
		attrs[k] = v
	}
	_ = lr.Attributes().FromRaw(attrs)
	return ld
}

// genAISpan is a model call as GenAI instrumentation records it: no
// decision.layer or decision.event, only the decision ID the application
// added.
func genAISpan(id string, conf float64, at time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName("chat claims-model")
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Second)))
	_ = sp.Attributes().FromRaw(map[string]any{
		conventions.DecisionID: id, conventions.DecisionWorkflow: "claims-triage",
		conventions.GenAIRequestModel: "claims-model", conventions.ModelVersion: "7", conventions.ModelConfidence: conf,
	})
	return td
}

func verdicts(sink *consumertest.LogsSink) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, ld := range sink.AllLogs() {
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					a := lrs.At(k).Attributes().AsRaw()
					if a[conventions.DecisionEvent] == conventions.EventVerdict {
						out[a[conventions.DecisionID].(string)] = a
					}
				}
			}
		}
	}
	return out
}

func TestGenAISpanIsClassifiedAndJoinsLogContextIntoAVerdict(t *testing.T) {
	p := startPipelines(t, nil)
	ctx := context.Background()
	now := time.Now()
	require.NoError(t, p.logs.ConsumeLogs(ctx, contextRead("d1", "policy-db", now.Add(-time.Hour), nil)))
	require.NoError(t, p.logs.ConsumeLogs(ctx, contextRead("d1", "claims-history", now, nil)))
	require.NoError(t, p.traces.ConsumeTraces(ctx, genAISpan("d1", 0.92, now)))

	// The span went on, classified.
	require.Equal(t, 1, p.spansSink.SpanCount())
	attrs := p.spansSink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().AsRaw()
	assert.Equal(t, "model", attrs[conventions.DecisionLayer])
	assert.Equal(t, "model.output", attrs[conventions.DecisionEvent])

	// The verdict leaves through the logs pipeline, with the next tick.
	require.Eventually(t, func() bool { return verdicts(p.logsSink)["d1"] != nil }, 5*time.Second, 10*time.Millisecond)
	v := verdicts(p.logsSink)["d1"]
	assert.Equal(t, "stale", v[conventions.VerdictContext])
	assert.Equal(t, []any{"policy-db"}, v[conventions.VerdictStaleSources])
	assert.Equal(t, true, v[conventions.VerdictUnsupportedCertainty])
	assert.Equal(t, "escalate", v[conventions.VerdictBehaviour])
	assert.Equal(t, "claims-model", v[conventions.ModelName])
	assert.Equal(t, "7", v[conventions.ModelVersion])
	assert.InDelta(t, 3600, v[conventions.VerdictStaleAgeS], 5)
	assert.InDelta(t, 90, v[conventions.VerdictStaleBudgetS], 1e-9)
	assert.Equal(t, "verdict/d1", v[conventions.DecisionEventID])
}

func TestMissingContextVerdictAfterWindow(t *testing.T) {
	p := startPipelines(t, func(c *Config) { c.VerdictWindow = 100 * time.Millisecond })
	ctx := context.Background()
	now := time.Now()
	require.NoError(t, p.logs.ConsumeLogs(ctx, contextRead("d2", "policy-db", now, nil)))
	require.NoError(t, p.traces.ConsumeTraces(ctx, genAISpan("d2", 0.9, now)))
	assert.Empty(t, verdicts(p.logsSink), "claims-history may still arrive")
	require.Eventually(t, func() bool { return verdicts(p.logsSink)["d2"] != nil }, 5*time.Second, 10*time.Millisecond)
	v := verdicts(p.logsSink)["d2"]
	assert.Equal(t, "missing", v[conventions.VerdictContext])
	assert.Equal(t, []any{"claims-history"}, v[conventions.VerdictMissingSources])
	assert.Equal(t, true, v[conventions.VerdictUnsupportedCertainty])
}

func TestIdentifiersResolvedOrMarkedAndCounted(t *testing.T) {
	dir := t.TempDir()
	aliasFile := filepath.Join(dir, "aliases.csv")
	require.NoError(t, os.WriteFile(aliasFile, []byte("system,local_id,canonical_id\ncrm,C-1,customer-001\n"), 0o600))
	p := startPipelines(t, func(c *Config) {
		c.Aliases.Files = []string{aliasFile}
		c.Aliases.ReloadInterval = 20 * time.Millisecond
	})
	ctx := context.Background()
	send := func(id, entity string) map[string]any {
		ld := contextRead(id, "policy-db", time.Now(), map[string]any{conventions.DataEntitySystem: "crm", conventions.DataEntityID: entity})
		require.NoError(t, p.logs.ConsumeLogs(ctx, ld))
		all := p.logsSink.AllLogs()
		return all[len(all)-1].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().AsRaw()
	}
	a := send("i1", "C-1")
	assert.Equal(t, "customer-001", a[conventions.DataEntityCanonicalID])
	assert.Equal(t, true, a[conventions.DataEntityResolved])
	a = send("i2", "C-2")
	assert.Equal(t, false, a[conventions.DataEntityResolved])
	assert.NotContains(t, a, conventions.DataEntityCanonicalID)

	m, err := p.tel.GetMetric("otelcol_decision_unresolved_identifiers")
	require.NoError(t, err)
	sum := m.Data.(metricdata.Sum[int64])
	require.Len(t, sum.DataPoints, 1)
	assert.Equal(t, int64(1), sum.DataPoints[0].Value)

	// The map changes on disk; the running processor picks it up.
	require.NoError(t, os.WriteFile(aliasFile, []byte("system,local_id,canonical_id\ncrm,C-1,customer-001\ncrm,C-2,customer-002\n"), 0o600))
	require.Eventually(t, func() bool {
		return send("i3", "C-2")[conventions.DataEntityCanonicalID] == "customer-002"
	}, 5*time.Second, 30*time.Millisecond)

	// A broken edit keeps the last good map.
	require.NoError(t, os.WriteFile(aliasFile, []byte("system,local_id\ncrm,C-1\n"), 0o600))
	require.Eventually(t, func() bool {
		m, err := p.tel.GetMetric("otelcol_decision_alias_reload_errors")
		return err == nil && m.Data.(metricdata.Sum[int64]).DataPoints[0].Value > 0
	}, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, "customer-002", send("i4", "C-2")[conventions.DataEntityCanonicalID])
}

func TestNothingAfterShutdownAndNoLeaks(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := startPipelines(t, func(c *Config) { c.VerdictWindow = time.Hour })
	ctx := context.Background()
	now := time.Now()
	require.NoError(t, p.traces.ConsumeTraces(ctx, genAISpan("s1", 0.9, now)))
	p.shutdown(t)
	// Shutdown decided what it held rather than forgetting it.
	require.NotNil(t, verdicts(p.logsSink)["s1"])
	n := len(p.logsSink.AllLogs())
	time.Sleep(50 * time.Millisecond)
	assert.Len(t, p.logsSink.AllLogs(), n, "nothing emitted after Shutdown")
}

func TestQueueMetricsOfStockReceiversBecomeQueueDepthSignals(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Contracts = []string{"testdata/contracts/claims-triage.yaml"}
	// As the rabbitmq receiver reports it: one data point per queue.
	cfg.QueueMetrics = []QueueMetric{{Metric: "rabbitmq.message.current", QueueFrom: "rabbitmq.queue.name",
		Workflow: "claims-triage", Match: map[string]string{"state": "ready"}}}
	require.NoError(t, cfg.Validate())
	set := processortest.NewNopSettings(typ)
	logsSink, metricsSink := new(consumertest.LogsSink), new(consumertest.MetricsSink)
	f := NewFactory()
	lp, err := f.CreateLogs(context.Background(), set, cfg, logsSink)
	require.NoError(t, err)
	mp, err := f.CreateMetrics(context.Background(), set, cfg, metricsSink)
	require.NoError(t, err)
	require.NoError(t, lp.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, mp.Start(context.Background(), componenttest.NewNopHost()))
	defer func() {
		require.NoError(t, mp.Shutdown(context.Background()))
		require.NoError(t, lp.Shutdown(context.Background()))
	}()

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("rabbitmq.queue.name", "manual-review")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("rabbitmq.message.current")
	dps := m.SetEmptySum().DataPoints()
	ready := dps.AppendEmpty()
	ready.Attributes().PutStr("state", "ready")
	ready.SetIntValue(412)
	unacked := dps.AppendEmpty()
	unacked.Attributes().PutStr("state", "unacknowledged")
	unacked.SetIntValue(7)
	other := rm.ScopeMetrics().At(0).Metrics().AppendEmpty()
	other.SetName("rabbitmq.consumer.count")
	other.SetEmptySum().DataPoints().AppendEmpty().SetIntValue(3)
	require.NoError(t, mp.ConsumeMetrics(context.Background(), md))

	assert.Equal(t, 3, metricsSink.DataPointCount(), "metrics pass through unchanged")
	require.Equal(t, 1, logsSink.LogRecordCount())
	a := logsSink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().AsRaw()
	assert.Equal(t, map[string]any{
		conventions.DecisionLayer: "workflow", conventions.DecisionEvent: "queue.depth",
		conventions.WorkflowQueue: "manual-review", conventions.WorkflowQueueDepth: int64(412),
		conventions.DecisionWorkflow: "claims-triage",
	}, a)
}

func TestNoAliasMapsNoReconciliation(t *testing.T) {
	p := startPipelines(t, nil)
	ld := contextRead("n1", "policy-db", time.Now(), map[string]any{conventions.DataEntitySystem: "crm", conventions.DataEntityID: "C-1"})
	require.NoError(t, p.logs.ConsumeLogs(context.Background(), ld))
	a := p.logsSink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().AsRaw()
	assert.NotContains(t, a, conventions.DataEntityResolved)
	_, err := p.tel.GetMetric("otelcol_decision_unresolved_identifiers")
	assert.Error(t, err, "nothing counted as unresolved")
}
