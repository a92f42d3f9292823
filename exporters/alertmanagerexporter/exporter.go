package alertmanagerexporter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	"github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/api/v2/models"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/decisiontrace/decisiontrace/exporters/alertmanagerexporter/internal/metadata"
)

// resolvedMemory is how long the resolve of an alert is remembered, so that
// an older firing record of it (a retry overtaken by the resolve) does not
// fire it again.
const resolvedMemory = 24 * time.Hour

type target struct {
	endpoint string // the configured URL, which carries no credentials
	client   alert.ClientService
}

type amExporter struct {
	cfg       *Config
	logger    *zap.Logger
	telemetry component.TelemetrySettings
	now       func() time.Time

	targets []target

	// mu serializes the pushes with the resolves they record: a firing
	// record pushed after the resolve of its alert (an exporterhelper
	// retry overtaken by it) must not reach Alertmanager, which would take
	// it as a new firing alert.
	mu       sync.Mutex
	resolved map[string]time.Time // fingerprint → endsAt of its last resolve
	closed   bool

	alertsSent   metric.Int64Counter
	sendFailures metric.Int64Counter
	skipped      metric.Int64Counter
}

func newExporter(cfg *Config, set exporter.Settings) (*amExporter, error) {
	e := &amExporter{
		cfg: cfg, logger: set.Logger, telemetry: set.TelemetrySettings, now: time.Now,
		resolved: map[string]time.Time{},
	}
	// Its own metrics, as metadata.yaml declares them.
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	e.alertsSent = tb.AlertmanagerAlertsSent
	e.sendFailures = tb.AlertmanagerSendFailures
	e.skipped = tb.AlertmanagerRecordsSkipped
	return e, nil
}

func (e *amExporter) start(ctx context.Context, host component.Host) error {
	client, err := e.cfg.ClientConfig.ToClient(ctx, host.GetExtensions(), e.telemetry)
	if err != nil {
		return fmt.Errorf("alertmanager: http client: %w", err)
	}
	client.Transport = closeAfter{next: client.Transport}

	var auth runtime.ClientAuthInfoWriter
	if ba := e.cfg.BasicAuth.Get(); ba != nil {
		auth = httptransport.BasicAuth(ba.Username, string(ba.Password))
	} else if e.cfg.BearerToken != "" {
		auth = httptransport.BearerToken(string(e.cfg.BearerToken))
	}
	e.targets = e.targets[:0]
	for _, ep := range e.cfg.Endpoints {
		u, err := url.Parse(ep)
		if err != nil {
			return fmt.Errorf("alertmanager: endpoint %q: %w", ep, err)
		}
		rt := httptransport.NewWithClient(u.Host, strings.TrimSuffix(u.Path, "/")+"/api/v2/", []string{u.Scheme}, client)
		// go-openapi turns on wire dumps (Authorization header included)
		// when DEBUG or SWAGGER_DEBUG is set in the environment.
		rt.Debug = false
		rt.DefaultAuthentication = auth
		e.targets = append(e.targets, target{endpoint: ep, client: alert.New(rt, strfmt.Default)})
	}

	if e.cfg.ResendInterval != 0 {
		e.logger.Warn("resend_interval of the Alertmanager exporter is no longer used and is ignored: the alertrules receiver re-sends firing alerts; set resend_interval there and remove it here")
	}
	return nil
}

// closeAfter closes each connection once its response is read. The
// collector's HTTP client wraps its transport (otelhttp) without
// CloseIdleConnections, so an idle keep-alive connection, and its two
// goroutines, would outlive Shutdown; alerts are a few POSTs a minute, for
// which a new connection costs nothing.
type closeAfter struct{ next http.RoundTripper }

func (c closeAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context()) // a RoundTripper must not change the caller's request
	r.Close = true
	return c.next.RoundTrip(r)
}

func (e *amExporter) shutdown(context.Context) error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	return nil
}

// pushLogs runs a push through its stages, as Alertmanager's notify
// pipeline does: parse the records, keep each alert's last, drop a firing
// one its resolve overtook, fan out to every endpoint.
func (e *amExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	recs, skipped := parseLogs(ld)
	for reason, n := range skipped {
		e.skipped.Add(ctx, n, metric.WithAttributes(attribute.String("reason", reason)))
	}
	if skipped[skipInvalidState] > 0 {
		e.logger.Warn("alert records with an alert.state other than pending, firing, resolved were dropped",
			zap.Int64("records", skipped[skipInvalidState]))
	}
	if len(recs) == 0 {
		return nil
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("alertmanager exporter is shut down")
	}
	now := e.now()
	batch, firing, resolved := e.notOvertaken(now, e.lastOfEach(recs))
	if len(batch) == 0 {
		return nil
	}
	return e.send(ctx, batch, firing, resolved)
}

