package sourcefreshnessreceiver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
)

// record is one emitted log record, flattened for assertions.
type record struct {
	time  time.Time
	attrs map[string]any
}

func (r record) str(k string) string {
	s, _ := r.attrs[k].(string)
	return s
}

func records(sink *consumertest.LogsSink) []record {
	var out []record
	for _, ld := range sink.AllLogs() {
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					out = append(out, record{time: lr.Timestamp().AsTime(), attrs: lr.Attributes().AsRaw()})
				}
			}
		}
	}
	return out
}

// bySource keeps the records of one data.source (or workflow.queue).
func bySource(sink *consumertest.LogsSink, name string) []record {
	var out []record
	for _, r := range records(sink) {
		if r.str(c.DataSource) == name || r.str(c.WorkflowQueue) == name {
			out = append(out, r)
		}
	}
	return out
}

type harness struct {
	rcv  *freshnessReceiver
	sink *consumertest.LogsSink
	tel  *componenttest.Telemetry
}

// start runs a receiver on cfg; the test shuts it down (explicitly, so that
// goleak checks placed in defers see it stopped).
func start(t *testing.T, cfg *Config) *harness {
	t.Helper()
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	set := receivertest.NewNopSettings(typ)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	sink := new(consumertest.LogsSink)
	rcv, err := newReceiver(cfg, set, sink)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	return &harness{rcv: rcv, sink: sink, tel: tel}
}

func (h *harness) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, h.rcv.Shutdown(context.Background()))
	require.NoError(t, h.tel.Shutdown(context.Background()))
}

// polls reads otelcol_sourcefreshness_polls (or the queue counter) for one
// name and result.
func (h *harness) polls(t *testing.T, metric, key, name, result string) int64 {
	t.Helper()
	m, err := h.tel.GetMetric(metric)
	if err != nil {
		return 0
	}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if v, _ := dp.Attributes.Value(attribute.Key(key)); v.AsString() != name {
			continue
		}
		if v, _ := dp.Attributes.Value("result"); v.AsString() == result {
			return dp.Value
		}
	}
	return 0
}

func httpSource(name, url, field string) SourceConfig {
	return SourceConfig{Name: name, Kind: KindHTTP, URL: url, Field: field}
}

