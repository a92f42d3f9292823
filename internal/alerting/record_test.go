package alerting

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
)

// What the evaluator writes is what the exporter reads.
func TestRecordRoundTrip(t *testing.T) {
	at := time.Date(2031, 5, 1, 10, 0, 0, 123000000, time.UTC)
	labels := map[string]string{"alertname": "DecisionSourceStale", "workflow": "claims-triage", "source": "policy-db"}
	rec := Record{
		Alert: Alert{Labels: labels, Fingerprint: Fingerprint(labels), Value: 412.5,
			ActiveAt: at, FiredAt: at.Add(time.Minute), ResolvedAt: at.Add(time.Hour)},
		State: conventions.AlertStateResolved, Annotations: map[string]string{"summary": "stale"},
		GeneratorURL: "http://grafana/d/x",
	}
	lr := plog.NewLogRecord()
	rec.Encode(lr, pcommon.NewTimestampFromTime(at.Add(2*time.Hour)))
	assert.Equal(t, "alert.resolved", lr.EventName())

	got := DecodeRecord(lr)
	assert.Empty(t, got.BadTimes)
	assert.Equal(t, at.Add(2*time.Hour), got.Timestamp)
	assert.Equal(t, strconv.FormatInt(int64(rec.Alert.Fingerprint), 10), got.Fingerprint)
	assert.Equal(t, rec, got.Record)

	// Another producer's record: no fingerprint, a time that does not parse.
	other := plog.NewLogRecord()
	other.Attributes().PutStr(conventions.AlertName, "Custom")
	other.Attributes().PutStr(conventions.AlertState, conventions.AlertStateFiring)
	other.Attributes().PutStr(conventions.AlertFiredAt, "yesterday")
	d := DecodeRecord(other)
	assert.Equal(t, []string{conventions.AlertFiredAt}, d.BadTimes)
	assert.Equal(t, "labels:"+strconv.FormatUint(Fingerprint(map[string]string{"alertname": "Custom"}), 16), d.Fingerprint)
	assert.True(t, d.Alert.FiredAt.IsZero())
}
