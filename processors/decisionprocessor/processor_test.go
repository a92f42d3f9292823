package decisionprocessor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
)

// t0 is the tests' clock: records carry times from it, never from today.
var t0 = time.Date(2026, time.March, 2, 9, 0, 0, 0, time.UTC)

type pipelines struct {
	id        component.ID
	logs      processor.Logs
	traces    processor.Traces
	logsSink  *consumertest.LogsSink
	spansSink *consumertest.TracesSink
	tel       *componenttest.Telemetry
}

// startPipelines builds the processor into a logs, a traces and a metrics
// pipeline under one component ID, as a collector configuration would.
func startPipelines(t *testing.T, mut func(*Config)) *pipelines {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	if mut != nil {
		mut(cfg)
	}
	require.NoError(t, cfg.Validate())
	p := &pipelines{
		id:       component.NewIDWithName(typ, t.Name()),
		logsSink: new(consumertest.LogsSink), spansSink: new(consumertest.TracesSink),
		tel: componenttest.NewTelemetry(),
	}
	set := processortest.NewNopSettings(typ)
	set.ID = p.id
	set.TelemetrySettings = p.tel.NewTelemetrySettings()
	f := NewFactory()
	ctx := context.Background()
	var err error
	p.logs, err = f.CreateLogs(ctx, set, cfg, p.logsSink)
	require.NoError(t, err)
	p.traces, err = f.CreateTraces(ctx, set, cfg, p.spansSink)
	require.NoError(t, err)
	for _, c := range []component.Component{p.logs, p.traces} {
		require.NoError(t, c.Start(ctx, componenttest.NewNopHost()))
	}
	t.Cleanup(func() {
		p.shutdown(t)
		_ = p.tel.Shutdown(context.Background())
	})
	return p
}

// shutdown shuts the pipelines down as the collector does, the logs
// pipeline first; shutting down again is harmless.
func (p *pipelines) shutdown(t *testing.T) {
	for _, c := range []component.Component{p.logs, p.traces} {
		require.NoError(t, c.Shutdown(context.Background()))
	}
}

// instance is the processor the pipelines share.
func (p *pipelines) instance(t *testing.T) *decisionProcessor {
	t.Helper()
	instances.Lock()
	defer instances.Unlock()
	dp := instances.m[p.id]
	require.NotNil(t, dp)
	return dp
}

func logRecord(at time.Time, attrs map[string]any) plog.Logs {
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
	if err := lr.Attributes().FromRaw(attrs); err != nil {
		panic(err)
	}
	return ld
}

