package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// exporter sends one request and returns how many of its items the server
// rejected in a partial success.
type exporter interface {
	exportLogs(ctx context.Context, ld plog.Logs) (rejected int64, err error)
	exportTraces(ctx context.Context, td ptrace.Traces) (rejected int64, err error)
	close() error
}

type grpcExporter struct {
	conn   *grpc.ClientConn
	logs   plogotlp.GRPCClient
	traces ptraceotlp.GRPCClient
	opts   []grpc.CallOption
	// authorization is sent as the authorization metadata when set
	// ("Bearer <token>").
	authorization string
}

func (e *grpcExporter) context(ctx context.Context) context.Context {
	if e.authorization == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", e.authorization)
}

func newGRPCExporter(endpoint string, gzipped bool) (*grpcExporter, error) {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	e := &grpcExporter{conn: conn, logs: plogotlp.NewGRPCClient(conn), traces: ptraceotlp.NewGRPCClient(conn)}
	if gzipped {
		e.opts = append(e.opts, grpc.UseCompressor(grpcgzip.Name))
	}
	return e, nil
}

func (e *grpcExporter) exportLogs(ctx context.Context, ld plog.Logs) (int64, error) {
	resp, err := e.logs.Export(e.context(ctx), plogotlp.NewExportRequestFromLogs(ld), e.opts...)
	if err != nil {
		return 0, err
	}
	return resp.PartialSuccess().RejectedLogRecords(), nil
}

func (e *grpcExporter) exportTraces(ctx context.Context, td ptrace.Traces) (int64, error) {
	resp, err := e.traces.Export(e.context(ctx), ptraceotlp.NewExportRequestFromTraces(td), e.opts...)
	if err != nil {
		return 0, err
	}
	return resp.PartialSuccess().RejectedSpans(), nil
}

func (e *grpcExporter) close() error { return e.conn.Close() }

type httpExporter struct {
	client            *http.Client
	logsURL, traceURL string
	gzipped           bool
	gz                sync.Pool
	// authorization is the Authorization header when set.
	authorization string
}

func newHTTPExporter(endpoint string, gzipped bool, workers int) *httpExporter {
	base := endpoint
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	base = strings.TrimRight(base, "/")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// One idle connection per worker, or every request would dial anew.
	tr.MaxIdleConnsPerHost = workers * 2
	return &httpExporter{
		client:   &http.Client{Transport: tr},
		logsURL:  base + "/v1/logs",
		traceURL: base + "/v1/traces",
		gzipped:  gzipped,
	}
}

// httpStatusError keeps the status so that the retry policy can tell
// back-pressure (429, 503) from a request the server will never take.
type httpStatusError struct {
	code int
	msg  string
}

func (e *httpStatusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.code, e.msg)
}

func (e *httpExporter) post(ctx context.Context, url string, body []byte, resp interface{ UnmarshalProto([]byte) error }) error {
	code, ct, data, err := e.do(ctx, url, "application/x-protobuf", body)
	if err != nil {
		return err
	}
	if code/100 != 2 {
		msg := strings.TrimSpace(string(data))
		if strings.HasPrefix(ct, "application/x-protobuf") {
			// The body is a google.rpc.Status; its message is what a person
			// wants, but decoding it needs no more than a printable excerpt.
			msg = printable(data)
		}
		return &httpStatusError{code: code, msg: msg}
	}
	if len(data) > 0 && strings.HasPrefix(ct, "application/x-protobuf") {
		if err := resp.UnmarshalProto(data); err != nil {
			return fmt.Errorf("decoding response: %w", err)
		}
	}
	return nil
}

// do sends one POST, gzipped if configured, and returns the answer's status,
// Content-Type and (the first MiB of) its body.
func (e *httpExporter) do(ctx context.Context, url, contentType string, body []byte) (int, string, []byte, error) {
	if e.gzipped {
		zw, _ := e.gz.Get().(*gzip.Writer)
		// The buffer is fresh per request: the transport may still be reading
		// the body after Do returns, so it must not be recycled.
		buf := bytes.NewBuffer(make([]byte, 0, len(body)/4))
		if zw == nil {
			zw, _ = gzip.NewWriterLevel(buf, gzip.BestSpeed)
		} else {
			zw.Reset(buf)
		}
		_, _ = zw.Write(body)
		if err := zw.Close(); err != nil {
			return 0, "", nil, err
		}
		e.gz.Put(zw)
		body = buf.Bytes()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	req.Header.Set("Content-Type", contentType)
	if e.authorization != "" {
		req.Header.Set("Authorization", e.authorization)
	}
	if e.gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	res, err := e.client.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return 0, "", nil, err
	}
	return res.StatusCode, res.Header.Get("Content-Type"), data, nil
}

