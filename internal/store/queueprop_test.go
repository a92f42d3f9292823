package store

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	pdatareq "go.opentelemetry.io/collector/pdata/xpdata/request"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/decision"
)

// The property of issue 12 item 1: every request a receiver accepts is
// readable back from the persistent sending queue, and stores the same
// rows as it would have without the queue.
//
// What the receivers accept is what otlpreceiver's decoders accept
// (receiver/otlpreceiver encoder.go): plogotlp/ptraceotlp ExportRequest
// UnmarshalJSON for OTLP/HTTP JSON, UnmarshalProto for OTLP/HTTP protobuf
// (and gRPC, the same message).
//
// What the queue does is exporterhelper's persistent queue at the version
// in go.mod: exporter/exporterhelper v0.165.0
// internal/queue/persistent_queue.go writes pq.encoding.Marshal(ctx, req)
// and reads pq.encoding.Unmarshal(bytes), dropping the request with only a
// debug log when that fails; the encoding for logs and traces is
// internal/queuebatch logs.go/traces.go logsEncoding/tracesEncoding, whose
// Marshal is pdata/xpdata/request.MarshalLogs/MarshalTraces and whose
// Unmarshal is request.UnmarshalLogs/UnmarshalTraces (a LogsRequest or
// TracesRequest protobuf around the data, read with pdata's protobuf
// decoder and its recursion limit of 100), falling back to
// plog/ptrace ProtoUnmarshaler for payloads of the older format. The
// queuebatch package is internal, so the test calls those same xpdata
// functions; the exporter-level test (exporters/decisionstoreexporter)
// runs requests through a real persistent queue.

var (
	queuePropCases = flag.Int("queueprop.cases", 500, "generated requests per signal for the queue property tests")
	queuePropSeed  = flag.Uint64("queueprop.seed", 20260512, "first seed of the queue property tests (case i uses seed+i)")
)

func TestPropertyAcceptedLogsReadBackFromQueueSameRows(t *testing.T) {
	st := runQueueProperty(t, *queuePropCases, *queuePropSeed, func(g *pdataGen) queueCase {
		return logsCase(g.logs(), g.dups)
	})
	t.Logf("logs: %s", st)
}

func TestPropertyAcceptedTracesReadBackFromQueueSameRows(t *testing.T) {
	st := runQueueProperty(t, *queuePropCases, *queuePropSeed, func(g *pdataGen) queueCase {
		return tracesCase(g.traces(), g.dups)
	})
	t.Logf("traces: %s", st)
}

// queueCase is one generated request: what each receiver path accepted of
// it and how each accepted request went through flattening and the queue.
type queueCase struct {
	accepted, refused, flattened int
	failures                     []string
	// covered counts, by shape, the accepted requests that hold it
	covered coverage
}

type propStats struct {
	cases, accepted, refused, flattened, failed int
	elapsed                                     time.Duration
	covered                                     coverage
}

func (s propStats) String() string {
	return fmt.Sprintf("%d cases in %v: %d requests accepted by a receiver path and checked through the queue, %d refused, %d values flattened, %d cases failed",
		s.cases, s.elapsed.Round(time.Millisecond), s.accepted, s.refused, s.flattened, s.failed)
}

func runQueueProperty(t *testing.T, n int, seed uint64, run func(*pdataGen) queueCase) propStats {
	t.Helper()
	start := time.Now()
	st := propStats{covered: coverage{}}
	for i := 0; i < n; i++ {
		s := seed + uint64(i)
		g := newPDataGen(s)
		qc := run(g)
		st.cases++
		st.accepted += qc.accepted
		st.refused += qc.refused
		st.flattened += qc.flattened
		for k, v := range qc.covered {
			st.covered[k] += v
		}
		if len(qc.failures) > 0 {
			st.failed++
			// The first few in full; a property that fails often would
			// otherwise drown the log.
			if st.failed <= 5 {
				t.Errorf("seed %d (-queueprop.seed=%d -queueprop.cases=1):\n  %s", s, s, strings.Join(qc.failures, "\n  "))
			}
		}
	}
	st.elapsed = time.Since(start)
	if st.accepted == 0 {
		t.Error("no generated request was accepted: the generator tests nothing")
	}
	// Every shape of the catalogue reached the queue at least once, else
	// the generator has drifted and the property holds of less than it
	// says (with the default -queueprop.cases).
	if n >= 100 {
		for _, shape := range catalogue {
			if st.covered[shape] == 0 {
				t.Errorf("no accepted request held %q", shape)
			}
		}
	}
	keys := make([]string, 0, len(st.covered))
	for k := range st.covered {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %5d %s", st.covered[k], k)
	}
	t.Logf("accepted requests by shape held:%s", b.String())
	return st
}

