package alertmanagerexporter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
)

// rec describes one alert record for alertLogs.
type rec struct {
	name, state, fingerprint, generator string
	labels, annotations                 map[string]string
	activeAt, firedAt, resolvedAt       time.Time
}

func alertLogs(recs ...rec) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, r := range recs {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		a := lr.Attributes()
		if r.name != "" {
			a.PutStr(conventions.AlertName, r.name)
		}
		a.PutStr(conventions.AlertState, r.state)
		if r.fingerprint != "" {
			a.PutStr(conventions.AlertFingerprint, r.fingerprint)
		}
		if r.generator != "" {
			a.PutStr(conventions.AlertGeneratorURL, r.generator)
		}
		l := a.PutEmptyMap(conventions.AlertLabels)
		for k, v := range r.labels {
			l.PutStr(k, v)
		}
		an := a.PutEmptyMap(conventions.AlertAnnotations)
		for k, v := range r.annotations {
			an.PutStr(k, v)
		}
		for k, t := range map[string]time.Time{conventions.AlertActiveAt: r.activeAt, conventions.AlertFiredAt: r.firedAt, conventions.AlertResolvedAt: r.resolvedAt} {
			if !t.IsZero() {
				a.PutStr(k, t.UTC().Format(time.RFC3339Nano))
			}
		}
		a.PutDouble(conventions.AlertValue, 42)
	}
	return ld
}

type testExporter struct {
	*amExporter
	tel *componenttest.Telemetry
}

// startExporter starts the exporter itself, without exporterhelper, so that
// pushLogs returns what the exporter decided (retryable or permanent).
func startExporter(t *testing.T, endpoints []string, mut func(*Config)) *testExporter {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoints = endpoints
	cfg.Timeout = 2 * time.Second
	if mut != nil {
		mut(cfg)
	}
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	set := exportertest.NewNopSettings(typ)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	e, err := newExporter(cfg, set)
	require.NoError(t, err)
	require.NoError(t, e.start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		_ = e.shutdown(context.Background())
		_ = tel.Shutdown(context.Background())
	})
	return &testExporter{amExporter: e, tel: tel}
}

// counter is the value of an int64 sum for the data point with exactly
// attrs; 0 when there is none yet.
func (te *testExporter) counter(t *testing.T, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	m, err := te.tel.GetMetric(name)
	if err != nil {
		return 0
	}
	want := attribute.NewSet(attrs...)
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp.Value
		}
	}
	return 0
}
