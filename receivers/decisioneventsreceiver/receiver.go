package decisioneventsreceiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
)

const (
	eventsPath       = "/v1/decision-events"
	humanActionsPath = "/v1/human-actions"
	// dataFormat labels the receiver's own telemetry (obsreport).
	dataFormat = "json"
)

type eventsReceiver struct {
	cfg    *Config
	set    receiver.Settings
	next   consumer.Logs
	obsrep *receiverhelper.ObsReport

	server *http.Server
	// listenAddr is the bound address, which differs from the configured
	// one for port 0.
	listenAddr net.Addr
	serveWG    sync.WaitGroup
	maxBody    int64
	inflight   sync.WaitGroup
	// mu guards closed and the inflight.Add that a handler does under it,
	// so that once Shutdown has set closed no new handler can start and
	// the wait covers every handler that did.
	mu     sync.Mutex
	closed bool
}

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Logs) (*eventsReceiver, error) {
	obsrep, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "http",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	return &eventsReceiver{cfg: cfg, set: set, next: next, obsrep: obsrep}, nil
}

func (r *eventsReceiver) handler() http.Handler {
	mux := http.NewServeMux()
	// Method patterns make the mux answer 405 with an Allow header itself.
	mux.Handle("POST "+eventsPath, r.endpoint(kindEvents))
	mux.Handle("POST "+humanActionsPath, r.endpoint(kindHuman))
	return mux
}

func (r *eventsReceiver) Start(ctx context.Context, host component.Host) error {
	// ToServer fills in defaults on the config it is given; a copy keeps
	// the user's configuration as it was loaded.
	srvCfg := r.cfg.ServerConfig
	srv, err := srvCfg.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, r.handler(),
		// Decompression errors (bad gzip, body over the limit after
		// decompression) get the receiver's JSON error shape too.
		withJSONErrors())
	if err != nil {
		return err
	}
	r.maxBody = srvCfg.MaxRequestBodySize
	ln, err := srvCfg.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("decisionevents: listen on %s: %w", srvCfg.NetAddr.Endpoint, err)
	}
	r.server = srv
	r.listenAddr = ln.Addr()
	r.set.Logger.Info("Starting HTTP server", zap.String("endpoint", ln.Addr().String()))
	r.serveWG.Add(1)
	go func() {
		defer r.serveWG.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	return nil
}

// Shutdown stops accepting requests and returns once every request already
// in a handler is done: nothing reaches the next consumer after it returns.
func (r *eventsReceiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	var err error
	if r.server != nil {
		err = r.server.Shutdown(ctx)
		if err != nil {
			// The context ran out with requests still open: cut them.
			err = errors.Join(err, r.server.Close())
		}
	}
	r.serveWG.Wait()
	done := make(chan struct{})
	go func() {
		r.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("decisionevents: requests still in the pipeline: %w", ctx.Err()))
	}
	return err
}

func (r *eventsReceiver) enter() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.inflight.Add(1)
	return true
}

// response is the body of every answer.
type response struct {
	Accepted int          `json:"accepted"`
	Refused  int          `json:"refused"`
	Error    string       `json:"error,omitempty"`
	Errors   []eventError `json:"errors,omitempty"`
	// ErrorsOmitted counts per-event errors left out past the first 1,000.
	ErrorsOmitted int `json:"errors_omitted,omitempty"`
}

