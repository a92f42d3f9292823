package decisionprocessor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
)

// BenchmarkProcessLogs measures the stateless processor per event on
// demo-shaped traffic: per decision two context reads (one naming no layer,
// so it is inferred), a model output, a routing, a human action and an
// outcome, all as logs, entity IDs through an alias map. Nothing is held
// between requests, so the same batches are replayed.
func BenchmarkProcessLogs(b *testing.B) {
	cfg := createDefaultConfig().(*Config)
	cfg.Aliases.Files = []string{"testdata/aliases.csv"}
	cfg.Aliases.ReloadInterval = time.Hour
	set := processortest.NewNopSettings(typ)
	proc, err := NewFactory().CreateLogs(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(b, err)
	require.NoError(b, proc.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { _ = proc.Shutdown(context.Background()) }()

	const decisions = 200
	batch := func(round int) plog.Logs {
		ld := plog.NewLogs()
		sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
		for d := 0; d < decisions; d++ {
			id := fmt.Sprintf("b-%d-%d", round, d)
			for _, attrs := range []map[string]any{
				{conventions.DataSource: "policy-db", conventions.DataAsOf: t0.Add(-time.Minute).Format(time.RFC3339),
					conventions.DataEntitySystem: "crm", conventions.DataEntityID: "C-1"},
				{conventions.DecisionLayer: "data", conventions.DecisionEvent: "context.read", conventions.DataSource: "claims-history",
					conventions.DataAsOf: t0.Add(-time.Minute).Format(time.RFC3339)},
				{conventions.DecisionLayer: "model", conventions.DecisionEvent: "model.output", conventions.ModelName: "m",
					conventions.ModelVersion: "1", conventions.ModelConfidence: 0.82},
				{conventions.DecisionLayer: "workflow", conventions.DecisionEvent: "workflow.routed", conventions.WorkflowRoute: "auto"},
				{conventions.DecisionLayer: "human", conventions.DecisionEvent: "human.action", conventions.HumanAction: "accepted"},
				{conventions.DecisionLayer: "business", conventions.DecisionEvent: "business.outcome", conventions.BusinessOutcome: "paid"},
			} {
				lr := sl.LogRecords().AppendEmpty()
				lr.SetTimestamp(pcommon.NewTimestampFromTime(t0))
				attrs[conventions.DecisionID] = id
				attrs[conventions.DecisionWorkflow] = "claims-triage"
				_ = lr.Attributes().FromRaw(attrs)
			}
		}
		return ld
	}
	batches := make([]plog.Logs, 16)
	for i := range batches {
		batches[i] = batch(i)
	}
	events := batches[0].LogRecordCount()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ld := plog.NewLogs()
		batches[i%len(batches)].CopyTo(ld) // the processor adds attributes in place
		b.StartTimer()
		if err := proc.ConsumeLogs(context.Background(), ld); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
}

// BenchmarkProcessTraces measures GenAI spans, which the processor turns
// into model outputs.
func BenchmarkProcessTraces(b *testing.B) {
	set := processortest.NewNopSettings(typ)
	proc, err := NewFactory().CreateTraces(context.Background(), set, createDefaultConfig(), consumertest.NewNop())
	require.NoError(b, err)
	require.NoError(b, proc.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { _ = proc.Shutdown(context.Background()) }()

	const spans = 1000
	src := ptrace.NewTraces()
	ss := src.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for i := 0; i < spans; i++ {
		sp := ss.Spans().AppendEmpty()
		sp.SetName("chat claims-model")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Second)))
		_ = sp.Attributes().FromRaw(map[string]any{
			conventions.DecisionID: fmt.Sprintf("s-%d", i), conventions.DecisionWorkflow: "claims-triage",
			conventions.GenAIRequestModel: "claims-model", conventions.ModelVersion: "7", conventions.ModelConfidence: 0.9,
			conventions.GenAIUsageInputTokens: 1200, conventions.GenAIUsageOutputTokens: 80,
		})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		td := ptrace.NewTraces()
		src.CopyTo(td)
		b.StartTimer()
		if err := proc.ConsumeTraces(context.Background(), td); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
}