func printable(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			sb.WriteByte(c)
		}
	}
	s := sb.String()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func (e *httpExporter) exportLogs(ctx context.Context, ld plog.Logs) (int64, error) {
	body, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	if err != nil {
		return 0, err
	}
	resp := plogotlp.NewExportResponse()
	if err := e.post(ctx, e.logsURL, body, resp); err != nil {
		return 0, err
	}
	return resp.PartialSuccess().RejectedLogRecords(), nil
}

func (e *httpExporter) exportTraces(ctx context.Context, td ptrace.Traces) (int64, error) {
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		return 0, err
	}
	resp := ptraceotlp.NewExportResponse()
	if err := e.post(ctx, e.traceURL, body, resp); err != nil {
		return 0, err
	}
	return resp.PartialSuccess().RejectedSpans(), nil
}

func (e *httpExporter) close() error {
	e.client.CloseIdleConnections()
	return nil
}

// retryable reports whether the collector asked us to come back later
// (memory limiter, full queue, restart) rather than refused the data.
func retryable(err error) bool {
	var he *httpStatusError
	if errors.As(err, &he) {
		switch he.code {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.DeadlineExceeded:
			return true
		}
	}
	return false
}

// signalStats counts one signal. sent is what the collector accepted: events
// of successful requests minus the ones a partial success rejected.
type signalStats struct {
	sent, failed, rejected            atomic.Int64
	requests, failedRequests, retries atomic.Int64
}

type stats struct {
	logs, traces signalStats
	decisions    atomic.Int64

	errMu   sync.Mutex
	lastErr string

	firstSend atomic.Int64 // unix nanos of the first request, 0 before
}

func (s *stats) setErr(err error) {
	s.errMu.Lock()
	s.lastErr = err.Error()
	s.errMu.Unlock()
}

func (s *stats) lastError() string {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.lastErr
}

func (s *stats) sent() int64   { return s.logs.sent.Load() + s.traces.sent.Load() }
func (s *stats) failed() int64 { return s.logs.failed.Load() + s.traces.failed.Load() }

// deliverer applies the retry policy and does the counting for one worker.
type deliverer struct {
	exp        exporter
	st         *stats
	timeout    time.Duration
	maxRetries int
	backoff    time.Duration
}

// deliver sends one request of n events and counts it. ctx ends retries
// early; the request itself runs under its own timeout so that a Ctrl-C does
// not cut a request that is already in flight.
func (d *deliverer) deliver(ctx context.Context, ss *signalStats, n int, send func(context.Context) (int64, error)) {
	if n == 0 {
		return
	}
	wait := d.backoff
	for attempt := 0; ; attempt++ {
		d.st.firstSend.CompareAndSwap(0, time.Now().UnixNano())
		rctx, cancel := context.WithTimeout(context.Background(), d.timeout)
		rejected, err := send(rctx)
		cancel()
		ss.requests.Add(1)
		if err == nil {
			rejected = min(max(rejected, 0), int64(n))
			ss.sent.Add(int64(n) - rejected)
			if rejected > 0 {
				ss.rejected.Add(rejected)
				d.st.setErr(fmt.Errorf("partial success: %d of %d rejected", rejected, n))
			}
			return
		}
		ss.failedRequests.Add(1)
		d.st.setErr(err)
		if attempt >= d.maxRetries || !retryable(err) || ctx.Err() != nil {
			ss.failed.Add(int64(n))
			return
		}
		ss.retries.Add(1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		wait = min(wait*2, 5*time.Second)
	}
}

func (d *deliverer) send(ctx context.Context, b batch) {
	d.deliver(ctx, &d.st.logs, b.nLogs, func(rctx context.Context) (int64, error) {
		return d.exp.exportLogs(rctx, b.logs)
	})
	d.deliver(ctx, &d.st.traces, b.nSpans, func(rctx context.Context) (int64, error) {
		return d.exp.exportTraces(rctx, b.traces)
	})
}