// fixedNow is the store time of records without a usable time, so that two
// row builds of the same data agree.
var fixedNow = time.Date(2026, 5, 12, 10, 0, 0, 0, time.UTC)

func logRows(ld plog.Logs) *Events {
	b := newBuilder(true)
	b.now = func() time.Time { return fixedNow }
	return b.logs(ld)
}

func spanRows(td ptrace.Traces) *Events {
	b := newBuilder(true)
	b.now = func() time.Time { return fixedNow }
	return b.traces(td)
}

// withDups turns the placeholder keys of a JSON request into the keys they
// stand for: pcommon.Map cannot hold two equal keys, OTLP/JSON can (the
// attributes are a list of key/value objects).
func withDups(js []byte, dups map[string]string) []byte {
	for ph, key := range dups {
		js = bytes.ReplaceAll(js, []byte(strconv.Quote(ph)), []byte(key))
	}
	return js
}

func logsCase(sent plog.Logs, dups map[string]string) queueCase {
	var qc queueCase
	var accepted []plog.Logs
	var paths []string

	// OTLP/HTTP JSON: what a client sends, read as otlpreceiver reads it.
	js, err := plogotlp.NewExportRequestFromLogs(sent).MarshalJSON()
	if err != nil {
		qc.failures = append(qc.failures, "client-side JSON marshal: "+err.Error())
		return qc
	}
	js = withDups(js, dups)
	jreq := plogotlp.NewExportRequest()
	if err := jreq.UnmarshalJSON(js); err != nil {
		qc.refused++
	} else {
		accepted = append(accepted, jreq.Logs())
		paths = append(paths, "OTLP/JSON")
		// The same request (duplicate keys and all) sent as protobuf.
		if pb, err := plogotlp.NewExportRequestFromLogs(jreq.Logs()).MarshalProto(); err == nil {
			preq := plogotlp.NewExportRequest()
			if err := preq.UnmarshalProto(pb); err != nil {
				qc.refused++
			} else {
				accepted = append(accepted, preq.Logs())
				paths = append(paths, "protobuf of the JSON-accepted request")
			}
		}
	}
	// OTLP protobuf (HTTP or gRPC) of the generated request itself:
	// invalid UTF-8 travels as it is here, not as JSON escapes it.
	pb, err := plogotlp.NewExportRequestFromLogs(sent).MarshalProto()
	if err != nil {
		qc.failures = append(qc.failures, "client-side protobuf marshal: "+err.Error())
		return qc
	}
	preq := plogotlp.NewExportRequest()
	if err := preq.UnmarshalProto(pb); err != nil {
		qc.refused++
	} else {
		accepted = append(accepted, preq.Logs())
		paths = append(paths, "protobuf")
	}

	qc.covered = coverage{}
	for i, ld := range accepted {
		qc.accepted++
		qc.covered.add(logShapes(ld))
		fail := func(format string, args ...any) {
			qc.failures = append(qc.failures, paths[i]+": "+fmt.Sprintf(format, args...))
		}
		want := logRows(ld)
		before, _ := (&plog.ProtoMarshaler{}).MarshalLogs(ld)

		flat, n := FlattenDeepLogs(ld) // what the exporter's flatLogs does before the queue
		qc.flattened += n
		if after, _ := (&plog.ProtoMarshaler{}).MarshalLogs(ld); !bytes.Equal(before, after) {
			fail("FlattenDeepLogs modified its input")
		}
		buf, err := pdatareq.MarshalLogs(context.Background(), flat) // the queue's logsEncoding.Marshal
		if err != nil {
			fail("queue encoding: %v", err)
			continue
		}
		_, got, err := pdatareq.UnmarshalLogs(buf) // the queue's logsEncoding.Unmarshal
		if err != nil {
			fail("the queue cannot read the request back (%d values flattened, deepest value %d levels): %v", n, deepestLogs(flat), err)
			continue
		}
		if got.LogRecordCount() != ld.LogRecordCount() || got.ResourceLogs().Len() != ld.ResourceLogs().Len() {
			fail("read back %d records in %d resources, accepted %d in %d",
				got.LogRecordCount(), got.ResourceLogs().Len(), ld.LogRecordCount(), ld.ResourceLogs().Len())
			continue
		}
		if f, _ := (&plog.ProtoMarshaler{}).MarshalLogs(flat); !bytes.Equal(f, mustProtoLogs(got)) {
			fail("the queue read back other data than it was given")
		}
		if d := diffEvents(logRows(flat), logRows(got)); d != "" {
			fail("stored rows differ from the flattened request's: %s", d)
		}
		if d := diffEvents(want, logRows(got)); d != "" && !typedDeepLogs(ld) {
			fail("stored rows differ from the accepted request's: %s", d)
		}
	}
	return qc
}

