package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/decision"
	"github.com/decisiontrace/decisiontrace/internal/decisiontest"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func TestLogRowTypedColumns(t *testing.T) {
	ld := plog.NewLogs()
	decisiontest.Log(ld, t0, map[string]any{
		conventions.DecisionID: "d-1", conventions.DecisionWorkflow: "claims-triage",
		conventions.DecisionLayer: "data", conventions.DecisionEvent: "context.read",
		conventions.DataSource: "policy-db", conventions.DataAsOf: "2026-11-26T11:59:00Z",
		conventions.DataComplete: true, "tenant": "acme",
	})
	r := newBuilder(true).logs(ld)
	require.Equal(t, 1, r.Len())
	assert.Equal(t, "d-1", column[string](r, "decision_id")[0])
	assert.Equal(t, "claims-triage", column[string](r, "workflow")[0])
	assert.Equal(t, "data", column[string](r, "layer")[0])
	assert.Equal(t, "context.read", column[string](r, "event")[0])
	assert.Equal(t, "policy-db", column[string](r, "source")[0])
	require.NotNil(t, column[*time.Time](r, "as_of")[0])
	assert.Equal(t, t0.Add(-time.Minute), *column[*time.Time](r, "as_of")[0])
	require.NotNil(t, column[*bool](r, "data_complete")[0])
	assert.True(t, *column[*bool](r, "data_complete")[0])
	assert.Equal(t, "claims-api", r.serviceName[0])
	assert.Equal(t, map[string]string{"tenant": "acme"}, r.attributes[0], "typed attributes leave the map; the rest stay")
	assert.Equal(t, "claims-api", r.resourceAttributes[0]["service.name"])
	assert.Empty(t, r.parseErrors[0])
	assert.Len(t, r.columns(), len(insertColumns))
}

func TestWrongTypedAttributesKeepRawValue(t *testing.T) {
	ld := plog.NewLogs()
	decisiontest.Log(ld, t0, map[string]any{
		conventions.DecisionID: "d-2", conventions.DecisionLayer: "model",
		conventions.ModelConfidence: "high", conventions.DataAsOf: "yesterday",
		conventions.WorkflowQueueDepth: 12.5,
	})
	decisiontest.Log(ld, t0, map[string]any{
		conventions.DecisionID: "d-3", conventions.DecisionLayer: "model", conventions.ModelConfidence: 0.91,
	})
	r := newBuilder(true).logs(ld)
	require.Equal(t, 2, r.Len(), "the record with bad values is kept, and so is its neighbour")
	assert.Nil(t, column[*float64](r, "confidence")[0])
	assert.Nil(t, column[*time.Time](r, "as_of")[0])
	assert.Nil(t, column[*int64](r, "queue_depth")[0])
	assert.Equal(t, "high", r.attributes[0][conventions.ModelConfidence])
	assert.Equal(t, "yesterday", r.attributes[0][conventions.DataAsOf])
	assert.ElementsMatch(t, []string{
		`model.confidence: "high" is not a number`,
		`data.as_of: "yesterday" is not an RFC 3339 timestamp`,
		`workflow.queue.depth: 12.5 is not a whole number`,
	}, r.parseErrors[0])
	assert.Equal(t, map[string]int{conventions.ModelConfidence: 1, conventions.DataAsOf: 1, conventions.WorkflowQueueDepth: 1}, r.parseErrorsByKey)
	require.NotNil(t, column[*float64](r, "confidence")[1])
	assert.InDelta(t, 0.91, *column[*float64](r, "confidence")[1], 1e-12)
}

func TestUnclassifiedRecords(t *testing.T) {
	for _, tt := range []struct {
		name            string
		keep            bool
		rows            int
		stored, refused int
	}{
		{"kept", true, 2, 1, 0},
		{"refused", false, 1, 0, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ld := plog.NewLogs()
			decisiontest.Log(ld, t0, map[string]any{"http.route": "/health"})
			decisiontest.Log(ld, t0, map[string]any{conventions.DecisionID: "d-4", conventions.DecisionLayer: "human", conventions.HumanAction: "overridden"})
			r := newBuilder(tt.keep).logs(ld)
			require.Equal(t, tt.rows, r.Len())
			assert.Equal(t, tt.stored, r.unclassifiedStored)
			assert.Equal(t, tt.refused, r.unclassifiedRefused)
			if tt.keep {
				assert.Equal(t, conventions.LayerUnclassified, column[string](r, "layer")[0])
			}
			assert.Equal(t, "overridden", column[string](r, "human_action")[r.Len()-1])
		})
	}
}

func TestGenAISpanIsModelOutput(t *testing.T) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName("chat claims-model")
	sp.SetTraceID(pcommon.TraceID{1, 2, 3})
	sp.SetSpanID(pcommon.SpanID{4, 5})
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(250 * time.Millisecond)))
	require.NoError(t, sp.Attributes().FromRaw(map[string]any{
		conventions.DecisionID: "d-5", conventions.GenAIRequestModel: "claims-model",
		conventions.GenAIUsageInputTokens: 812, conventions.ModelConfidence: 0.7,
	}))
	r := newBuilder(true).traces(td)
	require.Equal(t, 1, r.Len())
	assert.Equal(t, "model", column[string](r, "layer")[0])
	assert.Equal(t, "model.output", column[string](r, "event")[0])
	assert.Equal(t, "claims-model", column[string](r, "model_name")[0])
	assert.Equal(t, uint64(250*time.Millisecond), r.durationNS[0])
	assert.Equal(t, "01020300000000000000000000000000", r.traceID[0])
	require.NotNil(t, column[*int64](r, "input_tokens")[0])
	assert.Equal(t, int64(812), *column[*int64](r, "input_tokens")[0])
	assert.Equal(t, "claims-model", r.attributes[0][conventions.GenAIRequestModel], "GenAI attributes stay available by their own names")
}

