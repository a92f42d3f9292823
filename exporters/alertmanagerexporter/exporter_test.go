package alertmanagerexporter

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/api/v2/models"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/attribute"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
)

// fakeAM records what reaches it and answers with status. Edge cases only:
// claims about Alertmanager itself are in integration_test.go.
type fakeAM struct {
	*httptest.Server
	status int

	mu       sync.Mutex
	paths    []string
	auth     []string
	received []models.PostableAlerts
}

func newFakeAM(t *testing.T, status int) *fakeAM {
	f := &fakeAM{status: status}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var alerts models.PostableAlerts
		_ = json.NewDecoder(r.Body).Decode(&alerts)
		f.mu.Lock()
		f.paths = append(f.paths, r.URL.Path)
		f.auth = append(f.auth, r.Header.Get("Authorization"))
		f.received = append(f.received, alerts)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		if f.status >= 400 {
			_, _ = w.Write([]byte(`"refused"`))
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAM) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.received)
}

func (f *fakeAM) last() models.PostableAlerts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.received[len(f.received)-1]
}

func TestStatusCodesRetryableOrPermanent(t *testing.T) {
	for _, tt := range []struct {
		status    int
		permanent bool
	}{
		{http.StatusBadRequest, true},
		{http.StatusUnauthorized, true},
		{http.StatusForbidden, true},
		{http.StatusNotFound, true},
		{http.StatusRequestTimeout, false},
		{http.StatusTooManyRequests, false},
		{http.StatusInternalServerError, false},
		{http.StatusBadGateway, false},
		{http.StatusServiceUnavailable, false},
	} {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			f := newFakeAM(t, tt.status)
			e := startExporter(t, []string{f.URL}, nil)
			err := e.pushLogs(context.Background(), alertLogs(firing("X", time.Now())))
			require.Error(t, err)
			assert.Equal(t, tt.permanent, consumererror.IsPermanent(err), "got %v", err)
		})
	}
}

func TestOnePermanentOneRetryableIsRetryable(t *testing.T) {
	bad, down := newFakeAM(t, http.StatusBadRequest), newFakeAM(t, http.StatusServiceUnavailable)
	e := startExporter(t, []string{bad.URL, down.URL}, nil)
	err := e.pushLogs(context.Background(), alertLogs(firing("X", time.Now())))
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err), "got %v", err)
	assert.Contains(t, err.Error(), bad.URL)
	assert.Contains(t, err.Error(), down.URL)
}

func TestAuthAndPathPrefix(t *testing.T) {
	t.Run("basic auth", func(t *testing.T) {
		f := newFakeAM(t, http.StatusOK)
		e := startExporter(t, []string{f.URL + "/alertmanager/"}, func(c *Config) {
			c.BasicAuth = configoptional.Some(BasicAuth{Username: "dt", Password: "pw"})
		})
		require.NoError(t, e.pushLogs(context.Background(), alertLogs(firing("X", time.Now()))))
		assert.Equal(t, []string{"/alertmanager/api/v2/alerts"}, f.paths)
		assert.Equal(t, []string{"Basic ZHQ6cHc="}, f.auth)
	})
	t.Run("bearer token", func(t *testing.T) {
		f := newFakeAM(t, http.StatusOK)
		e := startExporter(t, []string{f.URL}, func(c *Config) { c.BearerToken = "tok" })
		require.NoError(t, e.pushLogs(context.Background(), alertLogs(firing("X", time.Now()))))
		assert.Equal(t, []string{"/api/v2/alerts"}, f.paths)
		assert.Equal(t, []string{"Bearer tok"}, f.auth)
	})
}

func TestRecordsNotSent(t *testing.T) {
	f := newFakeAM(t, http.StatusOK)
	e := startExporter(t, []string{f.URL}, nil)
	noName := firing("", time.Now())
	pending := firing("P", time.Now())
	pending.state = "pending"
	odd := firing("O", time.Now())
	odd.state = "inactive"
	require.NoError(t, e.pushLogs(context.Background(), alertLogs(noName, pending, pending, odd)))
	assert.Zero(t, f.requests())
	for reason, n := range map[string]int64{"no_name": 1, "pending": 2, "invalid_state": 1} {
		assert.Equal(t, n, e.counter(t, "otelcol_alertmanager_records_skipped", attribute.String("reason", reason)), reason)
	}
}

