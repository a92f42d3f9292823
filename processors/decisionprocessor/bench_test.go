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
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
)

// BenchmarkProcessLogs measures the processor per event on demo-shaped
// traffic: per decision two context reads, a model output, a routing, a
// human action and an outcome, all as logs, entity IDs through an alias map.
func BenchmarkProcessLogs(b *testing.B) {
	cfg := createDefaultConfig().(*Config)
	cfg.Contracts = []string{"testdata/contracts/claims-triage.yaml"}
	cfg.Aliases.Files = []string{"testdata/aliases.csv"}
	set := processortest.NewNopSettings(typ)
	proc, err := NewFactory().CreateLogs(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(b, err)
	require.NoError(b, proc.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { _ = proc.Shutdown(context.Background()) }()

	const decisions = 200
	now := time.Now()
	batch := func(round int) plog.Logs {
		ld := plog.NewLogs()
		sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
		for d := 0; d < decisions; d++ {
			id := fmt.Sprintf("b-%d-%d", round, d)
			for _, attrs := range []map[string]any{
				{conventions.DecisionLayer: "data", conventions.DecisionEvent: "context.read", conventions.DataSource: "policy-db",
					conventions.DataAsOf: now.Add(-time.Minute).Format(time.RFC3339), conventions.DataEntitySystem: "crm", conventions.DataEntityID: "C-1"},
				{conventions.DecisionLayer: "data", conventions.DecisionEvent: "context.read", conventions.DataSource: "claims-history",
					conventions.DataAsOf: now.Add(-time.Minute).Format(time.RFC3339)},
				{conventions.DecisionLayer: "model", conventions.DecisionEvent: "model.output", conventions.ModelName: "m",
					conventions.ModelVersion: "1", conventions.ModelConfidence: 0.82},
				{conventions.DecisionLayer: "workflow", conventions.DecisionEvent: "workflow.routed", conventions.WorkflowRoute: "auto"},
				{conventions.DecisionLayer: "human", conventions.DecisionEvent: "human.action", conventions.HumanAction: "accepted"},
				{conventions.DecisionLayer: "business", conventions.DecisionEvent: "business.outcome", conventions.BusinessOutcome: "paid"},
			} {
				lr := sl.LogRecords().AppendEmpty()
				lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
				attrs[conventions.DecisionID] = id
				attrs[conventions.DecisionWorkflow] = "claims-triage"
				_ = lr.Attributes().FromRaw(attrs)
			}
		}
		return ld
	}
	batches := make([]plog.Logs, 64)
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
		if i%len(batches) == 0 && i > 0 {
			// New decision IDs each lap, so verdicts keep being produced.
			for j := range batches {
				batches[j] = batch(i + j)
			}
		}
		b.StartTimer()
		if err := proc.ConsumeLogs(context.Background(), ld); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
}