func TestHTTPSourceSignals(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	asOf := time.Now().Add(-90 * time.Second).UTC().Truncate(time.Millisecond)
	mux := http.NewServeMux()
	mux.HandleFunc("/rfc3339", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0ken-value" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, `{"status":{"last_updated":%q}}`, asOf.Format(time.RFC3339Nano))
	})
	mux.HandleFunc("/unix", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"feeds":[{"meta":{"updated":%d}}]}`, asOf.Unix())
	})
	mux.HandleFunc("/unixms", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"updated_ms":%d}`, asOf.UnixMilli())
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "db down", http.StatusInternalServerError)
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"status":{"state":"ok"}}`)
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `<html>maintenance</html>`)
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()

	cfg := createDefaultConfig().(*Config)
	cfg.Interval = time.Hour // the first poll, at start, is the one under test
	rfc := httpSource("weather-feed", ts.URL+"/rfc3339", "status.last_updated")
	rfc.Workflow, rfc.Workflows = "claims-triage", []string{"underwriting", "claims-triage"}
	rfc.Headers = map[string]configopaque.String{"Authorization": "Bearer t0ken-value"}
	cfg.Sources = []SourceConfig{
		rfc,
		httpSource("unix-feed", ts.URL+"/unix", "feeds.0.meta.updated"),
		httpSource("unixms-feed", ts.URL+"/unixms", "updated_ms"),
		httpSource("failing-feed", ts.URL+"/fail", "status.last_updated"),
		httpSource("missing-field", ts.URL+"/missing", "status.last_updated"),
		httpSource("html-feed", ts.URL+"/html", "status.last_updated"),
		httpSource("closed-port", "http://127.0.0.1:1/status?api_key=k3y-value", "status.last_updated"),
	}
	h := start(t, cfg)
	require.Eventually(t, func() bool { return h.sink.LogRecordCount() == 8 }, 10*time.Second, 10*time.Millisecond)

	got := bySource(h.sink, "weather-feed")
	require.Len(t, got, 2, "one record per workflow, duplicates merged")
	assert.ElementsMatch(t, []string{"claims-triage", "underwriting"}, []string{got[0].str(c.DecisionWorkflow), got[1].str(c.DecisionWorkflow)})
	for _, name := range []string{"weather-feed", "unix-feed", "unixms-feed"} {
		for _, r := range bySource(h.sink, name) {
			assert.Equal(t, c.LayerData, r.attrs[c.DecisionLayer], name)
			assert.Equal(t, c.EventSourceFreshness, r.attrs[c.DecisionEvent], name)
			assert.Equal(t, true, r.attrs[c.DataAvailable], name)
			assert.NotContains(t, r.attrs, c.DataError, name)
			want := asOf
			if name == "unix-feed" {
				want = asOf.Truncate(time.Second)
			}
			assert.Equal(t, want.Format(time.RFC3339Nano), r.attrs[c.DataAsOf], name)
			assert.InDelta(t, r.time.Sub(want).Seconds(), r.attrs[c.DataAgeS], 1e-6, name)
			assert.InDelta(t, 90, r.attrs[c.DataAgeS], 5, name)
		}
	}
	failures := map[string]string{
		"failing-feed":  "http status 500 Internal Server Error",
		"missing-field": `field status.last_updated: not in the response (no "status.last_updated")`,
		"html-feed":     "response is not JSON: invalid character '<' looking for beginning of value",
		"closed-port":   "http get: dial tcp 127.0.0.1:1: connect: connection refused",
	}
	for name, reason := range failures {
		rs := bySource(h.sink, name)
		require.Len(t, rs, 1, name)
		r := rs[0]
		assert.Equal(t, false, r.attrs[c.DataAvailable], name)
		assert.Equal(t, reason, r.attrs[c.DataError], name)
		assert.NotContains(t, r.attrs, c.DataAsOf, name)
		assert.NotContains(t, r.attrs, c.DataAgeS, name)
		assert.NotContains(t, r.attrs, c.DecisionWorkflow, name, "no workflow configured, none emitted")
		assert.Equal(t, int64(1), h.polls(t, "otelcol_sourcefreshness_polls", "source", name, "error"), name)
	}
	assert.Equal(t, int64(1), h.polls(t, "otelcol_sourcefreshness_polls", "source", "weather-feed", "ok"))
	h.stop(t)
}

// blocker is an HTTP handler that answers only when the client gives up or
// the test releases it.
type blocker struct {
	release chan struct{}
	once    sync.Once
}

func newBlocker() *blocker { return &blocker{release: make(chan struct{})} }

func (b *blocker) ServeHTTP(_ http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-b.release:
	}
}

func (b *blocker) Release() { b.once.Do(func() { close(b.release) }) }

func TestSlowSourceDoesNotDelayOthers(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	slow := newBlocker()
	defer slow.Release()
	var fastHits int
	var mu sync.Mutex
	mux := http.NewServeMux()
	mux.Handle("/slow", slow)
	mux.HandleFunc("/fast", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		fastHits++
		mu.Unlock()
		fmt.Fprintf(w, `{"ts":%d}`, time.Now().Unix())
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	defer slow.Release() // before ts.Close, which waits for the handler

	cfg := createDefaultConfig().(*Config)
	slowSrc := httpSource("slow", ts.URL+"/slow", "ts")
	slowSrc.Timeout, slowSrc.Interval = 700*time.Millisecond, time.Hour
	fastSrc := httpSource("fast", ts.URL+"/fast", "ts")
	fastSrc.Interval = 50 * time.Millisecond
	cfg.Sources = []SourceConfig{slowSrc, fastSrc}
	h := start(t, cfg)

	require.Eventually(t, func() bool { return len(bySource(h.sink, "slow")) == 1 }, 10*time.Second, 10*time.Millisecond)
	s := bySource(h.sink, "slow")[0]
	assert.Equal(t, false, s.attrs[c.DataAvailable])
	assert.Equal(t, "timeout after 700ms", s.attrs[c.DataError])
	before := 0
	for _, r := range bySource(h.sink, "fast") {
		if r.time.Before(s.time) {
			before++
		}
	}
	// 700ms at one poll per 50ms is 14 polls; asking for 5 leaves room for a
	// loaded machine while still failing if the slow poll held the others.
	assert.GreaterOrEqual(t, before, 5, "the fast source kept its pace while the slow one hung")
	h.stop(t)
}

func TestShutdownIsPromptAndFinal(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	hung := newBlocker()
	mux := http.NewServeMux()
	mux.Handle("/hung", hung)
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"ts":%d,"depth":3}`, time.Now().Unix())
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	defer hung.Release()

	cfg := createDefaultConfig().(*Config)
	hungSrc := httpSource("hung", ts.URL+"/hung", "ts")
	hungSrc.Timeout = time.Minute
	okSrc := httpSource("ok", ts.URL+"/ok", "ts")
	okSrc.Interval = 10 * time.Millisecond
	q := httpSource("review", ts.URL+"/ok", "depth")
	q.Interval = 10 * time.Millisecond
	cfg.Sources = []SourceConfig{hungSrc, okSrc}
	cfg.Queues = []SourceConfig{q}
	h := start(t, cfg)
	require.Eventually(t, func() bool { return len(bySource(h.sink, "ok")) >= 3 && len(bySource(h.sink, "review")) >= 3 },
		10*time.Second, 5*time.Millisecond)

	began := time.Now()
	require.NoError(t, h.rcv.Shutdown(context.Background()))
	assert.Less(t, time.Since(began), 2*time.Second, "shutdown must cut the hung poll short, not wait out its 1m timeout")
	n := h.sink.LogRecordCount()
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, n, h.sink.LogRecordCount(), "nothing is emitted after Shutdown returns")
	assert.Empty(t, bySource(h.sink, "hung"), "a poll cut short by shutdown is not reported as an outage")
	require.NoError(t, h.rcv.Shutdown(context.Background()), "a second Shutdown is harmless")
	require.NoError(t, h.tel.Shutdown(context.Background()))
}

