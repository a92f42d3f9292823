package decisioneventsreceiver

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/decision"
)

type harness struct {
	r      *eventsReceiver
	base   string
	sink   *consumertest.LogsSink
	client *http.Client
}

// start runs a receiver on a free port in front of next (a LogsSink when
// next is nil).
func start(t *testing.T, mut func(*Config), next consumer.Logs) *harness {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	if mut != nil {
		mut(cfg)
	}
	require.NoError(t, cfg.Validate())
	h := &harness{sink: &consumertest.LogsSink{}}
	if next == nil {
		next = h.sink
	}
	r, err := newReceiver(cfg, receivertest.NewNopSettings(typ), next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	tr := &http.Transport{}
	h.r, h.base, h.client = r, "http://"+r.listenAddr.String(), &http.Client{Transport: tr, Timeout: time.Minute}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		assert.NoError(t, r.Shutdown(context.Background()))
	})
	return h
}

type answer struct {
	status int
	header http.Header
	body   response
	raw    string
}

func (h *harness) post(t *testing.T, path, contentType string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.base+path, bytes.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return h.do(t, req)
}

func (h *harness) do(t *testing.T, req *http.Request) answer {
	t.Helper()
	res, err := h.client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	a := answer{status: res.StatusCode, header: res.Header, raw: string(raw)}
	require.Equal(t, "application/json", res.Header.Get("Content-Type"), "body: %s", raw)
	require.NoError(t, json.Unmarshal(raw, &a.body), "body: %s", raw)
	return a
}

func (h *harness) events(t *testing.T, body string) answer {
	t.Helper()
	return h.post(t, eventsPath, "application/json", []byte(body))
}

// records flattens what reached the consumer.
func (h *harness) records() []plog.LogRecord {
	var out []plog.LogRecord
	for _, ld := range h.sink.AllLogs() {
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					out = append(out, lrs.At(k))
				}
			}
		}
	}
	return out
}

// ids lists the decision.id of every record that reached the consumer.
func (h *harness) ids() []string {
	var out []string
	for _, lr := range h.records() {
		id := ""
		if v, ok := lr.Attributes().Get(c.DecisionID); ok {
			id = v.AsString()
		}
		out = append(out, id)
	}
	return out
}

// model is a valid model.output event; fields in extra replace the
// defaults of the same name.
func model(id string, extra string) string {
	fields := []string{
		`"decision.id":"` + id + `"`, `"decision.workflow":"claims-triage"`, `"decision.layer":"model"`,
		`"decision.event":"model.output"`, `"model.name":"triage"`, `"model.confidence":0.9`,
	}
	var out []string
	for _, f := range fields {
		if !strings.Contains(extra, f[:strings.Index(f, ":")+1]) {
			out = append(out, f)
		}
	}
	if extra != "" {
		out = append(out, extra)
	}
	return "{" + strings.Join(out, ",") + "}"
}

func array(events ...string) string { return "[" + strings.Join(events, ",") + "]" }

// requireRefused checks a partial success: status 200, the counts, and an
// error at path whose reason contains reason.
func requireRefused(t *testing.T, a answer, accepted, refused int, path, reason string) {
	t.Helper()
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, accepted, a.body.Accepted, a.raw)
	require.Equal(t, refused, a.body.Refused, a.raw)
	requireError(t, a, path, reason)
}

func requireError(t *testing.T, a answer, path, reason string) {
	t.Helper()
	for _, e := range a.body.Errors {
		if e.Path == path {
			require.Contains(t, e.Reason, reason, a.raw)
			return
		}
	}
	t.Fatalf("no error at %s in %s", path, a.raw)
}