func TestEventIDStableAcrossRedelivery(t *testing.T) {
	build := func() *Events {
		ld := plog.NewLogs()
		decisiontest.Log(ld, t0, map[string]any{conventions.DecisionID: "d-6", conventions.DecisionLayer: "business", conventions.BusinessOutcome: "paid"})
		decisiontest.Log(ld, t0, map[string]any{conventions.DecisionID: "d-6", conventions.DecisionLayer: "business", conventions.BusinessOutcome: "reopened"})
		return newBuilder(true).logs(ld)
	}
	a, b := build(), build()
	assert.Equal(t, a.eventID, b.eventID)
	assert.Equal(t, a.dedupToken(), b.dedupToken())
	assert.NotEqual(t, a.eventID[0], a.eventID[1], "records that differ only in one attribute are different events")

	ld := plog.NewLogs()
	decisiontest.Log(ld, t0, map[string]any{conventions.DecisionID: "d-7", conventions.DecisionEventID: "producer-key-1"})
	decisiontest.Log(ld, t0.Add(time.Second), map[string]any{conventions.DecisionID: "d-7", conventions.DecisionEventID: "producer-key-1", "retry": true})
	r := newBuilder(true).logs(ld)
	assert.Equal(t, r.eventID[0], r.eventID[1], "a producer's own idempotency key wins")
}

// A producer that resends a record without decision.event_id sends the
// same event even though it is observed again: the JSON receiver stamps
// each request's receipt as the observed time, and a log file read again
// after a restart is observed anew. Only a record without a time of its
// own is told apart by its observed time, which is then its stored time.
func TestResentRecordObservedAgainIsTheSameEvent(t *testing.T) {
	ld := plog.NewLogs()
	for _, tc := range []struct{ ts, obs time.Time }{
		{t0, t0.Add(time.Second)}, {t0, t0.Add(time.Hour)}, // the same record, observed twice
		{time.Time{}, t0.Add(time.Second)}, {time.Time{}, t0.Add(time.Hour)}, // no time of its own
	} {
		attrs := map[string]any{conventions.DecisionID: "d-8", conventions.DecisionLayer: "human", conventions.HumanAction: "accepted"}
		lr := decisiontest.Log(ld, tc.ts, attrs)
		if tc.ts.IsZero() {
			lr.SetTimestamp(0)
		}
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(tc.obs))
	}
	r := newBuilder(true).logs(ld)
	assert.Equal(t, r.eventID[0], r.eventID[1], "a record with its own time is the same event whenever it is observed")
	assert.NotEqual(t, r.eventID[2], r.eventID[3], "a record stored at its observed time is told apart by it")
	assert.NotEqual(t, r.eventID[0], r.eventID[2])
}

// A record's time is its own; else its observed time (a log) or end (a
// span); else when it is stored. 0 and a time past 2262 (2^64-1 is sent)
// would otherwise land in 1970, under every TTL.
func TestRecordWithoutAUsableTimeIsKeptAtObservedOrStoreTime(t *testing.T) {
	stored := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	observed := t0.Add(time.Minute)
	huge := pcommon.Timestamp(^uint64(0))
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, tc := range []struct{ ts, obs pcommon.Timestamp }{
		{pcommon.NewTimestampFromTime(t0), pcommon.NewTimestampFromTime(observed)}, // its own
		{huge, pcommon.NewTimestampFromTime(observed)},                             // observed
		{0, pcommon.NewTimestampFromTime(observed)},                                // observed
		{huge, huge}, // stored
		{0, 0},       // stored
	} {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(tc.ts)
		lr.SetObservedTimestamp(tc.obs)
		lr.Attributes().PutStr(conventions.DecisionID, "d")
	}
	b := newBuilder(true)
	b.now = func() time.Time { return stored }
	r := b.logs(ld)
	want := []time.Time{t0, observed, observed, stored, stored}
	for i := range want {
		assert.True(t, want[i].Equal(r.time[i]), "record %d: %v, want %v", i, r.time[i], want[i])
	}
	assert.NotEqual(t, r.eventID[1], r.eventID[2], "the event ID is of the timestamps as sent")

	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetStartTimestamp(huge)
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(observed))
	sp.Attributes().PutStr(conventions.DecisionID, "d")
	assert.True(t, observed.Equal(b.traces(td).time[0]), "a span without a usable start: its end")
}

func BenchmarkBuildLogRows(b *testing.B) {
	ld := plog.NewLogs()
	for i := 0; i < 1000; i++ {
		decisiontest.Log(ld, t0, map[string]any{
			conventions.DecisionID: fmt.Sprintf("bench-%d", i), conventions.DecisionWorkflow: "claims-triage",
			conventions.DecisionLayer: "data", conventions.DecisionEvent: "context.read",
			conventions.DataSource: "policy-db", conventions.DataAsOf: "2026-11-26T11:59:00Z",
			conventions.DataComplete: true, conventions.DataEntitySystem: "crm", conventions.DataEntityID: "C-1",
			conventions.ModelConfidence: 0.82, "tenant": "acme",
		})
	}
	bld := newBuilder(true)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := bld.logs(ld)
		_ = r.dedupToken()
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}

// column is the values of the events column named col.
func column[T any](r *Events, col string) []T {
	for i, f := range decision.StoredFields {
		if f.Column == col {
			return r.fields[i].Values().([]T)
		}
	}
	panic("no column " + col)
}
