package decisionprocessor

import (
	"context"
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/processors/decisionprocessor/internal/metadata"
)

// processMetrics passes metrics on unchanged and sends the data points of
// configured queue metrics down the logs pipeline as queue.depth signals,
// so any receiver that scrapes a queue (prometheus, rabbitmq, redis, ...)
// feeds the workflow layer.
func (p *decisionProcessor) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	if len(p.cfg.QueueMetrics) == 0 {
		return md, nil
	}
	out := plog.NewLogs()
	var sl plog.ScopeLogs
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		res := rms.At(i).Resource().Attributes()
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				for qi := range p.cfg.QueueMetrics {
					q := &p.cfg.QueueMetrics[qi]
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
					for d := 0; d < dps.Len(); d++ {
						dp := dps.At(d)
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
		return md, nil
	}
	// Held while sending: the logs pipeline's shutdown waits for this send
	// and then detaches, so nothing reaches its next consumer afterwards.
	p.logsMu.RLock()
	defer p.logsMu.RUnlock()
	if p.nextLogs == nil {
		p.logger.Debug("queue metrics matched but the decision processor is in no running logs pipeline", zap.Int("signals", out.LogRecordCount()))
		return md, nil
	}
	if err := p.nextLogs.ConsumeLogs(ctx, out); err != nil {
		return md, err
	}
	return md, nil
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
