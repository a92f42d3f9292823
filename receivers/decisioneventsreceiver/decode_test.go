package decisioneventsreceiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
)

var fuzzNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func FuzzDecode(f *testing.F) {
	seeds := []struct {
		body          string
		ndjson, human bool
	}{
		{body: array(model("d-1", ""), model("d-2", `"attributes":{"a":[1,{"b":null}]},"resource":{"service.name":"x"}`))},
		{body: model("d-1", `"time":"2026-11-26T10:00:00Z","data.as_of":1764151200123`)},
		{body: model("d-1", "") + "\n" + model("d-2", `"model.confidence":"NaN"`) + "\n", ndjson: true},
		{body: `[{"decision_id":"d","workflow":"w","action":"accepted","actor":"a","reason":"r","time":1764151200.5}]`, human: true},
		{body: `{"decision_id":"d","workflow":"w","action":"approved"}`, human: true},
		{body: `[{"decision.id": "d-2",, "x": 1}]`},
		{body: `[` + model("d-1", "")},
		{body: `[1, "x", null, true, [], {}]`},
		{body: "[{\"decision.id\":\"\xff\"}]"},
		{body: "{\"decision.\xfe\":1}\n{\"a\":", ndjson: true},
		{body: model("d", `"model.confidence":1e999,"workflow.queue.depth":1.5,"data.as_of":"2999-01-01T00:00:00Z"`)},
		{body: model("d", `"attributes":{"decision.id":"x","deep":`+strings.Repeat(`[`, 12)+strings.Repeat(`]`, 12)+`}`)},
		{body: ""},
		{body: "   \n"},
		{body: `[]`},
		{body: `[{}] x`},
	}
	for _, s := range seeds {
		f.Add([]byte(s.body), s.ndjson, s.human)
	}
	f.Fuzz(func(t *testing.T, body []byte, ndjson, human bool) {
		k, fm := kindEvents, formatJSON
		if human {
			k = kindHuman
		}
		if ndjson {
			fm = formatNDJSON
		}
		res, err := newDecoder(limits{maxEvents: 50, maxAttributes: 16}, k, fuzzNow).decode(body, fm)
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) || (re.status != http.StatusBadRequest && re.status != http.StatusRequestEntityTooLarge) || re.msg == "" {
				t.Fatalf("unexpected error %#v", err)
			}
			return
		}
		if res.accepted+res.refused != res.events || res.events > 50 {
			t.Fatalf("accepted %d + refused %d != events %d", res.accepted, res.refused, res.events)
		}
		if got := res.logs.LogRecordCount(); got != res.accepted {
			t.Fatalf("%d log records for %d accepted events", got, res.accepted)
		}
		if res.refused > 0 && len(res.errors) == 0 {
			t.Fatalf("%d refused events without an error", res.refused)
		}
		for _, e := range res.errors {
			if !strings.HasPrefix(e.Path, "["+strconv.Itoa(e.Index)+"]") || e.Index >= res.events || e.Reason == "" {
				t.Fatalf("bad error entry %+v", e)
			}
			if !utf8.ValidString(e.Path) || !utf8.ValidString(e.Reason) {
				t.Fatalf("error entry is not UTF-8: %q %q", e.Path, e.Reason)
			}
		}
		rls := res.logs.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			lrs := rls.At(i).ScopeLogs().At(0).LogRecords()
			for j := 0; j < lrs.Len(); j++ {
				a := lrs.At(j).Attributes()
				for _, key := range []string{c.DecisionWorkflow, c.DecisionLayer, c.DecisionEvent} {
					if v, ok := a.Get(key); !ok || strings.TrimSpace(v.AsString()) == "" {
						t.Fatalf("accepted record without %s: %v", key, a.AsRaw())
					}
				}
			}
		}
	})
}