func tracesCase(sent ptrace.Traces, dups map[string]string) queueCase {
	var qc queueCase
	var accepted []ptrace.Traces
	var paths []string

	js, err := ptraceotlp.NewExportRequestFromTraces(sent).MarshalJSON()
	if err != nil {
		qc.failures = append(qc.failures, "client-side JSON marshal: "+err.Error())
		return qc
	}
	js = withDups(js, dups)
	jreq := ptraceotlp.NewExportRequest()
	if err := jreq.UnmarshalJSON(js); err != nil {
		qc.refused++
	} else {
		accepted = append(accepted, jreq.Traces())
		paths = append(paths, "OTLP/JSON")
		if pb, err := ptraceotlp.NewExportRequestFromTraces(jreq.Traces()).MarshalProto(); err == nil {
			preq := ptraceotlp.NewExportRequest()
			if err := preq.UnmarshalProto(pb); err != nil {
				qc.refused++
			} else {
				accepted = append(accepted, preq.Traces())
				paths = append(paths, "protobuf of the JSON-accepted request")
			}
		}
	}
	pb, err := ptraceotlp.NewExportRequestFromTraces(sent).MarshalProto()
	if err != nil {
		qc.failures = append(qc.failures, "client-side protobuf marshal: "+err.Error())
		return qc
	}
	preq := ptraceotlp.NewExportRequest()
	if err := preq.UnmarshalProto(pb); err != nil {
		qc.refused++
	} else {
		accepted = append(accepted, preq.Traces())
		paths = append(paths, "protobuf")
	}

	qc.covered = coverage{}
	for i, td := range accepted {
		qc.accepted++
		qc.covered.add(spanShapes(td))
		fail := func(format string, args ...any) {
			qc.failures = append(qc.failures, paths[i]+": "+fmt.Sprintf(format, args...))
		}
		want := spanRows(td)
		before, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)

		flat, n := FlattenDeepTraces(td) // what the exporter's flatTraces does before the queue
		qc.flattened += n
		if after, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(td); !bytes.Equal(before, after) {
			fail("FlattenDeepTraces modified its input")
		}
		buf, err := pdatareq.MarshalTraces(context.Background(), flat) // tracesEncoding.Marshal
		if err != nil {
			fail("queue encoding: %v", err)
			continue
		}
		_, got, err := pdatareq.UnmarshalTraces(buf) // tracesEncoding.Unmarshal
		if err != nil {
			fail("the queue cannot read the request back (%d values flattened): %v", n, err)
			continue
		}
		if got.SpanCount() != td.SpanCount() || got.ResourceSpans().Len() != td.ResourceSpans().Len() {
			fail("read back %d spans in %d resources, accepted %d in %d",
				got.SpanCount(), got.ResourceSpans().Len(), td.SpanCount(), td.ResourceSpans().Len())
			continue
		}
		if f, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(flat); !bytes.Equal(f, mustProtoTraces(got)) {
			fail("the queue read back other data than it was given")
		}
		if d := diffEvents(spanRows(flat), spanRows(got)); d != "" {
			fail("stored rows differ from the flattened request's: %s", d)
		}
		if d := diffEvents(want, spanRows(got)); d != "" && !typedDeepTraces(td) {
			fail("stored rows differ from the accepted request's: %s", d)
		}
	}
	return qc
}

func mustProtoLogs(ld plog.Logs) []byte {
	b, _ := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	return b
}

func mustProtoTraces(td ptrace.Traces) []byte {
	b, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	return b
}

func deepestLogs(ld plog.Logs) int {
	d := 0
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				if n := nesting(lr.Body(), math.MaxInt32); n > d {
					d = n
				}
				for _, v := range lr.Attributes().All() {
					if n := nesting(v, math.MaxInt32); n > d {
						d = n
					}
				}
			}
		}
	}
	return d
}

