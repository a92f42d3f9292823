package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// TestIntegrationRecordsOutsideTheRetentionAreRefused: with a 30-day TTL,
// a record 40 days old would be answered OK and deleted at once, and one
// stamped 2^64-1 or next year would sit in the future. Through the
// collector, an OTLP request carrying one is refused naming the record and
// why; nothing of it is stored, and the same request without it is. The
// decision-events endpoint refuses that event alone and stores the others.
// A record without a time (0) is kept at the time it was observed or
// received.
func TestIntegrationRecordsOutsideTheRetentionAreRefused(t *testing.T) {
	addr := testenv.ClickHouse(t)
	db := testenv.Database(t, addr, "dt_retention")
	s := storeOf(t, addr, db)
	dir := t.TempDir()
	env := writeConfig(t, dir, addr, db)
	eventsPort := testenv.FreePort(t)
	runCollector(t, env.configPath, overlay(t, dir, fmt.Sprintf(`
receivers:
  decisionevents:
    endpoint: 127.0.0.1:%d
exporters:
  decisionstore:
    ttl: 720h
service:
  pipelines:
    logs:
      receivers: [otlp, decisionevents]
`, eventsPort)))

	now := time.Now().UTC()
	record := func(lrs plog.LogRecordSlice, id string, at time.Time) plog.LogRecord {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
		lr.Attributes().PutStr(conventions.DecisionID, id)
		lr.Attributes().PutStr(conventions.DecisionWorkflow, "claims-triage")
		lr.Attributes().PutStr(conventions.DecisionEvent, conventions.EventModelOutput)
		lr.Attributes().PutStr(conventions.DecisionLayer, conventions.LayerModel)
		return lr
	}
	request := func(withBad bool) plog.Logs {
		ld := plog.NewLogs()
		lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		record(lrs, "otlp-valid", now)
		record(lrs, "otlp-no-time", time.Time{}).SetTimestamp(0)
		if withBad {
			record(lrs, "otlp-40-days", now.Add(-40*24*time.Hour))
			record(lrs, "otlp-next-year", now.Add(365*24*time.Hour))
		}
		return ld
	}
	post := func(ld plog.Logs) (int, string) {
		body, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
		require.NoError(t, err)
		resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/logs", env.httpPort), "application/x-protobuf", bytes.NewReader(body))
		require.NoError(t, err)
		b := readAll(t, resp)
		return resp.StatusCode, b
	}
	code, body := post(request(true))
	assert.Equal(t, http.StatusBadRequest, code, "refused, and not to be retried as it is")
	assert.Contains(t, body, "log_records[2]: time "+now.Add(-40*24*time.Hour).Format(time.RFC3339Nano)+" is before the retention (ttl 720h0m0s)")
	assert.Contains(t, body, "log_records[3]: time "+now.Add(365*24*time.Hour).Format(time.RFC3339Nano)+" is more than 24h0m0s after the collector's clock")
	code, _ = post(request(false))
	require.Equal(t, http.StatusOK, code)

	events := strings.Join([]string{
		`{"decision.id":"json-valid","decision.workflow":"claims-triage","decision.event":"model.output","decision.layer":"model"}`,
		`{"decision.id":"json-time-0","decision.workflow":"claims-triage","decision.event":"model.output","decision.layer":"model","time":0}`,
		fmt.Sprintf(`{"decision.id":"json-40-days","decision.workflow":"claims-triage","decision.event":"model.output","decision.layer":"model","time":%q}`,
			now.Add(-40*24*time.Hour).Format(time.RFC3339)),
	}, ",")
	// The decision-events endpoint answers per event: the old one is
	// refused, named at its place in the request, and the others stored.
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/decision-events", eventsPort), "application/json", strings.NewReader("["+events+"]"))
	require.NoError(t, err)
	b := readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, b)
	assert.Contains(t, b, `"accepted":2,"refused":1`)
	assert.Contains(t, b, `{"index":2,"path":"[2]","reason":"time `+now.Add(-40*24*time.Hour).Truncate(time.Second).Format(time.RFC3339Nano)+` is before the retention (ttl 720h0m0s)"}`)

	settle(t, s, 4)
	rows, err := s.Conn().Query(context.Background(), "SELECT decision_id, time FROM "+db+".events ORDER BY decision_id")
	require.NoError(t, err)
	got := map[string]time.Time{}
	for rows.Next() {
		var id string
		var at time.Time
		require.NoError(t, rows.Scan(&id, &at))
		got[id] = at
	}
	require.NoError(t, rows.Err())
	require.Len(t, got, 4, "the refused requests left nothing: %v", got)
	for _, id := range []string{"otlp-no-time", "json-time-0"} {
		assert.WithinDuration(t, now, got[id], time.Minute, "%s is kept at the time it was observed or received", id)
	}
	assert.Contains(t, got, "otlp-valid")
	assert.Contains(t, got, "json-valid")
}