func TestAcceptsArrayOfEvents(t *testing.T) {
	h := start(t, nil, nil)
	body := array(
		`{"decision.id":"d-1","decision.workflow":"claims-triage","decision.layer":"data","decision.event":"context.read",
		  "data.source":"policy-db","data.as_of":"2026-11-26T10:00:00Z","data.complete":true,"time":"2026-11-26T10:00:05.25Z",
		  "attributes":{"tenant":"acme","retries":3,"tags":["a","b"],"nested":{"score":0.5,"none":null}},
		  "resource":{"service.name":"review-tool"}}`,
		model("d-1", `"model.latency_ms":812,"gen_ai.usage.input_tokens":1200,"time":1764151205`),
		`{"decision.workflow":"claims-triage","decision.layer":"data","decision.event":"source.freshness","data.source":"policy-db","data.as_of":1764151200000,"data.available":true}`,
	)
	a := h.events(t, body)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	assert.Equal(t, response{Accepted: 3}, a.body)

	recs := h.records()
	require.Len(t, recs, 3)
	// One ResourceLogs per distinct resource.
	require.Equal(t, 2, h.sink.AllLogs()[0].ResourceLogs().Len())

	byEvent := map[string]plog.LogRecord{}
	for _, lr := range recs {
		byEvent[lr.EventName()] = lr
	}
	read := byEvent[c.EventContextRead]
	assert.Equal(t, map[string]any{
		c.DecisionID: "d-1", c.DecisionWorkflow: "claims-triage", c.DecisionLayer: "data", c.DecisionEvent: "context.read",
		c.DataSource: "policy-db", c.DataAsOf: "2026-11-26T10:00:00Z", c.DataComplete: true,
		"tenant": "acme", "retries": int64(3), "tags": []any{"a", "b"}, "nested": map[string]any{"score": 0.5},
	}, read.Attributes().AsRaw())
	assert.Equal(t, time.Date(2026, 11, 26, 10, 0, 5, 250e6, time.UTC), read.Timestamp().AsTime())
	assert.NotZero(t, read.ObservedTimestamp())

	out := byEvent[c.EventModelOutput]
	assert.Equal(t, time.Unix(1764151205, 0).UTC(), out.Timestamp().AsTime())
	v, _ := out.Attributes().Get(c.ModelConfidence)
	assert.Equal(t, 0.9, v.Double())
	v, _ = out.Attributes().Get(c.GenAIUsageInputTokens)
	assert.Equal(t, int64(1200), v.Int())

	for i := 0; i < 2; i++ {
		rl := h.sink.AllLogs()[0].ResourceLogs().At(i)
		assert.Equal(t, "github.com/decisiontrace/decisiontrace/receivers/decisioneventsreceiver", rl.ScopeLogs().At(0).Scope().Name())
		if rl.ScopeLogs().At(0).LogRecords().At(0).EventName() == c.EventContextRead {
			assert.Equal(t, map[string]any{"service.name": "review-tool"}, rl.Resource().Attributes().AsRaw())
		} else {
			assert.Equal(t, 0, rl.Resource().Attributes().Len())
		}
	}
}

func TestSingleObjectAndEmptyArray(t *testing.T) {
	h := start(t, nil, nil)
	a := h.events(t, model("d-1", ""))
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, 1, a.body.Accepted)

	a = h.events(t, " [ ] ")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, response{}, a.body)
	require.Equal(t, 1, h.sink.LogRecordCount())
}

func TestLayerInferredWhenAbsent(t *testing.T) {
	h := start(t, nil, nil)
	a := h.events(t, `[{"decision.id":"d-1","decision.workflow":"w","decision.event":"business.outcome","business.outcome":"paid"}]`)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	v, ok := h.records()[0].Attributes().Get(c.DecisionLayer)
	require.True(t, ok)
	require.Equal(t, c.LayerBusiness, v.Str())
}

func TestAcceptsNDJSON(t *testing.T) {
	h := start(t, nil, nil)
	body := model("d-1", "") + "\r\n\n" + model("d-2", `"model.confidence":"high"`) + "\n" + model("d-3", "") + "\n"
	a := h.post(t, eventsPath, "application/x-ndjson", []byte(body))
	requireRefused(t, a, 2, 1, "[1].model.confidence", `"high" is not a number`)
	require.Equal(t, 3, a.body.Errors[0].Line)
	require.Equal(t, 1, a.body.Errors[0].Index)
	require.ElementsMatch(t, []string{"d-1", "d-3"}, h.ids())
}

func TestNDJSONMalformedLineKeepsTheOthers(t *testing.T) {
	h := start(t, nil, nil)
	body := model("d-1", "") + "\n" + `{"decision.id": "d-2",` + "\n" + model("d-3", "") + " {}\n"
	a := h.post(t, eventsPath, "application/x-ndjson; charset=utf-8", []byte(body))
	requireRefused(t, a, 1, 2, "[1]", "malformed JSON at column 23: unexpected end of JSON input")
	requireError(t, a, "[2]", fmt.Sprintf("more than one JSON value on the line at column %d (NDJSON holds one event per line)", len(model("d-3", ""))+2))
	require.Equal(t, []string{"d-1"}, h.ids())
}