// diffEvents names the first column, row and values in which two builds
// differ, and any difference in the per-request counters; "" when equal.
func diffEvents(want, got *Events) string {
	if want.Len() != got.Len() {
		return fmt.Sprintf("%d rows, want %d", got.Len(), want.Len())
	}
	wc, gc := want.columns(), got.columns()
	for i := range wc {
		if reflect.DeepEqual(wc[i], gc[i]) {
			continue
		}
		w, g := reflect.ValueOf(wc[i]), reflect.ValueOf(gc[i])
		for row := 0; row < w.Len(); row++ {
			if !reflect.DeepEqual(w.Index(row).Interface(), g.Index(row).Interface()) {
				return fmt.Sprintf("column %s, row %d: got %s, want %s", insertColumns[i], row,
					show(g.Index(row)), show(w.Index(row)))
			}
		}
	}
	ws, wr := want.Unclassified()
	gs, gr := got.Unclassified()
	if ws != gs || wr != gr {
		return fmt.Sprintf("unclassified stored/refused %d/%d, want %d/%d", gs, gr, ws, wr)
	}
	if !reflect.DeepEqual(want.ParseErrors(), got.ParseErrors()) {
		return fmt.Sprintf("parse errors by key %v, want %v", got.ParseErrors(), want.ParseErrors())
	}
	return ""
}

func show(v reflect.Value) string {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "nil"
		}
		v = v.Elem()
	}
	s := fmt.Sprintf("%q", v.Interface())
	if v.Kind() != reflect.String && v.Kind() != reflect.Slice && v.Kind() != reflect.Map {
		s = fmt.Sprintf("%v", v.Interface())
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// typedDeep reports whether an attribute the store reads into a typed
// column (decision.id, model.name, its alias gen_ai.request.model, ...) nests deeper than MaxNesting. Such
// a value fails its convention as a map but, taken as its JSON text for
// the queue, is read as a string: the one case where flattening changes
// the stored row (TestDeepTypedAttributeIsReadAsItsJSONText).
func typedDeep(m pcommon.Map) bool {
	deep := false
	m.Range(func(k string, v pcommon.Value) bool {
		_, _, read := decision.Lookup(k)
		deep = read && nesting(v, MaxNesting) > MaxNesting
		return !deep
	})
	return deep
}

func typedDeepLogs(ld plog.Logs) bool {
	for _, lr := range decision.LogRecords(ld) {
		if typedDeep(lr.Attributes()) {
			return true
		}
	}
	return false
}

func typedDeepTraces(td ptrace.Traces) bool {
	for _, sp := range decision.Spans(td) {
		if typedDeep(sp.Attributes()) {
			return true
		}
	}
	return false
}

// An attribute the store reads into a typed column, sent as a map nested
// MaxNesting+1 levels (OTLP/JSON and protobuf receivers both accept it),
// is taken as its JSON text before the queue like any other, and so is
// read as a string: decision.id holds the JSON text. That is the one
// difference flattening makes to a stored row (as a map it would fail its
// convention, column empty); such a value is malformed either way, and
// what is stored is the same on every path and after every redelivery.
func TestDeepTypedAttributeIsReadAsItsJSONText(t *testing.T) {
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(fixedNow))
	lr.Attributes().PutStr(c.DecisionWorkflow, "claims")
	putNested(lr.Attributes(), c.DecisionID, MaxNesting+1, false)
	text, _ := lr.Attributes().Get(c.DecisionID)

	flat, n := FlattenDeepLogs(ld)
	if n != 1 {
		t.Fatalf("flattened %d values, want 1", n)
	}
	buf, err := pdatareq.MarshalLogs(context.Background(), flat)
	if err != nil {
		t.Fatal(err)
	}
	_, got, err := pdatareq.UnmarshalLogs(buf)
	if err != nil {
		t.Fatalf("the queue cannot read it back: %v", err)
	}
	rows := logRows(got)
	if d := diffEvents(logRows(flat), rows); d != "" {
		t.Errorf("stored rows differ through the queue: %s", d)
	}
	if want := text.AsString(); len(column[string](rows, "decision_id")) != 1 || column[string](rows, "decision_id")[0] != want {
		t.Errorf("decision_id = %q, want the value's JSON text %q", column[string](rows, "decision_id"), want)
	}
}
