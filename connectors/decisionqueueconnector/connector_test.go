package decisionqueueconnector

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/decisiontrace/decisiontrace/connectors/decisionqueueconnector/internal/metadata"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// rabbitQueueMetrics is what the rabbitmq receiver reports: one data
// point per queue state, and metrics that are no queue depth.
func rabbitQueueMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("rabbitmq.queue.name", "manual-review")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("rabbitmq.message.current")
	dps := m.SetEmptySum().DataPoints()
	ready := dps.AppendEmpty()
	ready.Attributes().PutStr("state", "ready")
	ready.SetTimestamp(pcommon.NewTimestampFromTime(t0))
	ready.SetIntValue(412)
	unacked := dps.AppendEmpty()
	unacked.Attributes().PutStr("state", "unacknowledged")
	unacked.SetIntValue(7)
	other := rm.ScopeMetrics().At(0).Metrics().AppendEmpty()
	other.SetName("rabbitmq.consumer.count")
	other.SetEmptySum().DataPoints().AppendEmpty().SetIntValue(3)
	// A gauge of a fixed queue, in a double, as a Prometheus scrape gives it.
	g := rm.ScopeMetrics().At(0).Metrics().AppendEmpty()
	g.SetName("claims_review_backlog")
	gp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	gp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Second)))
	gp.SetDoubleValue(88.6)
	return md
}

func newConnector(t *testing.T, next consumer.Logs) connector.Metrics {
	t.Helper()
	cfg := &Config{QueueMetrics: []QueueMetric{
		{Metric: "rabbitmq.message.current", QueueFrom: "rabbitmq.queue.name", Workflow: "claims-triage", Match: map[string]string{"state": "ready"}},
		{Metric: "claims_review_backlog", Queue: "backlog"},
	}}
	require.NoError(t, cfg.Validate())
	c, err := NewFactory().CreateMetricsToLogs(context.Background(), connectortest.NewNopSettings(metadata.Type), cfg, next)
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, c.Shutdown(context.Background())) })
	return c
}

func records(ld []plog.Logs) []map[string]any {
	var out []map[string]any
	for _, l := range ld {
		for _, rl := range l.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					a := lr.Attributes().AsRaw()
					a["time"] = lr.Timestamp().AsTime().UTC()
					a["event_name"] = lr.EventName()
					out = append(out, a)
				}
			}
		}
	}
	return out
}

func TestQueueMetricsOfStockReceiversBecomeQueueDepthSignals(t *testing.T) {
	sink := new(consumertest.LogsSink)
	c := newConnector(t, sink)
	require.NoError(t, c.ConsumeMetrics(context.Background(), rabbitQueueMetrics()))
	assert.Equal(t, []map[string]any{
		{
			conventions.DecisionLayer: "workflow", conventions.DecisionEvent: "queue.depth",
			conventions.WorkflowQueue: "manual-review", conventions.WorkflowQueueDepth: int64(412),
			conventions.DecisionWorkflow: "claims-triage", "time": t0, "event_name": "queue.depth",
		},
		{
			conventions.DecisionLayer: "workflow", conventions.DecisionEvent: "queue.depth",
			conventions.WorkflowQueue: "backlog", conventions.WorkflowQueueDepth: int64(89),
			"time": t0.Add(time.Second), "event_name": "queue.depth",
		},
	}, records(sink.AllLogs()), "the ready state only, each at its data point's own time; a double rounds")
	assert.Equal(t, metadata.ScopeName, sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).Scope().Name())
}

func TestNoQueueMetricNoLogs(t *testing.T) {
	sink := new(consumertest.LogsSink)
	c := newConnector(t, sink)
	md := pmetric.NewMetrics()
	md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetName("http.server.duration")
	require.NoError(t, c.ConsumeMetrics(context.Background(), md))
	assert.Empty(t, sink.AllLogs(), "no empty request down the logs pipeline")
}

// A logs pipeline that refuses the signals (its queue full) refuses the
// metrics, so the receiver that scraped them sees it.
func TestRefusedLogsRefuseTheMetrics(t *testing.T) {
	c := newConnector(t, consumertest.NewErr(errors.New("queue is full")))
	assert.EqualError(t, c.ConsumeMetrics(context.Background(), rabbitQueueMetrics()), "queue is full")
}
