package decisionqueueconnector

import (
	"context"
	"math"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/decisiontrace/decisiontrace/connectors/decisionqueueconnector/internal/metadata"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
)

type queueConnector struct {
	component.StartFunc
	component.ShutdownFunc

	cfg    *Config
	next   consumer.Logs
	logger *zap.Logger
}

func (c *queueConnector) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// ConsumeMetrics sends the data points of the configured queue metrics on
// as queue.depth log records, one per data point, at the data point's own
// time. Other metrics end here: a metrics pipeline that needs them keeps
// its own exporters beside this connector.
func (c *queueConnector) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	out := plog.NewLogs()
	var sl plog.ScopeLogs
	for _, rm := range md.ResourceMetrics().All() {
		res := rm.Resource().Attributes()
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				for qi := range c.cfg.QueueMetrics {
					q := &c.cfg.QueueMetrics[qi]
					if q.Metric != m.Name() {
						continue
					}
					var dps pmetric.NumberDataPointSlice
					switch m.Type() {
					case pmetric.MetricTypeGauge:
						dps = m.Gauge().DataPoints()
					case pmetric.MetricTypeSum:
						dps = m.Sum().DataPoints()
					default:
						continue
					}
					for _, dp := range dps.All() {
						queue, ok := queueName(q, dp.Attributes(), res)
						if !ok || !matches(q.Match, dp.Attributes(), res) {
							continue
						}
						if sl == (plog.ScopeLogs{}) {
							rl := out.ResourceLogs().AppendEmpty()
							rl.Resource().Attributes().PutStr("service.name", "decisiontrace")
							sl = rl.ScopeLogs().AppendEmpty()
							sl.Scope().SetName(metadata.ScopeName)
						}
						appendQueueDepth(sl, q, queue, dp)
					}
				}
			}
		}
	}
	if out.LogRecordCount() == 0 {
		return nil
	}
	return c.next.ConsumeLogs(ctx, out)
}

func queueName(q *QueueMetric, dp, res pcommon.Map) (string, bool) {
	if q.Queue != "" {
		return q.Queue, true
	}
	if v, ok := dp.Get(q.QueueFrom); ok {
		return v.AsString(), true
	}
	if v, ok := res.Get(q.QueueFrom); ok {
		return v.AsString(), true
	}
	return "", false
}

func matches(want map[string]string, dp, res pcommon.Map) bool {
	for k, w := range want {
		v, ok := dp.Get(k)
		if !ok {
			v, ok = res.Get(k)
		}
		if !ok || v.AsString() != w {
			return false
		}
	}
	return true
}

func appendQueueDepth(sl plog.ScopeLogs, q *QueueMetric, queue string, dp pmetric.NumberDataPoint) {
	depth := dp.IntValue()
	if dp.ValueType() == pmetric.NumberDataPointValueTypeDouble {
		depth = int64(math.Round(dp.DoubleValue()))
	}
	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(dp.Timestamp())
	lr.SetEventName(conventions.EventQueueDepth)
	a := lr.Attributes()
	a.PutStr(conventions.DecisionLayer, conventions.LayerWorkflow)
	a.PutStr(conventions.DecisionEvent, conventions.EventQueueDepth)
	a.PutStr(conventions.WorkflowQueue, queue)
	a.PutInt(conventions.WorkflowQueueDepth, depth)
	if q.Workflow != "" {
		a.PutStr(conventions.DecisionWorkflow, q.Workflow)
	}
}