// contextRead is a read as applications often log it: no decision.layer,
// no decision.event.
func contextRead(id, source string, asOf time.Time, extra map[string]any) plog.Logs {
	attrs := map[string]any{
		conventions.DecisionID: id, conventions.DecisionWorkflow: "claims-triage",
		conventions.DataSource: source, conventions.DataAsOf: asOf.Format(time.RFC3339Nano),
	}
	for k, v := range extra {
		attrs[k] = v
	}
	return logRecord(asOf.Add(time.Second), attrs)
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

func firstLogAttrs(ld plog.Logs) map[string]any {
	return ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().AsRaw()
}

func firstSpanAttrs(td ptrace.Traces) map[string]any {
	return td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().AsRaw()
}

func TestGenAISpanBecomesModelOutputAndNothingIsJudged(t *testing.T) {
	p := startPipelines(t, nil)
	ctx := context.Background()
	require.NoError(t, p.logs.ConsumeLogs(ctx, contextRead("d1", "policy-db", t0.Add(-time.Hour), nil)))
	require.NoError(t, p.logs.ConsumeLogs(ctx, contextRead("d1", "claims-history", t0, nil)))
	require.NoError(t, p.traces.ConsumeTraces(ctx, genAISpan("d1", 0.92, t0)))

	// The span went on, classified.
	require.Equal(t, 1, p.spansSink.SpanCount())
	attrs := firstSpanAttrs(p.spansSink.AllTraces()[0])
	assert.Equal(t, "model", attrs[conventions.DecisionLayer])
	assert.Equal(t, "model.output", attrs[conventions.DecisionEvent])

	// The reads went on, classified, and nothing else: no decision.verdict
	// record (the decision store judges the decision from these).
	require.Len(t, p.logsSink.AllLogs(), 2)
	assert.Equal(t, 2, p.logsSink.LogRecordCount())
	for _, ld := range p.logsSink.AllLogs() {
		a := firstLogAttrs(ld)
		assert.Equal(t, "data", a[conventions.DecisionLayer])
		assert.NotContains(t, a, conventions.DecisionEvent, "a read that names no event is left so; the store counts it as a read")
	}
}

func TestExplicitEventsAndNonSpanModelRecordsKeepTheirEvent(t *testing.T) {
	p := startPipelines(t, nil)
	ctx := context.Background()
	td := genAISpan("d1", 0.9, t0)
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr(conventions.DecisionEvent, "model.retry")
	require.NoError(t, p.traces.ConsumeTraces(ctx, td))
	assert.Equal(t, "model.retry", firstSpanAttrs(p.spansSink.AllTraces()[0])[conventions.DecisionEvent])

	// A log with a confidence is on the model layer, but only a span is the
	// model call itself.
	require.NoError(t, p.logs.ConsumeLogs(ctx, logRecord(t0, map[string]any{conventions.DecisionID: "d1", conventions.ModelConfidence: 0.8})))
	a := firstLogAttrs(p.logsSink.AllLogs()[0])
	assert.Equal(t, "model", a[conventions.DecisionLayer])
	assert.NotContains(t, a, conventions.DecisionEvent)

	// A record with no decision attribute passes untouched.
	require.NoError(t, p.logs.ConsumeLogs(ctx, logRecord(t0, map[string]any{"http.route": "/claims"})))
	assert.Equal(t, map[string]any{"http.route": "/claims"}, firstLogAttrs(p.logsSink.AllLogs()[1]))
}

// The processor holds nothing between records: a decision's signals come
// out the same in any order, through any instance.
func TestOutputDoesNotDependOnOrderOrInstance(t *testing.T) {
	dir := t.TempDir()
	aliasFile := filepath.Join(dir, "aliases.csv")
	require.NoError(t, os.WriteFile(aliasFile, []byte("system,local_id,canonical_id\ncrm,C-1,customer-001\n"), 0o600))
	withAliases := func(c *Config) { c.Aliases.Files = []string{aliasFile} }
	signals := func() []plog.Logs {
		return []plog.Logs{
			contextRead("o1", "policy-db", t0.Add(-time.Minute), map[string]any{conventions.DataEntitySystem: "crm", conventions.DataEntityID: "C-1"}),
			contextRead("o1", "claims-history", t0.Add(-time.Hour), map[string]any{conventions.DataEntitySystem: "crm", conventions.DataEntityID: "C-2"}),
			logRecord(t0, map[string]any{conventions.DecisionID: "o1", conventions.DecisionWorkflow: "claims-triage",
				conventions.DecisionEvent: conventions.EventModelOutput, conventions.ModelConfidence: 0.95}),
			logRecord(t0.Add(time.Minute), map[string]any{conventions.DecisionID: "o1", conventions.HumanAction: "overridden"}),
		}
	}
	run := func(order []int) []map[string]any {
		p := startPipelines(t, withAliases)
		in := signals()
		out := make([]map[string]any, len(in))
		for _, i := range order {
			require.NoError(t, p.logs.ConsumeLogs(context.Background(), in[i]))
			all := p.logsSink.AllLogs()
			out[i] = firstLogAttrs(all[len(all)-1])
		}
		p.shutdown(t)
		return out
	}
	inOrder := run([]int{0, 1, 2, 3})
	assert.Equal(t, inOrder, run([]int{3, 2, 1, 0}))
	assert.Equal(t, inOrder, run([]int{2, 0, 3, 1}))
	assert.Equal(t, "customer-001", inOrder[0][conventions.DataEntityCanonicalID])
	assert.Equal(t, false, inOrder[1][conventions.DataEntityResolved])
	assert.Equal(t, "human", inOrder[3][conventions.DecisionLayer])
}

func TestIdentifiersResolvedOrMarkedAndCounted(t *testing.T) {
	dir := t.TempDir()
	aliasFile := filepath.Join(dir, "aliases.csv")
	require.NoError(t, os.WriteFile(aliasFile, []byte("system,local_id,canonical_id\ncrm,C-1,customer-001\n"), 0o600))
	p := startPipelines(t, func(c *Config) {
		c.Aliases.Files = []string{aliasFile}
		c.Aliases.ReloadInterval = time.Hour // reloaded by hand below
	})
	ctx := context.Background()
	send := func(id, entity string) map[string]any {
		ld := contextRead(id, "policy-db", t0, map[string]any{conventions.DataEntitySystem: "crm", conventions.DataEntityID: entity})
		require.NoError(t, p.logs.ConsumeLogs(ctx, ld))
		all := p.logsSink.AllLogs()
		return firstLogAttrs(all[len(all)-1])
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

	// The map changes on disk; the running processor picks it up at its
	// next reload.
	dp := p.instance(t)
	require.NoError(t, os.WriteFile(aliasFile, []byte("system,local_id,canonical_id\ncrm,C-1,customer-001\ncrm,C-2,customer-002\n"), 0o600))
	touch(t, aliasFile)
	dp.reloadAliases(ctx)
	assert.Equal(t, "customer-002", send("i3", "C-2")[conventions.DataEntityCanonicalID])

	// A broken edit keeps the last good map, and is counted.
	require.NoError(t, os.WriteFile(aliasFile, []byte("system,local_id\ncrm,C-1\n"), 0o600))
	touch(t, aliasFile)
	dp.reloadAliases(ctx)
	m, err = p.tel.GetMetric("otelcol_decision_alias_reload_errors")
	require.NoError(t, err)
	assert.Equal(t, int64(1), m.Data.(metricdata.Sum[int64]).DataPoints[0].Value)
	assert.Equal(t, "customer-002", send("i4", "C-2")[conventions.DataEntityCanonicalID])
}

// touch moves a file's modification time on, so a reload sees the change
// even when the file system's clock granularity hides a quick rewrite.
func touch(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	next := st.ModTime().Add(time.Second)
	require.NoError(t, os.Chtimes(path, next, next))
}

// The reload loop itself: a changed file takes effect without a restart.
func TestAliasFileReloadedByTheRunningProcessor(t *testing.T) {
	dir := t.TempDir()
	aliasFile := filepath.Join(dir, "aliases.csv")
	require.NoError(t, os.WriteFile(aliasFile, []byte("system,local_id,canonical_id\ncrm,C-1,customer-001\n"), 0o600))
	p := startPipelines(t, func(c *Config) {
		c.Aliases.Files = []string{aliasFile}
		c.Aliases.ReloadInterval = 10 * time.Millisecond
	})
	require.NoError(t, os.WriteFile(aliasFile, []byte("system,local_id,canonical_id\ncrm,C-1,customer-111\n"), 0o600))
	touch(t, aliasFile)
	// A condition, not a deadline: the generous bound only stops a broken
	// loop from hanging the test.
	require.Eventually(t, func() bool {
		require.NoError(t, p.logs.ConsumeLogs(context.Background(),
			contextRead("r1", "policy-db", t0, map[string]any{conventions.DataEntitySystem: "crm", conventions.DataEntityID: "C-1"})))
		all := p.logsSink.AllLogs()
		return firstLogAttrs(all[len(all)-1])[conventions.DataEntityCanonicalID] == "customer-111"
	}, time.Minute, 20*time.Millisecond)
}

func TestNothingAfterShutdownAndNoLeaks(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := startPipelines(t, func(c *Config) {
		c.Aliases.Files = []string{"testdata/aliases.csv"}
		c.Aliases.ReloadInterval = 5 * time.Millisecond // the reload loop runs
	})
	ctx := context.Background()
	require.NoError(t, p.logs.ConsumeLogs(ctx, contextRead("d-1", "policy-db", t0, nil)))
	require.Equal(t, 1, p.logsSink.LogRecordCount())

	require.NoError(t, p.logs.Shutdown(ctx))
	require.NoError(t, p.traces.Shutdown(ctx))
	time.Sleep(20 * time.Millisecond) // reloads would have run by now
	assert.Equal(t, 1, p.logsSink.LogRecordCount(), "nothing emitted after Shutdown")
	assert.Equal(t, 1, len(p.logsSink.AllLogs()))
}

func TestNoAliasMapsNoReconciliation(t *testing.T) {
	p := startPipelines(t, nil)
	ld := contextRead("n1", "policy-db", t0, map[string]any{conventions.DataEntitySystem: "crm", conventions.DataEntityID: "C-1"})
	require.NoError(t, p.logs.ConsumeLogs(context.Background(), ld))
	a := firstLogAttrs(p.logsSink.AllLogs()[0])
	assert.NotContains(t, a, conventions.DataEntityResolved)
	_, err := p.tel.GetMetric("otelcol_decision_unresolved_identifiers")
	assert.Error(t, err, "nothing counted as unresolved")
}

// The instance is shared by the pipelines of one component ID and built
// afresh once all of them have shut down (a reloaded configuration).
func TestInstanceSharedAndReleased(t *testing.T) {
	p := startPipelines(t, nil)
	dp := p.instance(t)
	p.shutdown(t)
	instances.Lock()
	_, kept := instances.m[p.id]
	instances.Unlock()
	assert.False(t, kept)
	dp.mu.Lock()
	defer dp.mu.Unlock()
	assert.Zero(t, dp.starts, "every pipeline's part released it")
}

// A workflow name is whatever a producer sends. With a policy, a record
// of a workflow that has no contract and is not named is tagged (stored,
// marked, never paged) or its request refused, saying where; records
// without a workflow (a source poll) are left alone.
func TestUnknownWorkflowsTaggedOrRefused(t *testing.T) {
	ctx := context.Background()
	records := func() plog.Logs {
		ld := plog.NewLogs()
		lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		for _, wf := range []string{"claims-triage", "batch-backfill", "x' OR 1=1 --", "nul\x00name", ""} {
			lr := lrs.AppendEmpty()
			lr.SetTimestamp(pcommon.NewTimestampFromTime(t0))
			attrs := map[string]any{conventions.DataSource: "policy-db", conventions.DataAsOf: t0.Format(time.RFC3339Nano)}
			if wf != "" {
				attrs[conventions.DecisionWorkflow] = wf
			}
			require.NoError(t, lr.Attributes().FromRaw(attrs))
		}
		return ld
	}
	unknownOf := func(ld plog.Logs) []any {
		var out []any
		lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		for i := 0; i < lrs.Len(); i++ {
			out = append(out, lrs.At(i).Attributes().AsRaw()[conventions.DecisionWorkflowUnknown])
		}
		return out
	}
	known := func(policy UnknownWorkflowPolicy) func(*Config) {
		return func(c *Config) {
			c.UnknownWorkflows = policy
			c.KnownWorkflows.Contracts = []string{"../../deploy/contracts/claims-triage.yaml"}
			c.KnownWorkflows.Names = []string{"batch-backfill"}
		}
	}

	t.Run("store", func(t *testing.T) {
		p := startPipelines(t, nil)
		require.NoError(t, p.logs.ConsumeLogs(ctx, records()))
		assert.Equal(t, []any{nil, nil, nil, nil, nil}, unknownOf(p.logsSink.AllLogs()[0]), "as sent")
	})
	t.Run("tag", func(t *testing.T) {
		p := startPipelines(t, known(UnknownWorkflowsTag))
		require.NoError(t, p.logs.ConsumeLogs(ctx, records()))
		assert.Equal(t, []any{nil, nil, true, true, nil}, unknownOf(p.logsSink.AllLogs()[0]))
		m, err := p.tel.GetMetric("otelcol_decision_unknown_workflow_records")
		require.NoError(t, err)
		assert.Equal(t, int64(2), m.Data.(metricdata.Sum[int64]).DataPoints[0].Value)
	})
	t.Run("refuse", func(t *testing.T) {
		p := startPipelines(t, known(UnknownWorkflowsRefuse))
		err := p.logs.ConsumeLogs(ctx, records())
		require.Error(t, err)
		assert.True(t, consumererror.IsPermanent(err), "retrying cannot make a workflow known")
		assert.Equal(t, `Permanent error: rpc error: code = InvalidArgument desc = resource_logs[0].scope_logs[0].log_records[2]: decision.workflow "x' OR 1=1 --"; `+
			`resource_logs[0].scope_logs[0].log_records[3]: decision.workflow "nul\x00name": `+
			`no contract or known_workflows entry names this workflow (unknown_workflows: refuse); nothing of this request was stored`, err.Error())
		assert.Empty(t, p.logsSink.AllLogs(), "nothing of a refused request goes on")

		// Spans are held to the same policy.
		td := genAISpan("d-1", 0.9, t0)
		td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr(conventions.DecisionWorkflow, "invented")
		err = p.traces.ConsumeTraces(ctx, td)
		assert.EqualError(t, err, `Permanent error: rpc error: code = InvalidArgument desc = resource_spans[0].scope_spans[0].spans[0]: decision.workflow "invented": no contract or known_workflows entry names this workflow (unknown_workflows: refuse); nothing of this request was stored`)
		require.NoError(t, p.traces.ConsumeTraces(ctx, genAISpan("d-2", 0.9, t0)))
	})
}
