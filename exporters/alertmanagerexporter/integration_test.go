package alertmanagerexporter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/prometheus/alertmanager/api/v2/models"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/goleak"

	"github.com/decisiontrace/decisiontrace/internal/amtest"
)

// These tests run against Debian's Alertmanager (internal/amtest): every
// claim about what Alertmanager holds is read back through its API v2.

func ms(t time.Time) time.Time { return t.Truncate(time.Millisecond) }

func onlyAlert(t *testing.T, am *amtest.Alertmanager, name string) *models.GettableAlert {
	t.Helper()
	got, err := am.Alerts(fmt.Sprintf("alertname=%q", name))
	require.NoError(t, err)
	require.Len(t, got, 1, "alerts named %s", name)
	return got[0]
}

func eventuallyAlert(t *testing.T, am *amtest.Alertmanager, name string, wait time.Duration) *models.GettableAlert {
	t.Helper()
	var a *models.GettableAlert
	require.Eventually(t, func() bool {
		got, err := am.Alerts(fmt.Sprintf("alertname=%q", name))
		if err != nil || len(got) != 1 {
			return false
		}
		a = got[0]
		return true
	}, wait, 50*time.Millisecond, "alert %s never arrived", name)
	return a
}

func eventuallyGone(t *testing.T, am *amtest.Alertmanager, name string, wait time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		got, err := am.Alerts(fmt.Sprintf("alertname=%q", name))
		return err == nil && len(got) == 0
	}, wait, 50*time.Millisecond, "alert %s still listed", name)
}

func firing(name string, firedAt time.Time) rec {
	return rec{
		name: name, state: "firing", fingerprint: "fp-" + name,
		labels:      map[string]string{"workflow": "claims-triage", "severity": "critical"},
		annotations: map[string]string{"summary": "policy-db is stale", "runbook": "https://runbooks.example/stale"},
		generator:   "http://grafana.example/d/decisions?var-workflow=claims-triage",
		activeAt:    firedAt.Add(-30 * time.Second), firedAt: firedAt,
	}
}

func TestIntegrationFiringAlertArrivesAsRecorded(t *testing.T) {
	am := amtest.Start(t)
	e := startExporter(t, []string{am.URL()}, nil)
	firedAt := ms(time.Now().Add(-time.Minute))
	before := time.Now()
	require.NoError(t, e.pushLogs(context.Background(), alertLogs(firing("DecisionSourceStale", firedAt))))

	a := onlyAlert(t, am, "DecisionSourceStale")
	assert.Equal(t, models.LabelSet{"alertname": "DecisionSourceStale", "workflow": "claims-triage", "severity": "critical"}, a.Labels)
	assert.Equal(t, models.LabelSet{"summary": "policy-db is stale", "runbook": "https://runbooks.example/stale"}, a.Annotations)
	assert.Equal(t, strfmt.URI("http://grafana.example/d/decisions?var-workflow=claims-triage"), a.GeneratorURL)
	assert.True(t, firedAt.Equal(time.Time(*a.StartsAt)), "startsAt = fired_at, got %s", a.StartsAt)
	ends := time.Time(*a.EndsAt)
	assert.False(t, ends.Before(ms(before.Add(4*time.Minute))), "endsAt %s is now + ends_at_ahead", ends)
	assert.True(t, ends.Before(time.Now().Add(4*time.Minute+time.Second)), "endsAt %s is now + ends_at_ahead", ends)
	assert.Equal(t, "active", *a.Status.State)

	ep := attribute.String("endpoint", am.URL())
	assert.Equal(t, int64(1), e.counter(t, "otelcol_alertmanager_alerts_sent", ep, attribute.String("state", "firing")))
}