func TestQueueDepth(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var depth = "17"
	var mu sync.Mutex
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, `{"queues":{"manual_review":{"ready":%s}}}`, depth)
	}))
	defer ts.Close()

	cfg := createDefaultConfig().(*Config)
	q := httpSource("manual-review", ts.URL, "queues.manual_review.ready")
	q.Workflows = []string{"claims-triage"}
	q.Interval = 20 * time.Millisecond
	cfg.Queues = []SourceConfig{q}
	h := start(t, cfg)
	require.Eventually(t, func() bool { return h.sink.LogRecordCount() >= 1 }, 10*time.Second, 5*time.Millisecond)
	r := records(h.sink)[0]
	assert.Equal(t, map[string]any{
		c.DecisionLayer: c.LayerWorkflow, c.DecisionEvent: c.EventQueueDepth, c.DecisionWorkflow: "claims-triage",
		c.WorkflowQueue: "manual-review", c.WorkflowQueueDepth: int64(17),
	}, r.attrs)

	// An unreadable depth is counted and logged, never emitted as a number.
	mu.Lock()
	depth = `"lots"`
	mu.Unlock()
	require.Eventually(t, func() bool {
		return h.polls(t, "otelcol_sourcefreshness_queue_polls", "queue", "manual-review", "error") >= 2
	}, 10*time.Second, 5*time.Millisecond)
	n := h.sink.LogRecordCount()
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, n, h.sink.LogRecordCount())
	for _, r := range records(h.sink) {
		assert.Equal(t, int64(17), r.attrs[c.WorkflowQueueDepth])
	}
	h.stop(t)
}

func TestStartFailsOnBadTLSAndLeavesNothingRunning(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := createDefaultConfig().(*Config)
	s := httpSource("feed", "https://feed.example.com/status", "ts")
	s.TLS.CAFile = "/nonexistent/ca.pem"
	cfg.Sources = []SourceConfig{s}
	set := receivertest.NewNopSettings(typ)
	rcv, err := newReceiver(cfg, set, consumertest.NewNop())
	require.NoError(t, err)
	err = rcv.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, "feed: tls: ")
	require.NoError(t, rcv.Shutdown(context.Background()))
}

// The record shape consumers rely on, attribute by attribute.
func TestFreshnessRecordShape(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	freshnessRecord(lrs.AppendEmpty(), "policy-db", "claims-triage", now, now.Add(-90*time.Second+250*time.Millisecond), "")
	freshnessRecord(lrs.AppendEmpty(), "policy-db", "", now, time.Time{}, "timeout after 5s")
	// A source clock ahead of ours reads as age 0, never negative.
	freshnessRecord(lrs.AppendEmpty(), "policy-db", "", now, now.Add(3*time.Second), "")

	assert.Equal(t, map[string]any{
		c.DecisionLayer: c.LayerData, c.DecisionEvent: c.EventSourceFreshness, c.DataSource: "policy-db",
		c.DecisionWorkflow: "claims-triage", c.DataAsOf: "2026-11-26T09:58:30.25Z", c.DataAgeS: 89.75, c.DataAvailable: true,
	}, lrs.At(0).Attributes().AsRaw())
	assert.Equal(t, plog.SeverityNumberInfo, lrs.At(0).SeverityNumber())
	assert.Equal(t, c.EventSourceFreshness, lrs.At(0).Body().Str())
	assert.Equal(t, now, lrs.At(0).Timestamp().AsTime())
	assert.Equal(t, map[string]any{
		c.DecisionLayer: c.LayerData, c.DecisionEvent: c.EventSourceFreshness, c.DataSource: "policy-db",
		c.DataAvailable: false, c.DataError: "timeout after 5s",
	}, lrs.At(1).Attributes().AsRaw())
	assert.Equal(t, plog.SeverityNumberWarn, lrs.At(1).SeverityNumber())
	assert.Equal(t, 0.0, lrs.At(2).Attributes().AsRaw()[c.DataAgeS])
}

func TestReasonIsShortAndRedacted(t *testing.T) {
	p := &poller{timeout: 5 * time.Second, secrets: []string{"hunter22"}}
	long := "query: ERROR: relation \"t\"\n does not exist; password hunter22 " + strconv.Quote(string(make([]byte, 600)))
	r := p.reason(fmt.Errorf("%s", long), false)
	assert.LessOrEqual(t, len([]rune(r)), maxErrorLen+1)
	assert.NotContains(t, r, "hunter22")
	assert.NotContains(t, r, "\n")
	assert.Contains(t, r, `query: ERROR: relation "t" does not exist; password ***`)
	assert.Equal(t, "timeout after 5s", p.reason(context.DeadlineExceeded, true))
}
