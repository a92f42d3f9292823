package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/decision"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
	"github.com/decisiontrace/decisiontrace/receivers/decisioneventsreceiver"
)

func decodeEvents(t *testing.T, body []byte) []map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var out []map[string]any
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, body)
	}
	return out
}

// sameValue compares an attribute with its JSON form.
func sameValue(v pcommon.Value, j any) bool {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return j == v.Str()
	case pcommon.ValueTypeBool:
		return j == v.Bool()
	case pcommon.ValueTypeInt:
		n, ok := j.(json.Number)
		return ok && string(n) == strconv.FormatInt(v.Int(), 10)
	case pcommon.ValueTypeDouble:
		n, ok := j.(json.Number)
		f, err := n.Float64()
		return ok && err == nil && f == v.Double()
	}
	return false
}

func TestJSONEncodingCarriesEveryEvent(t *testing.T) {
	g := newGenerator(newShared(genConfig{runID: "r1", seed: 3, staleShare: 0.02, missingShare: 0.01, signalInterval: time.Hour}), 0)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := g.fill(2000, now)
	for _, tc := range []struct {
		name string
		body []byte
		recs []record
	}{
		{"logs", encodeLogs(b.logs), collect(batch{logs: b.logs, traces: ptrace.NewTraces()})},
		{"spans", encodeSpans(b.traces), collect(batch{logs: plog.NewLogs(), traces: b.traces})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events := decodeEvents(t, tc.body)
			if len(events) != len(tc.recs) || len(events) == 0 {
				t.Fatalf("%d events encoded for %d records", len(events), len(tc.recs))
			}
			for i, ev := range events {
				r := tc.recs[i]
				want := r.ts
				if r.span {
					// Spans are dated by their start, as the decisionstore
					// exporter dates them; collect gives the end.
					want = b.traces.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(i).StartTimestamp().AsTime()
				}
				ts, err := time.Parse(time.RFC3339Nano, ev["time"].(string))
				if err != nil || !ts.Equal(want) {
					t.Fatalf("event %d: time %v, record %v (%v)", i, ev["time"], r.ts, err)
				}
				res, _ := ev["resource"].(map[string]any)
				if res["service.instance.id"] != "r1" {
					t.Fatalf("event %d: resource %v", i, ev["resource"])
				}
				// time and resource plus one member per attribute.
				if len(ev) != r.attrs.Len()+2 {
					t.Fatalf("event %d has %d members for %d attributes: %v", i, len(ev), r.attrs.Len(), ev)
				}
				r.attrs.Range(func(k string, v pcommon.Value) bool {
					if !sameValue(v, ev[k]) {
						t.Fatalf("event %d: %s is %#v in JSON, %v in the record", i, k, ev[k], v.AsRaw())
					}
					return true
				})
			}
		})
	}
}

func TestJSONEncodingEscapesAndNestsExtraAttributes(t *testing.T) {
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Unix(1764151200, 5)))
	lr.Attributes().PutStr(c.DecisionID, "d-\"1\"")
	lr.Attributes().PutStr("note", "quote\" back\\ nl\n tab\t ctrl\x01 ünï \xff")
	lr.Attributes().PutEmptySlice("tags").AppendEmpty().SetStr("a")
	events := decodeEvents(t, encodeLogs(ld))
	if len(events) != 1 {
		t.Fatalf("%d events", len(events))
	}
	ev := events[0]
	if ev[c.DecisionID] != "d-\"1\"" || ev["time"] != "2025-11-26T10:00:00.000000005Z" {
		t.Fatalf("event %v", ev)
	}
	extra := ev["attributes"].(map[string]any)
	if extra["note"] != "quote\" back\\ nl\n tab\t ctrl\x01 ünï \ufffd" || len(extra["tags"].([]any)) != 1 {
		t.Fatalf("attributes %#v", extra)
	}
	if _, ok := ev["resource"]; ok {
		t.Fatalf("empty resource encoded: %v", ev)
	}
}

