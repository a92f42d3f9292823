package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// Queue metrics sent over OTLP, as any metrics receiver would hand them
// on, reach the decision store as queue.depth events through the
// decisionqueue connector: metrics pipeline in, logs pipeline out, with
// the decision processor and the store's sending queue as shipped.
func TestIntegrationQueueMetricsReachTheStoreThroughTheConnector(t *testing.T) {
	addr := testenv.ClickHouse(t)
	db := testenv.Database(t, addr, "dt_queues")
	dir := t.TempDir()
	env := collectorConfig(t, dir, addr, db, false, "")
	runCollector(t, env.configPath, overlay(t, dir, `
connectors:
  decisionqueue:
    queue_metrics:
      - metric: review_queue_depth
        queue_from: queue
        workflow: claims-triage
service:
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [decisionqueue]
    logs:
      receivers: [otlp, decisionqueue]
`))

	at := time.Now().UTC().Truncate(time.Millisecond)
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("review_queue_depth")
	dps := m.SetEmptyGauge().DataPoints()
	for i, q := range []string{"manual-review", "siu-review"} {
		dp := dps.AppendEmpty()
		dp.Attributes().PutStr("queue", q)
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
		dp.SetIntValue(int64(100 * (i + 1)))
	}
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	require.NoError(t, err)
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/metrics", env.httpPort), "application/x-protobuf", bytes.NewReader(body))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	conn := testenv.Conn(t, addr)
	type row struct {
		Queue string
		Depth int64
		At    time.Time
	}
	var got []row
	require.Eventually(t, func() bool {
		rows, err := conn.Query(context.Background(), "SELECT queue, assumeNotNull(queue_depth), time FROM "+db+
			".events WHERE event = 'queue.depth' AND workflow = 'claims-triage' AND layer = 'workflow' ORDER BY queue")
		if err != nil {
			return false
		}
		defer rows.Close()
		got = got[:0]
		for rows.Next() {
			var r row
			if rows.Scan(&r.Queue, &r.Depth, &r.At) == nil {
				r.At = r.At.UTC()
				got = append(got, r)
			}
		}
		return len(got) == 2
	}, 30*time.Second, 100*time.Millisecond)
	assert.Equal(t, []row{{"manual-review", 100, at}, {"siu-review", 200, at}}, got, "each at its data point's time")
}