func TestHumanActionsWebhook(t *testing.T) {
	h := start(t, nil, nil)
	a := h.post(t, humanActionsPath, "application/json", []byte(
		`{"decision_id":"d-7","workflow":"loan-underwriting","action":"overridden","actor":"underwriter-104","reason":"context-outdated","time":"2026-11-26T11:00:00Z","attributes":{"ticket":"UW-1"}}`))
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, 1, a.body.Accepted)
	lr := h.records()[0]
	assert.Equal(t, map[string]any{
		c.DecisionID: "d-7", c.DecisionWorkflow: "loan-underwriting", c.DecisionLayer: c.LayerHuman, c.DecisionEvent: c.EventHumanAction,
		c.HumanAction: "overridden", c.HumanActor: "underwriter-104", c.HumanReason: "context-outdated", "ticket": "UW-1",
	}, lr.Attributes().AsRaw())
	assert.Equal(t, c.EventHumanAction, lr.EventName())

	h.sink.Reset()
	a = h.post(t, humanActionsPath, "application/json", []byte(`[
		{"decision_id":"d-8","workflow":"w","action":"accepted"},
		{"decision_id":"d-9","workflow":"w","action":"approved"},
		{"workflow":"w","action":"ignored"},
		{"decision_id":"d-10","workflow":"w","action":"accepted","decision.layer":"model"}
	]`))
	requireRefused(t, a, 1, 3, "[1].action", `"approved" is not a human action`)
	requireError(t, a, "[2].decision_id", "required for decision-scoped events")
	requireError(t, a, "[3].decision.layer", "unknown field; a human action has decision_id")
	require.Equal(t, []string{"d-8"}, h.ids())

	// An action that is there but not UTF-8 is that one problem, not also
	// a missing action.
	h.sink.Reset()
	a = h.post(t, humanActionsPath, "application/json", []byte(`[
		{"decision_id":"d-11","workflow":"w","action":"accept`+"\xff"+`ed"},
		{"decision_id":"d-12","workflow":"w","action":"accepted"}
	]`))
	requireRefused(t, a, 1, 1, "[0].action", "invalid UTF-8 in a string")
	require.Len(t, a.body.Errors, 1, a.raw)
}

func TestMalformedJSON(t *testing.T) {
	h := start(t, nil, nil)
	body := "[\n" + model("d-1", "") + ",\n" + `{"decision.id": "d-2",, "x": 1}` + "\n]"
	a := h.events(t, body)
	require.Equal(t, http.StatusBadRequest, a.status, a.raw)
	off := strings.Index(body, ",,") + 1
	require.Equal(t, fmt.Sprintf("malformed JSON at byte %d (line 3, column 23): invalid character ',' looking for beginning of object key string", off), a.body.Error)
	// A body that is not JSON is refused whole: the valid event before the
	// damage does not go through on its own.
	require.Zero(t, h.sink.LogRecordCount())

	for _, tc := range []struct{ body, want string }{
		{`[` + model("d-1", ""), "unexpected end of JSON input"},
		{model("d-1", "") + ` trailing`, "unexpected data after the top-level value"},
		{`"just a string"`, "expected a JSON array of events or one event object"},
	} {
		a := h.events(t, tc.body)
		require.Equal(t, http.StatusBadRequest, a.status, a.raw)
		require.Contains(t, a.body.Error, tc.want)
		require.Contains(t, a.body.Error, "at byte ")
	}
	require.Zero(t, h.sink.LogRecordCount())
}

func TestWrongContentType(t *testing.T) {
	h := start(t, nil, nil)
	for _, ct := range []string{"text/plain", "", "application/x-protobuf", "application/json; charset=latin1"} {
		a := h.post(t, eventsPath, ct, []byte(array(model("d-1", ""))))
		require.Equal(t, http.StatusUnsupportedMediaType, a.status, "%q: %s", ct, a.raw)
		require.NotEmpty(t, a.body.Error)
	}
	a := h.post(t, humanActionsPath, "text/csv", []byte("d-1,w,accepted"))
	require.Equal(t, http.StatusUnsupportedMediaType, a.status, a.raw)
	require.Equal(t, `Content-Type "text/csv" is not supported: send application/json (an array of events or one event) or application/x-ndjson (one event per line)`, a.body.Error)
	require.Zero(t, h.sink.LogRecordCount())
}

