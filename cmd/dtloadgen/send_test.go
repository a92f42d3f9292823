package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// fakeLogs accepts everything but rejects every tenth record of each request
// in a partial success, and refuses the first request outright with
// back-pressure so that the retry path runs too.
type fakeLogs struct {
	plogotlp.UnimplementedGRPCServer
	calls, received, rejected atomic.Int64
}

func (f *fakeLogs) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	if f.calls.Add(1) == 1 {
		return plogotlp.NewExportResponse(), status.Error(codes.Unavailable, "memory limiter says no")
	}
	n := int64(req.Logs().LogRecordCount())
	f.received.Add(n)
	resp := plogotlp.NewExportResponse()
	if rej := n / 10; rej > 0 {
		f.rejected.Add(rej)
		resp.PartialSuccess().SetRejectedLogRecords(rej)
		resp.PartialSuccess().SetErrorMessage("attribute limit exceeded")
	}
	return resp, nil
}

type fakeTraces struct {
	ptraceotlp.UnimplementedGRPCServer
	received, rejected atomic.Int64
}

func (f *fakeTraces) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	n := int64(req.Traces().SpanCount())
	f.received.Add(n)
	resp := ptraceotlp.NewExportResponse()
	if n > 0 {
		f.rejected.Add(1)
		resp.PartialSuccess().SetRejectedSpans(1)
	}
	return resp, nil
}

func startFake(t testing.TB) (addr string, logs *fakeLogs, traces *fakeTraces) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	logs, traces = &fakeLogs{}, &fakeTraces{}
	plogotlp.RegisterGRPCServer(srv, logs)
	ptraceotlp.RegisterGRPCServer(srv, traces)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), logs, traces
}

func TestGRPCCountsSubtractPartialSuccess(t *testing.T) {
	addr, fl, ft := startFake(t)
	exp, err := newGRPCExporter(addr, true)
	if err != nil {
		t.Fatal(err)
	}
	defer exp.close()
	st := &stats{}
	const events = 20000
	run(context.Background(), runConfig{
		gen:   genConfig{runID: "t", seed: 1, staleShare: 0.02, missingShare: 0.01, signalInterval: time.Hour},
		batch: 500, workers: 3, events: events,
		deliver: deliverer{exp: exp, timeout: 5 * time.Second, maxRetries: 2, backoff: time.Millisecond},
	}, st)

	recv := fl.received.Load() + ft.received.Load()
	if recv != events {
		t.Fatalf("server received %d events, want %d", recv, events)
	}
	if got, want := st.logs.rejected.Load(), fl.rejected.Load(); got != want || got == 0 {
		t.Errorf("rejected logs %d, server rejected %d", got, want)
	}
	if got, want := st.traces.rejected.Load(), ft.rejected.Load(); got != want || got == 0 {
		t.Errorf("rejected spans %d, server rejected %d", got, want)
	}
	if got, want := st.logs.sent.Load(), fl.received.Load()-fl.rejected.Load(); got != want {
		t.Errorf("sent logs %d, want accepted %d", got, want)
	}
	if got, want := st.traces.sent.Load(), ft.received.Load()-ft.rejected.Load(); got != want {
		t.Errorf("sent spans %d, want accepted %d", got, want)
	}
	if st.failed() != 0 {
		t.Errorf("failed %d: the refused request should have been retried", st.failed())
	}
	if st.logs.retries.Load() != 1 || st.logs.failedRequests.Load() != 1 {
		t.Errorf("retries %d, failed requests %d; want 1 and 1", st.logs.retries.Load(), st.logs.failedRequests.Load())
	}
	if st.lastError() == "" {
		t.Error("no last error recorded")
	}
}

func TestGRPCFailuresAreCounted(t *testing.T) {
	// Nothing listens here: every request fails and must be counted failed,
	// not sent.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	exp, err := newGRPCExporter(addr, false)
	if err != nil {
		t.Fatal(err)
	}
	defer exp.close()
	st := &stats{}
	run(context.Background(), runConfig{
		gen:   genConfig{runID: "t", seed: 1},
		batch: 100, workers: 2, events: 1000,
		deliver: deliverer{exp: exp, timeout: time.Second, maxRetries: 0},
	}, st)
	if st.sent() != 0 || st.failed() != 1000 {
		t.Fatalf("sent %d failed %d, want 0 and 1000", st.sent(), st.failed())
	}
	if st.lastError() == "" {
		t.Fatal("no last error")
	}
}