// TestJSONThroughReceiver sends generated traffic through the real
// decisionevents receiver: every event must be accepted as it is generated.
func TestJSONThroughReceiver(t *testing.T) {
	f := decisioneventsreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*decisioneventsreceiver.Config)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t)))
	cfg.NetAddr.Endpoint = addr
	sink := &consumertest.LogsSink{}
	rcv, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	exp := newJSONExporter(addr, true, 2)
	defer func() {
		_ = exp.close()
		if err := rcv.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	st := &stats{}
	const events = 3000
	run(context.Background(), runConfig{
		gen:   genConfig{runID: "jr", seed: 9, staleShare: 0.02, missingShare: 0.01, signalInterval: time.Hour},
		batch: 250, workers: 2, events: events,
		deliver: deliverer{exp: exp, timeout: 10 * time.Second},
	}, st)
	if st.sent() != events || st.failed() != 0 || st.logs.rejected.Load()+st.traces.rejected.Load() != 0 {
		t.Fatalf("sent %d failed %d rejected %d, last error %q", st.sent(), st.failed(),
			st.logs.rejected.Load()+st.traces.rejected.Load(), st.lastError())
	}
	if sink.LogRecordCount() != events {
		t.Fatalf("receiver passed on %d records, want %d", sink.LogRecordCount(), events)
	}
	var ev decision.Event
	layers := map[string]int{}
	for _, ld := range sink.AllLogs() {
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			if v, _ := rls.At(i).Resource().Attributes().Get("service.instance.id"); v.AsString() != "jr" {
				t.Fatalf("resource %v", rls.At(i).Resource().Attributes().AsRaw())
			}
			lrs := rls.At(i).ScopeLogs().At(0).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				decision.Extract(lrs.At(k).Attributes(), lrs.At(k).Timestamp().AsTime(), &ev)
				if len(ev.ParseErrors) > 0 {
					t.Fatalf("parse errors %v", ev.ParseErrors)
				}
				layers[ev.Layer]++
			}
		}
	}
	for _, l := range c.Layers {
		if layers[l] == 0 {
			t.Errorf("no %s events came through: %v", l, layers)
		}
	}
}

func TestJSONAnswersAreCounted(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/decision-events" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "wrong path or type", http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var events []map[string]any
		if err := json.Unmarshal(body, &events); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"accepted":0,"refused":0,"error":"overloaded"}`))
		case 2:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"accepted":0,"refused":` + strconv.Itoa(len(events)) + `,"error":"all refused"}`))
		default:
			_, _ = w.Write([]byte(`{"accepted":` + strconv.Itoa(len(events)-1) + `,"refused":1}`))
		}
	}))
	defer srv.Close()
	exp := newJSONExporter(srv.URL, false, 1)
	defer exp.close()
	st := &stats{}
	d := deliverer{exp: exp, st: st, timeout: time.Second, maxRetries: 2, backoff: time.Millisecond}
	g := newGenerator(newShared(genConfig{runID: "t", seed: 1}), 0)
	b := g.fill(100, time.Now())
	d.send(context.Background(), b)
	// Logs: 503 (retried), then all refused. Spans: one refused.
	if st.logs.retries.Load() != 1 || st.logs.rejected.Load() != int64(b.nLogs) || st.logs.sent.Load() != 0 {
		t.Fatalf("logs: retries %d rejected %d sent %d (of %d)", st.logs.retries.Load(), st.logs.rejected.Load(), st.logs.sent.Load(), b.nLogs)
	}
	if st.traces.rejected.Load() != 1 || st.traces.sent.Load() != int64(b.nSpans-1) {
		t.Fatalf("spans: rejected %d sent %d (of %d)", st.traces.rejected.Load(), st.traces.sent.Load(), b.nSpans)
	}
}

// BenchmarkSendJSON is generation, JSON encoding, HTTP and the
// decisionevents receiver's decoding, against a consumer that drops
// everything: the ceiling of --protocol json on one machine.
func BenchmarkSendJSON(b *testing.B) {
	f := decisioneventsreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*decisioneventsreceiver.Config)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cfg.NetAddr.Endpoint = addr
	rcv, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	exp := newJSONExporter(addr, false, 4)
	defer func() {
		_ = exp.close()
		_ = rcv.Shutdown(context.Background())
	}()
	st := &stats{}
	b.ResetTimer()
	run(context.Background(), runConfig{
		gen:   genConfig{runID: "b", seed: 1, staleShare: 0.02, missingShare: 0.01},
		batch: 500, workers: 4, events: int64(b.N),
		deliver: deliverer{exp: exp, timeout: 10 * time.Second, maxRetries: 3, backoff: time.Millisecond},
	}, st)
	if st.sent() != int64(b.N) {
		b.Fatalf("sent %d of %d: %s", st.sent(), b.N, st.lastError())
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