func (r *eventsReceiver) endpoint(k kind) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !r.enter() {
			r.retryLater(w)
			writeJSON(w, http.StatusServiceUnavailable, response{Error: "the receiver is shutting down; retry against another collector or later"})
			return
		}
		defer r.inflight.Done()

		f, err := contentFormat(req.Header.Get("Content-Type"))
		if err != nil {
			writeJSON(w, http.StatusUnsupportedMediaType, response{Error: err.Error()})
			return
		}
		body, err := r.readBody(req)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeJSON(w, http.StatusRequestEntityTooLarge, response{Error: fmt.Sprintf(
					"the request body exceeds %d bytes, the receiver's max_request_body_size; split it into smaller requests", mbe.Limit)})
				return
			}
			writeJSON(w, http.StatusBadRequest, response{Error: "reading the request body: " + err.Error()})
			return
		}

		d := newDecoder(limits{maxEvents: r.cfg.MaxEventsPerRequest, maxAttributes: r.cfg.MaxAttributesPerEvent}, k, time.Now())
		res, err := d.decode(body, f)
		if err != nil {
			var re *requestError
			if errors.As(err, &re) {
				writeJSON(w, re.status, response{Error: re.msg})
				return
			}
			writeJSON(w, http.StatusInternalServerError, response{Error: err.Error()})
			return
		}
		resp := res.answer()
		if res.refused > 0 {
			ctx := r.obsrep.StartLogsOp(req.Context())
			r.obsrep.EndLogsOp(ctx, dataFormat, res.refused, errInvalidEvents)
		}
		if res.accepted == 0 {
			status := http.StatusOK // an empty array: nothing was wrong
			if res.refused > 0 {
				status = http.StatusBadRequest
				resp.Error = fmt.Sprintf("all %d events were refused; see errors", res.refused)
			}
			writeJSON(w, status, resp)
			return
		}

		ctx := r.obsrep.StartLogsOp(req.Context())
		err = r.next.ConsumeLogs(ctx, res.logs)
		// A component that refuses some records (out of the store's
		// retention, an unknown workflow) refuses them alone: they join
		// the refused events and the rest go again. A refusal in the next
		// component after that is taken the same way.
		for range maxRefusalRounds {
			n, ok := res.withoutRefused(err)
			if !ok {
				break
			}
			rctx := r.obsrep.StartLogsOp(req.Context())
			r.obsrep.EndLogsOp(rctx, dataFormat, n, err)
			resp = res.answer()
			if res.accepted == 0 {
				r.obsrep.EndLogsOp(ctx, dataFormat, 0, nil)
				resp.Error = fmt.Sprintf("all %d events were refused; see errors", res.refused)
				writeJSON(w, http.StatusBadRequest, resp)
				return
			}
			err = r.next.ConsumeLogs(ctx, res.logs)
		}
		r.obsrep.EndLogsOp(ctx, dataFormat, res.accepted, err)
		switch {
		case err == nil:
			resp.Accepted = res.accepted
			writeJSON(w, http.StatusOK, resp)
		case consumererror.IsPermanent(err):
			resp.Error = fmt.Sprintf("the pipeline refused the %d valid events permanently: %v", res.accepted, err)
			writeJSON(w, http.StatusBadRequest, resp)
		default:
			r.retryLater(w)
			resp.Error = fmt.Sprintf("the pipeline could not take the %d valid events now (%v); retry the request after %d s",
				res.accepted, err, int(r.cfg.RetryAfter/time.Second))
			writeJSON(w, http.StatusServiceUnavailable, resp)
		}
	})
}

var errInvalidEvents = errors.New("events refused by validation")

// maxRefusalRounds bounds how often a request goes again without the
// records a component refused: once for each component that refuses
// records on its own (the decision processor, the store exporter), and
// one more.
const maxRefusalRounds = 3

func (r *eventsReceiver) retryLater(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(int(r.cfg.RetryAfter/time.Second)))
}

func (r *eventsReceiver) readBody(req *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	// Content-Length is a hint only: a compressed body decodes larger, and
	// the body-size limit is enforced by the reader confighttp installed.
	if n := req.ContentLength; n > 0 && (r.maxBody <= 0 || n <= r.maxBody) {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(req.Body)
	return buf.Bytes(), err
}

func contentFormat(ct string) (format, error) {
	if ct == "" {
		return 0, errors.New("missing Content-Type: send application/json (an array of events or one event) or application/x-ndjson (one event per line)")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil {
		if cs, ok := params["charset"]; ok && !equalFold(cs, "utf-8") {
			return 0, fmt.Errorf("charset %q is not supported: send UTF-8", cs)
		}
		switch mt {
		case "application/json":
			return formatJSON, nil
		case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines":
			return formatNDJSON, nil
		}
	}
	return 0, fmt.Errorf("Content-Type %q is not supported: send application/json (an array of events or one event) or application/x-ndjson (one event per line)", clip(ct))
}

func equalFold(a, b string) bool {
	return len(a) == len(b) && bytes.EqualFold([]byte(a), []byte(b))
}

func writeJSON(w http.ResponseWriter, status int, resp response) {
	b, err := json.Marshal(resp)
	if err != nil {
		// Every field marshals; this cannot happen short of a bug.
		status, b = http.StatusInternalServerError, []byte(`{"accepted":0,"refused":0,"error":"encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func withJSONErrors() confighttp.ToServerOption {
	return confighttp.WithErrorHandler(func(w http.ResponseWriter, _ *http.Request, msg string, status int) {
		writeJSON(w, status, response{Error: msg})
	})
}