// The evaluator sends a firing alert again every resend interval; each
// send moves endsAt ahead. When the sends stop (the evaluator died, and
// the exporter with it), the alert leaves Alertmanager by itself within
// ends_at_ahead.
func TestIntegrationFiringAlertIsRefreshedAndExpiresWhenSendingStops(t *testing.T) {
	am := amtest.Start(t)
	e := startExporter(t, []string{am.URL()}, func(c *Config) { c.EndsAtAhead = 2 * time.Second })
	f := firing("Resent", time.Now())
	require.NoError(t, e.pushLogs(context.Background(), alertLogs(f)))
	first := time.Time(*onlyAlert(t, am, "Resent").EndsAt)

	time.Sleep(500 * time.Millisecond)
	require.NoError(t, e.pushLogs(context.Background(), alertLogs(f)), "the evaluator's re-send")
	later := time.Time(*onlyAlert(t, am, "Resent").EndsAt)
	assert.True(t, later.After(first.Add(300*time.Millisecond)), "endsAt moved ahead with the re-send: %s, then %s", first, later)

	require.NoError(t, e.shutdown(context.Background()))
	stopped := time.Now()
	eventuallyGone(t, am, "Resent", 4*time.Second)
	assert.GreaterOrEqual(t, time.Since(stopped), time.Second, "it stayed while its last endsAt was ahead")
}

func TestIntegrationResolvedRecordResolves(t *testing.T) {
	am := amtest.Start(t)
	e := startExporter(t, []string{am.URL()}, func(c *Config) { c.EndsAtAhead = time.Minute })
	ctx := context.Background()
	f := firing("ToResolve", time.Now().Add(-time.Minute))
	require.NoError(t, e.pushLogs(ctx, alertLogs(f)))
	onlyAlert(t, am, "ToResolve")

	r := f
	r.state, r.resolvedAt = "resolved", ms(time.Now())
	require.NoError(t, e.pushLogs(ctx, alertLogs(r)))
	// Alertmanager 0.25 lists no resolved alert (see amtest's tests):
	// gone means resolved, since its endsAt (a minute ahead) was not due.
	got, err := am.Alerts(`alertname="ToResolve"`)
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Equal(t, int64(1), e.counter(t, "otelcol_alertmanager_alerts_sent",
		attribute.String("endpoint", am.URL()), attribute.String("state", "resolved")))

	// A late copy of the firing record (an exporterhelper retry overtaken
	// by the resolve) must not bring it back.
	require.NoError(t, e.pushLogs(ctx, alertLogs(f)))
	time.Sleep(400 * time.Millisecond)
	got, err = am.Alerts(`alertname="ToResolve"`)
	require.NoError(t, err)
	assert.Empty(t, got)

	// It fires again when it fires after its resolve.
	again := f
	again.firedAt = time.Now()
	require.NoError(t, e.pushLogs(ctx, alertLogs(again)))
	onlyAlert(t, am, "ToResolve")
}

func TestIntegrationAlertmanagerDown(t *testing.T) {
	t.Run("push is retryable and the evaluator's re-send delivers after restart", func(t *testing.T) {
		am := amtest.Start(t)
		e := startExporter(t, []string{am.URL()}, func(c *Config) { c.EndsAtAhead = time.Minute })
		am.Stop()
		err := e.pushLogs(context.Background(), alertLogs(firing("WhileDown", time.Now())))
		require.Error(t, err)
		assert.False(t, consumererror.IsPermanent(err), "got %v", err)
		assert.GreaterOrEqual(t, e.counter(t, "otelcol_alertmanager_send_failures", attribute.String("endpoint", am.URL())), int64(1))

		am.Restart()
		require.NoError(t, e.pushLogs(context.Background(), alertLogs(firing("WhileDown", time.Now()))))
		a := eventuallyAlert(t, am, "WhileDown", 3*time.Second)
		assert.Equal(t, "claims-triage", a.Labels["workflow"])
	})
	t.Run("exporterhelper retries the queued push after restart", func(t *testing.T) {
		am := amtest.Start(t)
		cfg := createDefaultConfig().(*Config)
		cfg.Endpoints = []string{am.URL()}
		cfg.Timeout = time.Second
		// No re-send within the test: only the retry can deliver.
		cfg.EndsAtAhead = 2 * time.Hour
		cfg.BackOffConfig.InitialInterval, cfg.BackOffConfig.MaxInterval = 100*time.Millisecond, 200*time.Millisecond
		ctx := context.Background()
		exp, err := NewFactory().CreateLogs(ctx, exportertest.NewNopSettings(typ), cfg)
		require.NoError(t, err)
		require.NoError(t, exp.Start(ctx, componenttest.NewNopHost()))
		defer func() { require.NoError(t, exp.Shutdown(ctx)) }()

		am.Stop()
		r := firing("QueuedWhileDown", time.Now().Add(-time.Minute))
		require.NoError(t, exp.ConsumeLogs(ctx, alertLogs(r)))
		time.Sleep(500 * time.Millisecond) // a few failed attempts
		am.Restart()
		eventuallyAlert(t, am, "QueuedWhileDown", 5*time.Second)
	})
}

