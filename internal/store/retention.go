package store

import (
	"math"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/decisiontrace/decisiontrace/internal/decision"
)

// Retention is the span of event times the store keeps: from TTL before
// now (0: forever) to decision.MaxFutureSkew after it. A record outside it
// would be answered OK and then deleted by the TTL at once, or sit in the
// future moving every watermark: it is refused before it is acknowledged.
type Retention struct {
	TTL time.Duration
}

// RefusedWhy is the reason given with the refused records.
const RefusedWhy = "outside what the decision store keeps (event time from now - ttl to 24h ahead); nothing of this request was stored, resend it without these records"

// ownTime is a record's time as it is stored: its own, else the fallback
// (a log's observed time, a span's end); ok false when neither is usable
// (0, or past what a signed nanosecond count holds: 2^64-1 is sent), and
// the record is stored at the time it is stored.
func ownTime(ts, fallback pcommon.Timestamp) (time.Time, bool) {
	for _, t := range []pcommon.Timestamp{ts, fallback} {
		if t != 0 && uint64(t) <= math.MaxInt64 {
			return t.AsTime(), true
		}
	}
	return time.Time{}, false
}

// check adds the record at ts/fallback to refused when it is outside the
// retention at now.
func (r Retention) check(refused *decision.Refusals, now time.Time, ts, fallback pcommon.Timestamp, where decision.Where) {
	t, ok := ownTime(ts, fallback)
	switch {
	case !ok:
	case r.TTL > 0 && t.Before(now.Add(-r.TTL)):
		refused.Add(where, "time %s is before the retention (ttl %s)", t.UTC().Format(time.RFC3339Nano), r.TTL)
	case t.After(now.Add(decision.MaxFutureSkew)):
		refused.Add(where, "time %s is more than %s after the collector's clock", t.UTC().Format(time.RFC3339Nano), decision.MaxFutureSkew)
	}
}

// Logs returns the records of ld outside the retention at now.
func (r Retention) Logs(ld plog.Logs, now time.Time) *decision.Refusals {
	var refused decision.Refusals
	for where, lr := range decision.LogRecords(ld) {
		r.check(&refused, now, lr.Timestamp(), lr.ObservedTimestamp(), where)
	}
	return &refused
}

// Traces returns the spans of td outside the retention at now.
func (r Retention) Traces(td ptrace.Traces, now time.Time) *decision.Refusals {
	var refused decision.Refusals
	for where, sp := range decision.Spans(td) {
		r.check(&refused, now, sp.StartTimestamp(), sp.EndTimestamp(), where)
	}
	return &refused
}