func TestMapping(t *testing.T) {
	f := newFakeAM(t, http.StatusOK)
	e := startExporter(t, []string{f.URL}, nil)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	e.now = func() time.Time { return now }
	ctx := context.Background()

	t.Run("alert.name wins over an alertname label; last record of an alert wins", func(t *testing.T) {
		a := firing("Real", now.Add(-time.Minute))
		a.labels = map[string]string{"alertname": "Fake", "team": "x"}
		r := a
		r.state, r.resolvedAt = "resolved", now.Add(-time.Second)
		require.NoError(t, e.pushLogs(ctx, alertLogs(a, r)))
		got := f.last()
		require.Len(t, got, 1)
		assert.Equal(t, models.LabelSet{"alertname": "Real", "team": "x"}, got[0].Labels)
		assert.True(t, now.Add(-time.Second).Equal(time.Time(got[0].EndsAt)))
	})
	t.Run("startsAt falls back to active_at, then the record time", func(t *testing.T) {
		a := firing("NoFiredAt", time.Time{})
		a.activeAt = now.Add(-time.Hour)
		require.NoError(t, e.pushLogs(ctx, alertLogs(a)))
		assert.True(t, now.Add(-time.Hour).Equal(time.Time(f.last()[0].StartsAt)))
		assert.True(t, now.Add(4*time.Minute).Equal(time.Time(f.last()[0].EndsAt)))
	})
	t.Run("unparseable time falls back", func(t *testing.T) {
		ld := alertLogs(firing("BadTime", time.Time{}))
		lr := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
		// The record's own time, on the test's clock: never today's date.
		recTime := now.Add(-90 * time.Second)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(recTime))
		lr.Attributes().PutStr(conventions.AlertFiredAt, "yesterday")
		lr.Attributes().Remove(conventions.AlertActiveAt)
		require.NoError(t, e.pushLogs(ctx, ld))
		assert.True(t, recTime.Equal(time.Time(f.last()[0].StartsAt)), "got %s", f.last()[0].StartsAt)
	})
	t.Run("resolved without resolved_at ends now, never before it starts", func(t *testing.T) {
		r := firing("ResolvedNow", now.Add(time.Hour)) // clock skew of the evaluator
		r.state = "resolved"
		require.NoError(t, e.pushLogs(ctx, alertLogs(r)))
		got := f.last()[0]
		assert.True(t, now.Equal(time.Time(got.EndsAt)))
		assert.True(t, now.Equal(time.Time(got.StartsAt)))
	})
	t.Run("the rule evaluator's integer fingerprint identifies the alert", func(t *testing.T) {
		r := firing("IntFP", now)
		r.state = "resolved"
		ld := alertLogs(r)
		ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().PutInt(conventions.AlertFingerprint, 1234)
		require.NoError(t, e.pushLogs(ctx, ld))
		e.mu.Lock()
		_, ok := e.resolved["1234"]
		e.mu.Unlock()
		assert.True(t, ok)
	})
	t.Run("without a fingerprint the label set identifies the alert", func(t *testing.T) {
		a := firing("NoFP", now)
		a.fingerprint = ""
		b := a
		b.labels = map[string]string{"workflow": "other"}
		require.NoError(t, e.pushLogs(ctx, alertLogs(a, b)))
		assert.Len(t, f.last(), 2)
	})
}

// go-openapi dumps requests, Authorization header included, to stderr when
// DEBUG or SWAGGER_DEBUG is set; a collector started with DEBUG=1 must not
// print its Alertmanager credentials.
func TestCredentialsNotDumpedWithDEBUG(t *testing.T) {
	t.Setenv("DEBUG", "1")
	t.Setenv("SWAGGER_DEBUG", "1")
	f := newFakeAM(t, http.StatusOK)
	e := startExporter(t, []string{f.URL}, func(c *Config) { c.BearerToken = "very-secret-token" })

	r, w, err := os.Pipe()
	require.NoError(t, err)
	stderr := os.Stderr
	os.Stderr = w
	pushErr := e.pushLogs(context.Background(), alertLogs(firing("X", time.Now())))
	os.Stderr = stderr
	require.NoError(t, w.Close())
	out, err := io.ReadAll(r)
	require.NoError(t, err)
	require.NoError(t, pushErr)
	assert.Equal(t, []string{"Bearer very-secret-token"}, f.auth)
	assert.NotContains(t, string(out), "very-secret-token")
}
