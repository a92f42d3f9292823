package store

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// A record the TTL would delete at once, or stamped past tomorrow, is
// refused before it is acknowledged, named by where it is; a record
// without a usable time is kept (at its observed or store time) and
// retention 0 keeps any past.
func TestRecordsOutsideTheRetentionAreRefusedByPosition(t *testing.T) {
	now := time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC)
	ts := func(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, r := range []struct{ at, observed pcommon.Timestamp }{
		{ts(now.Add(-time.Hour)), 0},                 // kept
		{ts(now.Add(-40 * 24 * time.Hour)), ts(now)}, // 40 days old: its own time counts
		{0, ts(now.Add(-time.Minute))},               // no time: observed, kept
		{0, 0},                                       // kept at store time
		{math.MaxUint64, 0},                          // unusable: kept at store time
		{ts(now.Add(25 * time.Hour)), 0},             // past tomorrow
		{ts(now.Add(23 * time.Hour)), 0},             // a clock ahead: kept
		{0, ts(now.Add(-31 * 24 * time.Hour))},       // observed, before the retention
	} {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(r.at)
		lr.SetObservedTimestamp(r.observed)
	}
	refused := Retention{TTL: 30 * 24 * time.Hour}.Logs(ld, now)
	assert.Equal(t, 3, refused.Len())
	assert.EqualError(t, refused.Err(RefusedWhy), "Permanent error: rpc error: code = InvalidArgument desc = resource_logs[0].scope_logs[0].log_records[1]: time 2031-04-22T12:00:00Z is before the retention (ttl 720h0m0s); "+
		"resource_logs[0].scope_logs[0].log_records[5]: time 2031-06-02T13:00:00Z is more than 24h0m0s after the collector's clock; "+
		"resource_logs[0].scope_logs[0].log_records[7]: time 2031-05-01T12:00:00Z is before the retention (ttl 720h0m0s): "+RefusedWhy)

	assert.Equal(t, 1, Retention{}.Logs(ld, now).Len(), "ttl 0 keeps any past; the future is still refused")

	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	sp := spans.AppendEmpty()
	sp.SetStartTimestamp(ts(now.Add(-time.Minute)))
	sp = spans.AppendEmpty()
	sp.SetEndTimestamp(ts(now.Add(48 * time.Hour))) // no start: its end
	assert.EqualError(t, Retention{TTL: time.Hour}.Traces(td, now).Err("why"),
		"Permanent error: rpc error: code = InvalidArgument desc = resource_spans[0].scope_spans[0].spans[1]: time 2031-06-03T12:00:00Z is more than 24h0m0s after the collector's clock: why")

	// A request of many bad records names the first five.
	many := plog.NewLogs()
	lrs = many.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < 1000; i++ {
		lrs.AppendEmpty().SetTimestamp(ts(now.Add(-365 * 24 * time.Hour)))
	}
	refused = Retention{TTL: time.Hour}.Logs(many, now)
	assert.Equal(t, 1000, refused.Len())
	assert.Contains(t, refused.Err("why").Error(), "log_records[4]: time 2030-06-01T12:00:00Z is before the retention (ttl 1h0m0s); and 995 more: why")
}
