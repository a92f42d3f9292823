package alertrulesreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"

	"github.com/decisiontrace/decisiontrace/internal/alerting"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/receivers/alertrulesreceiver/internal/metadata"
)

// emitted is what one emit sent: alertname and state of each record.
func emitted(t *testing.T, sink *consumertest.LogsSink, since int) []string {
	t.Helper()
	var out []string
	for _, ld := range sink.AllLogs()[since:] {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					d := alerting.DecodeRecord(lr)
					out = append(out, d.Alert.Labels["alertname"]+" "+d.State+" "+d.Annotations["summary"])
				}
			}
		}
	}
	return out
}

// The evaluator sends every firing alert again each resend_interval,
// whichever round or timer calls emit, with the annotations it last sent;
// a pending alert is not kept, and a resolved one stops its re-sends.
func TestFiringAlertsAreSentAgainEveryResendInterval(t *testing.T) {
	sink := new(consumertest.LogsSink)
	set := receivertest.NewNopSettings(metadata.Type)
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{ReceiverID: set.ID, Transport: "clickhouse", ReceiverCreateSettings: set})
	require.NoError(t, err)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	r := &alertReceiver{cfg: &Config{ResendInterval: time.Minute}, logger: zap.NewNop(), next: sink, obs: obs,
		now: func() time.Time { return now }, firing: map[uint64]*sentRecord{}}
	ctx := context.Background()
	alert := func(name string, fp uint64) alerting.Alert {
		return alerting.Alert{Labels: map[string]string{"alertname": name}, Fingerprint: fp}
	}
	step := func(d time.Duration, recs ...record) []string {
		now = now.Add(d)
		before := len(sink.AllLogs())
		r.emit(ctx, recs)
		return emitted(t, sink, before)
	}

	assert.Equal(t, []string{"A firing one", "P pending p"}, step(0,
		record{alert: alert("A", 1), state: conventions.AlertStateFiring, annotations: map[string]string{"summary": "one"}},
		record{alert: alert("P", 2), state: conventions.AlertStatePending, annotations: map[string]string{"summary": "p"}}))
	assert.Empty(t, step(59*time.Second), "not due before resend_interval")
	assert.Equal(t, []string{"A firing one"}, step(time.Second), "due at resend_interval")
	assert.Equal(t, []string{"A firing two"}, step(30*time.Second,
		record{alert: alert("A", 1), state: conventions.AlertStateFiring, annotations: map[string]string{"summary": "two"}}),
		"new annotations go out at once, and restart the interval")
	assert.Empty(t, step(59*time.Second))
	assert.Equal(t, []string{"A firing two"}, step(time.Second), "with the annotations last sent")
	assert.Equal(t, []string{"A resolved "}, step(10*time.Second, record{alert: alert("A", 1), state: conventions.AlertStateResolved}))
	assert.Empty(t, step(5*time.Minute), "a resolved alert is not sent again")
}