func TestIntegrationBadRequestIsPermanent(t *testing.T) {
	am := amtest.Start(t)
	e := startExporter(t, []string{am.URL()}, nil)
	bad := firing("BadLabel", time.Now())
	bad.fingerprint = "fp-bad"
	bad.labels = map[string]string{"": "no name"}
	good := firing("GoodNeighbour", time.Now())
	err := e.pushLogs(context.Background(), alertLogs(bad, good))
	require.Error(t, err)
	assert.True(t, consumererror.IsPermanent(err), "got %v", err)
	assert.Contains(t, err.Error(), "400 Bad Request")
	assert.Contains(t, err.Error(), `invalid name ""`)
	// Alertmanager keeps the valid alerts of a refused batch, which is why
	// retrying the batch is useless; the evaluator's re-sends keep the good
	// one there.
	onlyAlert(t, am, "GoodNeighbour")
}

func TestIntegrationEveryAlertmanagerGetsEveryAlert(t *testing.T) {
	am1, am2 := amtest.Start(t), amtest.Start(t)
	e := startExporter(t, []string{am1.URL(), am2.URL()}, nil)
	ctx := context.Background()
	require.NoError(t, e.pushLogs(ctx, alertLogs(firing("ToBoth", time.Now()))))
	a1, a2 := onlyAlert(t, am1, "ToBoth"), onlyAlert(t, am2, "ToBoth")
	assert.Equal(t, a1.Labels, a2.Labels)
	assert.Equal(t, a1.Fingerprint, a2.Fingerprint)

	// One replica down: the push succeeds through the other, and the
	// failure is counted for the one that is down.
	am2.Stop()
	require.NoError(t, e.pushLogs(ctx, alertLogs(firing("OneDown", time.Now()))))
	onlyAlert(t, am1, "OneDown")
	assert.Equal(t, int64(1), e.counter(t, "otelcol_alertmanager_send_failures", attribute.String("endpoint", am2.URL())))
	assert.Equal(t, int64(0), e.counter(t, "otelcol_alertmanager_send_failures", attribute.String("endpoint", am1.URL())))

	// Both down: retryable.
	am1.Stop()
	err := e.pushLogs(ctx, alertLogs(firing("BothDown", time.Now())))
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err), "got %v", err)
}

// After Shutdown the exporter sends nothing more (no re-send moves endsAt,
// no new alert arrives) and leaves no goroutine behind.
func TestIntegrationNothingAfterShutdownNoLeaks(t *testing.T) {
	am := amtest.Start(t) // its process-watching goroutine is baseline
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoints = []string{am.URL()}
	cfg.EndsAtAhead = time.Minute
	exp, err := NewFactory().CreateLogs(ctx, exportertest.NewNopSettings(typ), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, exp.ConsumeLogs(ctx, alertLogs(firing("BeforeShutdown", time.Now()))))
	eventuallyAlert(t, am, "BeforeShutdown", 3*time.Second)
	require.NoError(t, exp.Shutdown(ctx))

	endsAt := time.Time(*onlyAlert(t, am, "BeforeShutdown").EndsAt)
	_ = exp.ConsumeLogs(ctx, alertLogs(firing("AfterShutdown", time.Now())))
	time.Sleep(400 * time.Millisecond)
	assert.True(t, endsAt.Equal(time.Time(*onlyAlert(t, am, "BeforeShutdown").EndsAt)), "re-sent after Shutdown")
	got, err := am.Alerts(`alertname="AfterShutdown"`)
	require.NoError(t, err)
	assert.Empty(t, got)
}