func TestEmptyBody(t *testing.T) {
	h := start(t, nil, nil)
	for _, tc := range []struct{ ct, body string }{
		{"application/json", ""},
		{"application/json", " \n\t "},
		{"application/x-ndjson", "\n\n"},
	} {
		a := h.post(t, eventsPath, tc.ct, []byte(tc.body))
		require.Equal(t, http.StatusBadRequest, a.status, a.raw)
		require.Equal(t, "empty body: send a JSON array of events (Content-Type: application/json) or one event per line (Content-Type: application/x-ndjson)", a.body.Error)
	}
}

func TestBodyOverSizeLimit(t *testing.T) {
	h := start(t, func(cfg *Config) { cfg.MaxRequestBodySize = 4096 }, nil)
	events := make([]string, 60)
	for i := range events {
		events[i] = model(fmt.Sprintf("d-%d", i), "")
	}
	a := h.events(t, array(events...))
	require.Equal(t, http.StatusRequestEntityTooLarge, a.status, a.raw)
	require.Equal(t, "the request body exceeds 4096 bytes, the receiver's max_request_body_size; split it into smaller requests", a.body.Error)
	require.Zero(t, h.sink.LogRecordCount())

	// The limit holds for the decompressed body too (confighttp).
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = zw.Write([]byte(array(events...)))
	require.NoError(t, zw.Close())
	require.Less(t, zb.Len(), 4096)
	req, err := http.NewRequest(http.MethodPost, h.base+eventsPath, &zb)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	a = h.do(t, req)
	require.Equal(t, http.StatusRequestEntityTooLarge, a.status, a.raw)
	require.Zero(t, h.sink.LogRecordCount())
}

func TestGzipBody(t *testing.T) {
	h := start(t, nil, nil)
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = zw.Write([]byte(array(model("d-1", ""), model("d-2", ""))))
	require.NoError(t, zw.Close())
	req, err := http.NewRequest(http.MethodPost, h.base+eventsPath, &zb)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	a := h.do(t, req)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.ElementsMatch(t, []string{"d-1", "d-2"}, h.ids())
}