func TestHTTPCountsSubtractPartialSuccess(t *testing.T) {
	var received, rejected atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/x-protobuf" || r.Header.Get("Content-Encoding") != "gzip" {
			http.Error(w, "bad headers", http.StatusUnsupportedMediaType)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// net/http does not undo Content-Encoding on the server side.
		body, err = gunzip(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var out []byte
		switch r.URL.Path {
		case "/v1/logs":
			req := plogotlp.NewExportRequest()
			if err := req.UnmarshalProto(body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			n := int64(req.Logs().LogRecordCount())
			received.Add(n)
			rejected.Add(2)
			resp := plogotlp.NewExportResponse()
			resp.PartialSuccess().SetRejectedLogRecords(2)
			out, _ = resp.MarshalProto()
		case "/v1/traces":
			req := ptraceotlp.NewExportRequest()
			if err := req.UnmarshalProto(body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			received.Add(int64(req.Traces().SpanCount()))
			out, _ = ptraceotlp.NewExportResponse().MarshalProto()
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	defer srv.Close()
	exp := newHTTPExporter(srv.URL, true, 2)
	defer exp.close()
	st := &stats{}
	run(context.Background(), runConfig{
		gen:   genConfig{runID: "t", seed: 5},
		batch: 250, workers: 2, events: 5000,
		deliver: deliverer{exp: exp, timeout: 5 * time.Second},
	}, st)
	if received.Load() != 5000 {
		t.Fatalf("server received %d, want 5000 (last error %q)", received.Load(), st.lastError())
	}
	if st.logs.rejected.Load() != rejected.Load() || st.sent() != 5000-rejected.Load() {
		t.Fatalf("sent %d rejected %d; server rejected %d", st.sent(), st.logs.rejected.Load(), rejected.Load())
	}
}

func TestHTTPErrorIsFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusBadRequest)
	}))
	defer srv.Close()
	exp := newHTTPExporter(srv.URL, false, 1)
	st := &stats{}
	run(context.Background(), runConfig{
		gen: genConfig{runID: "t", seed: 5}, batch: 100, workers: 1, events: 300,
		deliver: deliverer{exp: exp, timeout: time.Second, maxRetries: 3, backoff: time.Millisecond},
	}, st)
	// 400 is not back-pressure: no retries.
	if st.failed() != 300 || st.sent() != 0 || st.logs.retries.Load() != 0 {
		t.Fatalf("failed %d sent %d retries %d", st.failed(), st.sent(), st.logs.retries.Load())
	}
}

func TestPacerHoldsRate(t *testing.T) {
	p := &pacer{rate: 4000}
	start := time.Now()
	for i := 0; i < 21; i++ {
		if err := p.wait(context.Background(), 100); err != nil {
			t.Fatal(err)
		}
	}
	// 21 reservations of 100: the last may start after 2000 events, 0.5s.
	if el := time.Since(start); el < 450*time.Millisecond || el > 900*time.Millisecond {
		t.Fatalf("2100 events at 4000/s took %s", el)
	}
}

// BenchmarkSendGRPC is the generator's own ceiling: generation, encoding and
// gRPC against an in-process server that does nothing but decode.
func BenchmarkSendGRPC(b *testing.B) {
	addr, _, _ := startFake(b)
	exp, err := newGRPCExporter(addr, false)
	if err != nil {
		b.Fatal(err)
	}
	defer exp.close()
	st := &stats{}
	b.ResetTimer()
	run(context.Background(), runConfig{
		gen:   genConfig{runID: "b", seed: 1, staleShare: 0.02, missingShare: 0.01},
		batch: 500, workers: 4, events: int64(b.N),
		deliver: deliverer{exp: exp, timeout: 5 * time.Second, maxRetries: 3, backoff: time.Millisecond},
	}, st)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// tokenLogs records the authorization metadata of each request.
type tokenLogs struct {
	plogotlp.UnimplementedGRPCServer
	got chan []string
}

func (f *tokenLogs) Export(ctx context.Context, _ plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.got <- md.Get("authorization")
	return plogotlp.NewExportResponse(), nil
}

// --token-file's token goes with every request, on gRPC and HTTP (and so
// on the JSON endpoint, which is HTTP).
func TestTokenGoesWithEveryRequest(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	fake := &tokenLogs{got: make(chan []string, 1)}
	plogotlp.RegisterGRPCServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	g, err := newGRPCExporter(lis.Addr().String(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	g.authorization = "Bearer t0ken"
	if _, err := g.exportLogs(context.Background(), plog.NewLogs()); err != nil {
		t.Fatal(err)
	}
	if got := <-fake.got; len(got) != 1 || got[0] != "Bearer t0ken" {
		t.Fatalf("gRPC authorization metadata %q", got)
	}

	header := make(chan string, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header <- r.Header.Get("Authorization")
		out, _ := plogotlp.NewExportResponse().MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	defer hs.Close()
	h := newHTTPExporter(hs.URL, false, 1)
	defer h.close()
	h.authorization = "Bearer t0ken"
	if _, err := h.exportLogs(context.Background(), plog.NewLogs()); err != nil {
		t.Fatal(err)
	}
	if got := <-header; got != "Bearer t0ken" {
		t.Fatalf("HTTP Authorization %q", got)
	}
}