// lastOfEach keeps the last record of each alert, in the order the alerts
// first appear: it is the alert's state, and sending the earlier ones as
// well would only make Alertmanager merge them.
func (e *amExporter) lastOfEach(recs []*alertRecord) []*alertRecord {
	at := map[string]int{}
	var out []*alertRecord
	for _, r := range recs {
		if len(r.badTimes) > 0 {
			e.logger.Warn("alert record with times that are not RFC 3339; sent with fallback times",
				zap.String("alertname", r.labels["alertname"]), zap.Strings("attributes", r.badTimes))
		}
		if i, ok := at[r.fingerprint]; ok {
			out[i] = r
			continue
		}
		at[r.fingerprint] = len(out)
		out = append(out, r)
	}
	return out
}

// notOvertaken turns records into the alerts to post, remembering each
// resolve for resolvedMemory and leaving out a firing record that started
// before its alert's last resolve (a retry the resolve overtook): posted,
// it would fire the alert again. Called with e.mu held.
func (e *amExporter) notOvertaken(now time.Time, recs []*alertRecord) (batch models.PostableAlerts, firing, resolved int) {
	for fp, at := range e.resolved {
		if now.Sub(at) > resolvedMemory {
			delete(e.resolved, fp)
		}
	}
	batch = make(models.PostableAlerts, 0, len(recs))
	for _, r := range recs {
		p := r.postable(now, e.cfg.EndsAtAhead)
		if r.resolved {
			e.resolved[r.fingerprint] = time.Time(p.EndsAt)
			resolved++
		} else {
			starts := r.startsAt
			if starts.IsZero() {
				starts = now
			}
			if at, ok := e.resolved[r.fingerprint]; ok && !starts.After(at) {
				e.logger.Info("firing record older than the alert's resolve ignored",
					zap.String("alertname", r.labels["alertname"]), zap.String("fingerprint", r.fingerprint))
				continue
			}
			delete(e.resolved, r.fingerprint)
			firing++
		}
		batch = append(batch, p)
	}
	return batch, firing, resolved
}

// send posts batch to every endpoint concurrently. It succeeds when at least
// one Alertmanager accepted the alerts: the others are logged and counted,
// their copy expires or is corrected by the evaluator's next re-send, and
// failing the push would re-send to the endpoints that already have it for as long as
// one replica is down. When none accepted, the error is permanent only if
// every endpoint refused the alerts themselves (4xx); otherwise it is
// retryable, and the firing alerts also go out with the evaluator's next
// re-send.
func (e *amExporter) send(ctx context.Context, batch models.PostableAlerts, firing, resolved int) error {
	errs := make([]error, len(e.targets))
	var wg sync.WaitGroup
	for i, t := range e.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.post(ctx, t, batch)
		}()
	}
	wg.Wait()

	accepted, permanent := 0, 0
	var failed []error
	for i, err := range errs {
		ep := attribute.String("endpoint", e.targets[i].endpoint)
		if err == nil {
			accepted++
			if firing > 0 {
				e.alertsSent.Add(ctx, int64(firing), metric.WithAttributes(ep, attribute.String("state", "firing")))
			}
			if resolved > 0 {
				e.alertsSent.Add(ctx, int64(resolved), metric.WithAttributes(ep, attribute.String("state", "resolved")))
			}
			continue
		}
		e.sendFailures.Add(ctx, 1, metric.WithAttributes(ep))
		if consumererror.IsPermanent(err) {
			permanent++
		}
		failed = append(failed, fmt.Errorf("%s: %w", e.targets[i].endpoint, err))
	}
	joined := errors.Join(failed...)
	switch {
	case len(failed) == 0:
		return nil
	case accepted > 0:
		e.logger.Warn("some Alertmanagers did not accept the alerts; sent to the others",
			zap.Int("accepted", accepted), zap.Int("failed", len(failed)), zap.Error(joined))
		return nil
	case permanent == len(failed):
		return consumererror.NewPermanent(joined)
	default:
		// Without %w: one permanent part must not make the whole permanent.
		return fmt.Errorf("no Alertmanager accepted the alerts: %s", joined.Error())
	}
}

func (e *amExporter) post(ctx context.Context, t target, batch models.PostableAlerts) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	_, err := t.client.PostAlerts(alert.NewPostAlertsParamsWithContext(ctx).
		WithTimeout(e.cfg.Timeout).WithAlerts(batch))
	if err == nil {
		return nil
	}
	var bad *alert.PostAlertsBadRequest
	if errors.As(err, &bad) {
		// Alertmanager stored the valid alerts of the batch and names the
		// others; a retry would be refused the same way.
		return consumererror.NewPermanent(fmt.Errorf("400 Bad Request: %s", bad.Payload))
	}
	var internal *alert.PostAlertsInternalServerError
	if errors.As(err, &internal) {
		return fmt.Errorf("500 Internal Server Error: %s", internal.Payload)
	}
	var apiErr *runtime.APIError
	if errors.As(err, &apiErr) {
		c := apiErr.Code
		if c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests {
			// 401, 403, 404, 413...: the request or the configuration is
			// wrong, not the moment.
			return consumererror.NewPermanent(fmt.Errorf("HTTP %d %s", c, http.StatusText(c)))
		}
		return fmt.Errorf("HTTP %d %s", c, http.StatusText(c))
	}
	return err
}