// FuzzParser holds the hand-written scanner to encoding/json: the same
// inputs are valid, and strings decode to the same text.
func FuzzParser(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,-2.5e+3,true,false,null,{"b":"c"}]}`, `"esc \" \\ \/ \b\f\n\r\t \u00e9 \ud83d\ude00 \ud800 \udc00x \ud800\u0041"`,
		"\"caf\xe9\"", `01`, `-`, `1.`, `1e`, `[1,]`, `{"a" 1}`, `{"a":1,}`, `tru`, `nul`, `"\x"`, `"\u12G4"`, "\"a\x01\"",
		`  [ ]  `, `{}`, `[[[]]]`, `1 2`, `"`, `-0.0E-0`, `1E400`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := parser{b: b}
		p.ws()
		var n int
		ok := p.skip(&n, 0)
		if ok {
			p.ws()
			ok = p.pos == len(b)
		}
		if ok != json.Valid(b) {
			t.Fatalf("parser says valid=%v, encoding/json %v, for %q (err %+v)", ok, !ok, b, p.err)
		}
		if !ok && p.err == nil && p.pos == len(b) {
			t.Fatalf("invalid input without an error: %q", b)
		}
		if i := firstNonSpace(b); ok && b[i] == '"' {
			var want string
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			q := parser{b: b, pos: i}
			got, _, sok := q.str()
			if !sok || string(got) != want {
				t.Fatalf("string %q decodes to %q, encoding/json %q", b, got, want)
			}
		}
	})
}

func TestDecoderReusesNothingAcrossEvents(t *testing.T) {
	// A refused event's attributes must not leak into the next accepted one.
	body := array(model("d-1", `"attributes":{"secret":1},"model.confidence":7`), model("d-2", ""))
	res, err := newDecoder(limits{maxEvents: 10, maxAttributes: 10}, kindEvents, fuzzNow).decode([]byte(body), formatJSON)
	if err != nil {
		t.Fatal(err)
	}
	lr := res.logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	if _, ok := lr.Attributes().Get("secret"); ok || res.accepted != 1 {
		t.Fatalf("accepted %d, record %v", res.accepted, lr.Attributes().AsRaw())
	}
}

// benchBody is n events shaped like dtloadgen's traffic: each layer with its
// usual fields.
func benchBody(n int, ndjson bool) []byte {
	shapes := []string{
		`{"decision.id":"run-%d","decision.workflow":"claims-triage","decision.layer":"data","decision.event":"context.read","data.source":"policy-db","data.as_of":"2026-11-26T11:59:10.123Z","data.complete":true,"data.entity.system":"policy-admin","data.entity.id":"POL-1234567","time":"2026-11-26T12:00:00.000000001Z"}`,
		`{"decision.id":"run-%d","decision.workflow":"claims-triage","decision.layer":"model","decision.event":"model.output","model.name":"claims-triage-llm","model.version":"2025.09.1","model.confidence":0.8812,"model.recommendation":"fast-track","model.latency_ms":655.4,"gen_ai.request.model":"gpt-4.1-mini","gen_ai.usage.input_tokens":1834,"gen_ai.usage.output_tokens":176,"time":"2026-11-26T12:00:00.000000002Z"}`,
		`{"decision.id":"run-%d","decision.workflow":"claims-triage","decision.layer":"workflow","decision.event":"workflow.routed","workflow.route":"manual","workflow.queue":"manual-review","time":"2026-11-26T12:00:00.000000003Z"}`,
		`{"decision.id":"run-%d","decision.workflow":"claims-triage","decision.layer":"human","decision.event":"human.action","human.action":"overridden","human.actor":"adjuster-107","human.reason":"context-outdated","time":"2026-11-26T12:00:00.000000004Z"}`,
		`{"decision.id":"run-%d","decision.workflow":"claims-triage","decision.layer":"business","decision.event":"business.outcome","business.outcome":"paid","business.cycle_time_s":10843.2,"business.cost":5.1032,"time":"2026-11-26T12:00:00.000000005Z"}`,
	}
	var b bytes.Buffer
	if !ndjson {
		b.WriteByte('[')
	}
	for i := 0; i < n; i++ {
		if i > 0 && !ndjson {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, shapes[i%len(shapes)], i/len(shapes))
		if ndjson {
			b.WriteByte('\n')
		}
	}
	if !ndjson {
		b.WriteByte(']')
	}
	return b.Bytes()
}

// BenchmarkDecode measures decoding, validation and conversion to pdata of
// a 1,000-event request; ns/event and allocs/event are per event.
func BenchmarkDecode(b *testing.B) {
	for _, ndjson := range []bool{false, true} {
		name, fm := "json", formatJSON
		if ndjson {
			name, fm = "ndjson", formatNDJSON
		}
		b.Run(name, func(b *testing.B) {
			const n = 1000
			body := benchBody(n, ndjson)
			lim := limits{maxEvents: n, maxAttributes: 128}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := newDecoder(lim, kindEvents, fuzzNow).decode(body, fm)
				if err != nil || res.accepted != n {
					b.Fatalf("accepted %d of %d: %v %v", res.accepted, n, err, res.errors)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N*n), "allocs/event")
		})
	}
}