func hundredThousand() []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; i < 100000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"decision.id":"d-%d","decision.workflow":"w","decision.event":"model.output","model.confidence":0.5}`, i)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func TestHundredThousandEventsOverDefaultLimit(t *testing.T) {
	h := start(t, nil, nil)
	a := h.post(t, eventsPath, "application/json", hundredThousand())
	require.Equal(t, http.StatusRequestEntityTooLarge, a.status, a.raw)
	require.Equal(t, "the request holds more than 10000 events, the receiver's max_events_per_request; split it into smaller requests", a.body.Error)
	require.Zero(t, h.sink.LogRecordCount())
}

func TestHundredThousandEventsWithinRaisedLimit(t *testing.T) {
	h := start(t, func(cfg *Config) { cfg.MaxEventsPerRequest = 100000 }, nil)
	a := h.post(t, eventsPath, "application/json", hundredThousand())
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, response{Accepted: 100000}, a.body)
	require.Equal(t, 100000, h.sink.LogRecordCount())
}

func TestDecisionScopedEventWithoutID(t *testing.T) {
	h := start(t, nil, nil)
	a := h.events(t, array(
		model("d-1", ""),
		`{"decision.workflow":"claims-triage","decision.layer":"model","decision.event":"model.output","model.confidence":0.8}`,
		`{"decision.id":"  ","decision.workflow":"claims-triage","decision.layer":"human","decision.event":"human.action","human.action":"accepted"}`,
		// Source freshness describes a source, not one decision.
		`{"decision.workflow":"claims-triage","decision.layer":"data","decision.event":"source.freshness","data.source":"policy-db","data.as_of":"2026-11-26T10:00:00Z"}`,
	))
	requireRefused(t, a, 2, 2, "[1].decision.id", "required for decision-scoped events (every event but source.freshness and queue.depth)")
	requireError(t, a, "[2].decision.id", "required for decision-scoped events")
	require.Len(t, h.records(), 2)
	require.Equal(t, []string{"d-1", ""}, h.ids())
}

func TestRequiredFields(t *testing.T) {
	h := start(t, nil, nil)
	a := h.events(t, array(model("d-1", ""), `{"decision.id":"d-2"}`))
	requireRefused(t, a, 1, 1, "[1].decision.event", "required: what happened")
	requireError(t, a, "[1].decision.workflow", "required: the AI workflow")
	requireError(t, a, "[1].decision.layer", "required: one of data, model, workflow, human, business")
	require.Equal(t, []string{"d-1"}, h.ids())
}

func TestUnknownLayer(t *testing.T) {
	h := start(t, nil, nil)
	a := h.events(t, array(model("d-1", `"decision.layer":"modle"`), model("d-2", "")))
	requireRefused(t, a, 1, 1, "[0].decision.layer", `"modle" is not a layer (want one of data, model, workflow, human, business)`)
	require.Equal(t, []string{"d-2"}, h.ids())
}

func TestConfidenceOutOfRange(t *testing.T) {
	h := start(t, nil, nil)
	a := h.events(t, array(
		model("ok-0", ""),
		model("d-1", `"model.confidence":1.5`),
		model("d-2", `"model.confidence":-0.01`),
		model("d-3", `"model.confidence":"NaN"`),
		model("d-4", `"model.confidence":1e308`),
		model("d-5", `"model.confidence":1e999`),
		model("ok-6", `"model.confidence":"0.25"`),
	))
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, 2, a.body.Accepted)
	require.Equal(t, 5, a.body.Refused)
	requireError(t, a, "[1].model.confidence", "1.5 is outside [0,1]")
	requireError(t, a, "[2].model.confidence", "-0.01 is outside [0,1]")
	requireError(t, a, "[3].model.confidence", "NaN is not a finite number")
	requireError(t, a, "[4].model.confidence", "1e+308 is outside [0,1]")
	requireError(t, a, "[5].model.confidence", "1e999 is out of range for a 64-bit number")
	require.Equal(t, []string{"ok-0", "ok-6"}, h.ids())
}

func TestAsOfUnparseable(t *testing.T) {
	h := start(t, nil, nil)
	read := func(id, asOf string) string {
		return `{"decision.id":"` + id + `","decision.workflow":"w","decision.layer":"data","decision.event":"context.read","data.source":"crm","data.as_of":` + asOf + `}`
	}
	a := h.events(t, array(read("d-0", `"yesterday"`), read("d-1", `"2026-11-26T10:00:00Z"`), read("d-2", `{"at":1}`)))
	requireRefused(t, a, 1, 2, "[0].data.as_of", `"yesterday" is not an RFC 3339 timestamp`)
	requireError(t, a, "[2].data.as_of", "expected a string, number or boolean, got an object")
	require.Equal(t, []string{"d-1"}, h.ids())
}

func TestAsOfFarFuture(t *testing.T) {
	h := start(t, nil, nil)
	future := time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)
	near := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	read := func(id, asOf string) string {
		return `{"decision.id":"` + id + `","decision.workflow":"w","decision.layer":"data","decision.event":"context.read","data.source":"crm","data.as_of":"` + asOf + `"}`
	}
	a := h.events(t, array(read("d-0", future), read("d-1", near)))
	requireRefused(t, a, 1, 1, "[0].data.as_of", "is more than 24h0m0s after the record's time")
	require.Equal(t, []string{"d-1"}, h.ids())

	// The event's own time is checked against the receiver's clock too.
	h.sink.Reset()
	a = h.events(t, array(model("d-2", `"time":"`+future+`"`), model("d-3", "")))
	requireRefused(t, a, 1, 1, "[0].time", "is more than 24h0m0s after the receiver's clock")
	require.Equal(t, []string{"d-3"}, h.ids())
}

func TestInvalidUTF8(t *testing.T) {
	h := start(t, nil, nil)
	bad := model("d-\xff1", "")
	badAttr := model("d-2", `"attributes":{"note":{"text":["ok","caf`+"\xe9"+`"]}}`)
	body := array(model("d-0", ""), bad, badAttr, model("d-3", ""))
	a := h.events(t, body)
	off := strings.Index(body, "\xff")
	requireRefused(t, a, 2, 2, "[1].decision.id", fmt.Sprintf("invalid UTF-8 in a string (byte %d of the body); text must be UTF-8", off))
	requireError(t, a, "[2].attributes.note.text[1]", "invalid UTF-8 in a string")
	require.Equal(t, []string{"d-0", "d-3"}, h.ids())

	// A workflow that is there but not UTF-8 is reported as that, not as
	// missing too.
	h.sink.Reset()
	a = h.events(t, array(model("d-5", `"decision.workflow":"claims`+"\xff"+`"`), model("d-6", "")))
	requireRefused(t, a, 1, 1, "[0].decision.workflow", "invalid UTF-8 in a string")
	require.Len(t, a.body.Errors, 1, a.raw)

	h.sink.Reset()
	a = h.post(t, eventsPath, "application/x-ndjson", []byte(model("d-4", "")+"\n"+"{\"decision.\xfeid\":\"x\"}"+"\n"))
	requireRefused(t, a, 1, 1, "[1]", "invalid UTF-8 in a key")
	require.Equal(t, 2, a.body.Errors[0].Line)
	require.Equal(t, []string{"d-4"}, h.ids())
}

// A value that is there but cannot be read is one problem, said once: a
// number out of the 64-bit range is not also "expected a number".
func TestOutOfRangeNumberIsOneProblem(t *testing.T) {
	h := start(t, nil, nil)
	a := h.events(t, array(model("d-1", `"model.confidence":1e400`), model("d-2", "")))
	requireRefused(t, a, 1, 1, "[0].model.confidence", "1e400 is out of range for a 64-bit number")
	require.Len(t, a.body.Errors, 1, a.raw)
}

func TestAttributeMapWithTenThousandKeys(t *testing.T) {
	h := start(t, nil, nil)
	var b strings.Builder
	b.WriteString(`"attributes":{`)
	for i := 0; i < 10000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	b.WriteString("}")
	a := h.events(t, array(model("d-0", ""), model("d-1", b.String()), model("d-2", `"attributes":{"k":1}`)))
	requireRefused(t, a, 2, 1, "[1].attributes",
		"10000 attribute values (every key and array element counts, attributes and resource together), more than max_attributes_per_event (128)")
	require.Equal(t, []string{"d-0", "d-2"}, h.ids())
}

func TestAttributeDepthAndReservedNames(t *testing.T) {
	h := start(t, nil, nil)
	deep := strings.Repeat(`{"a":`, 9) + "1" + strings.Repeat("}", 9)
	a := h.events(t, array(
		model("d-0", `"attributes":{"deep":`+deep+`}`),
		model("d-1", `"attributes":{"decision.layer":"human"}`),
		model("d-2", `"attributes":"flat"`),
		model("d-3", `"attributes":{"ok":[1,2.5,true,null,{"x":"y"}]}`),
	))
	requireRefused(t, a, 1, 3, "[0].attributes.deep.a.a.a.a.a.a.a.a", "nested more than 8 levels deep")
	requireError(t, a, "[1].attributes.decision.layer", "a decisiontrace convention name")
	requireError(t, a, "[2].attributes", "expected a JSON object, got a string")
	require.Equal(t, []string{"d-3"}, h.ids())
}

func TestUnknownAndProcessorFields(t *testing.T) {
	h := start(t, nil, nil)
	a := h.events(t, array(
		model("d-0", `"model.confidance":0.8`),
		model("d-1", `"data.entity.resolved":true`),
		`42`,
		model("d-3", ""),
	))
	requireRefused(t, a, 1, 3, "[0].model.confidance", `unknown field; decision.* conventions go at the top level, anything else under "attributes"`)
	requireError(t, a, "[1].data.entity.resolved", "derived by the decision processor; producers do not set it")
	requireError(t, a, "[2]", "expected a JSON object, got a number")
	require.Equal(t, []string{"d-3"}, h.ids())
}

// A verdict is the decision store's, derived from the stored events: a
// producer cannot send one, by any name, top level or under attributes.
func TestVerdictFieldsRefused(t *testing.T) {
	h := start(t, nil, nil)
	a := h.events(t, array(
		model("d-0", `"verdict.context":"fresh"`),
		model("d-1", `"verdict.unsupported_certainty":false`),
		model("d-2", `"attributes":{"verdict.behaviour":"proceed"}`),
		model("d-3", `"verdict.anything_new":1`),
		model("d-4", ""),
	))
	const reason = "verdict.* is derived by the decision store from the stored events; producers do not set it"
	requireRefused(t, a, 1, 4, "[0].verdict.context", reason)
	requireError(t, a, "[1].verdict.unsupported_certainty", reason)
	requireError(t, a, "[2].attributes.verdict.behaviour", reason)
	requireError(t, a, "[3].verdict.anything_new", reason)
	require.Equal(t, []string{"d-4"}, h.ids())
}

func TestDuplicateFields(t *testing.T) {
	h := start(t, nil, nil)
	a := h.events(t, array(
		`{"decision.id":"d-0","decision.id":"d-x","decision.workflow":"w","decision.event":"model.output","model.confidence":0.5}`,
		model("d-1", `"time":"2026-11-26T10:00:00Z","time":"2026-11-26T11:00:00Z"`),
		model("d-2", ""),
	))
	requireRefused(t, a, 1, 2, "[0].decision.id", "duplicate field")
	requireError(t, a, "[1].time", "duplicate field")
	require.Equal(t, []string{"d-2"}, h.ids())
}

func TestAllRefusedIs400(t *testing.T) {
	h := start(t, nil, nil)
	a := h.events(t, array(model("d-0", `"model.confidence":2`), model("d-1", `"decision.layer":"x"`)))
	require.Equal(t, http.StatusBadRequest, a.status, a.raw)
	require.Equal(t, 0, a.body.Accepted)
	require.Equal(t, 2, a.body.Refused)
	require.Equal(t, "all 2 events were refused; see errors", a.body.Error)
	require.Len(t, a.body.Errors, 2)
	require.Zero(t, h.sink.LogRecordCount())
}

func TestErrorListIsBounded(t *testing.T) {
	h := start(t, nil, nil)
	events := make([]string, 1500)
	for i := range events {
		events[i] = `{}`
	}
	a := h.events(t, array(events...))
	require.Equal(t, http.StatusBadRequest, a.status)
	require.Equal(t, 1500, a.body.Refused)
	require.Len(t, a.body.Errors, maxErrors)
	// Each {} has three errors: event, workflow and layer.
	require.Equal(t, 3*1500-maxErrors, a.body.ErrorsOmitted)
}

func TestMethodNotAllowed(t *testing.T) {
	h := start(t, nil, nil)
	res, err := h.client.Get(h.base + eventsPath)
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
	require.Equal(t, "POST", res.Header.Get("Allow"))
}

func TestPipelineOverloadIs503WithRetryAfter(t *testing.T) {
	h := start(t, func(cfg *Config) { cfg.RetryAfter = 7 * time.Second },
		consumertest.NewErr(errors.New("data refused due to high memory usage")))
	a := h.events(t, array(model("d-0", ""), model("d-1", `"model.confidence":3`)))
	require.Equal(t, http.StatusServiceUnavailable, a.status, a.raw)
	require.Equal(t, "7", a.header.Get("Retry-After"))
	require.Equal(t, 0, a.body.Accepted)
	require.Equal(t, 1, a.body.Refused)
	require.Equal(t, "the pipeline could not take the 1 valid events now (data refused due to high memory usage); retry the request after 7 s", a.body.Error)
	requireError(t, a, "[1].model.confidence", "outside [0,1]")
}

func TestPipelinePermanentErrorIs400(t *testing.T) {
	h := start(t, nil, consumertest.NewErr(consumererror.NewPermanent(errors.New("schema mismatch"))))
	a := h.events(t, array(model("d-0", "")))
	require.Equal(t, http.StatusBadRequest, a.status, a.raw)
	require.Empty(t, a.header.Get("Retry-After"))
	require.Equal(t, 0, a.body.Accepted)
	require.Contains(t, a.body.Error, "the pipeline refused the 1 valid events permanently: ")
	require.Contains(t, a.body.Error, "schema mismatch")
}

// refusingSink refuses, as the store exporter and the decision processor
// do, the records whose attribute keys[0] is set, naming each; once none
// has it, those with keys[1] (a second component that refuses), and takes
// the request only when it holds none.
type refusingSink struct {
	sink  *consumertest.LogsSink
	keys  []string
	calls int
}

func (r *refusingSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (r *refusingSink) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	r.calls++
	for _, key := range r.keys {
		var refused decision.Refusals
		for where, lr := range decision.LogRecords(ld) {
			if v, ok := lr.Attributes().Get(key); ok {
				refused.Add(where, "refused for %s", v.AsString())
			}
		}
		if err := refused.Err("why"); err != nil {
			return err
		}
	}
	return r.sink.ConsumeLogs(ctx, ld)
}

// A component that refuses some records of a request (one out of the
// store's retention) refuses those events alone, named at their place in
// the request, and the rest are taken. The events of three producers
// (three resources) are interleaved, so records and events are in
// different places, and the first refusal empties one resource, so the
// second component's refusal names records by the places they moved to.
func TestPipelineRefusalOfSomeRecordsKeepsTheRest(t *testing.T) {
	rs := &refusingSink{keys: []string{"bad", "late"}}
	h := start(t, nil, rs)
	rs.sink = h.sink
	res := func(svc string) string { return `"resource":{"service.name":"` + svc + `"}` }
	a := h.events(t, array(
		model("d-4", `"model.confidence":7`),
		model("d-0", res("a")+`,"attributes":{"bad":"old"}`), model("d-1", res("b")+`,"attributes":{"bad":"future"}`),
		model("d-2", res("c")+`,"attributes":{"late":"unknown"}`), model("d-3", res("a")), model("d-5", res("c"))))
	requireRefused(t, a, 2, 4, "[1]", "refused for old")
	requireError(t, a, "[2]", "refused for future")
	requireError(t, a, "[3]", "refused for unknown")
	requireError(t, a, "[0].model.confidence", "outside [0,1]")
	var order []int
	for _, e := range a.body.Errors {
		order = append(order, e.Index)
	}
	require.Equal(t, []int{0, 1, 2, 3}, order, "in request order: %s", a.raw)
	require.ElementsMatch(t, []string{"d-3", "d-5"}, h.ids())
	require.Equal(t, 3, rs.calls)

	// Every valid event refused: nothing is taken, a 400 names them all.
	a = h.events(t, array(model("d-6", `"attributes":{"bad":"x"}`), model("d-7", `"attributes":{"bad":"y"}`)))
	require.Equal(t, http.StatusBadRequest, a.status, a.raw)
	require.Equal(t, 0, a.body.Accepted)
	require.Equal(t, 2, a.body.Refused)
	requireError(t, a, "[0]", "refused for x")
	requireError(t, a, "[1]", "refused for y")
	require.ElementsMatch(t, []string{"d-3", "d-5"}, h.ids())
}

// blockingSink holds ConsumeLogs until released, to catch a Shutdown that
// returns while a request is still on its way into the pipeline.
type blockingSink struct {
	consumertest.LogsSink
	entered chan struct{}
	release chan struct{}
}

func (b *blockingSink) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	close(b.entered)
	<-b.release
	return b.LogsSink.ConsumeLogs(ctx, ld)
}

func TestShutdownWaitsForRequestsInThePipeline(t *testing.T) {
	bs := &blockingSink{entered: make(chan struct{}), release: make(chan struct{})}
	h := start(t, nil, bs)
	var wg sync.WaitGroup
	wg.Add(1)
	var a answer
	go func() {
		defer wg.Done()
		a = h.events(t, array(model("d-0", "")))
	}()
	<-bs.entered
	shut := make(chan error, 1)
	go func() { shut <- h.r.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a request was still in ConsumeLogs", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(bs.release)
	require.NoError(t, <-shut)
	wg.Wait()
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, 1, bs.LogRecordCount())
}

func TestNothingEmittedAfterShutdown(t *testing.T) {
	h := start(t, nil, nil)
	a := h.events(t, array(model("d-0", "")))
	require.Equal(t, http.StatusOK, a.status)
	h.client.Transport.(*http.Transport).CloseIdleConnections()
	require.NoError(t, h.r.Shutdown(context.Background()))

	// The listener is gone...
	_, err := h.client.Post(h.base+eventsPath, "application/json", strings.NewReader(array(model("d-1", ""))))
	require.Error(t, err)
	// ...and a request that reaches the handler anyway (accepted just before
	// the listener closed) is turned away without touching the pipeline.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, eventsPath, strings.NewReader(array(model("d-2", ""))))
	req.Header.Set("Content-Type", "application/json")
	h.r.handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, "5", rec.Header().Get("Retry-After"))
	require.Equal(t, []string{"d-0"}, h.ids())
}

// A time of 0 is no time, as in OTLP: the event is taken at the
// receiver's clock, not in 1970 where any retention deletes it.
func TestTimeZeroIsTheReceiversClock(t *testing.T) {
	h := start(t, nil, nil)
	before := time.Now()
	a := h.events(t, array(model("d-0", `"time":0`), model("d-1", `"time":0.0`), model("d-2", `"time":1`)))
	require.Empty(t, a.body.Errors, a.raw)
	recs := h.records()
	require.Len(t, recs, 3)
	for _, lr := range recs[:2] {
		assert.False(t, lr.Timestamp().AsTime().Before(before), "taken at the receiver's clock, not %s", lr.Timestamp().AsTime())
	}
	assert.Equal(t, time.Unix(1, 0).UTC(), recs[2].Timestamp().AsTime(), "one second after the epoch is a time")
}
