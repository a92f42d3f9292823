package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// TestIntegrationIngestRequiresTheBearerToken runs the shipped overlay
// deploy/local/auth.yaml: on OTLP gRPC, OTLP/HTTP and the decision-events
// endpoint a request without the token, or with another one, is refused
// and nothing of it is stored; with the token (read from the file the
// overlay names) it is stored.
func TestIntegrationIngestRequiresTheBearerToken(t *testing.T) {
	dir := t.TempDir()
	addr := testenv.ClickHouse(t)
	db := testenv.Database(t, addr, "dt_auth")
	s := storeOf(t, addr, db)
	token := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(token, []byte("s3cret-token\n"), 0o600))
	t.Setenv("DECISIONTRACE_TOKEN_FILE", token)
	// A test collector, with the endpoints and extensions auth.yaml names.
	env := writeConfig(t, dir, addr, db)
	grpcPort, httpPort, eventsPort := env.grpcPort, env.httpPort, testenv.FreePort(t)
	runCollector(t, env.configPath, overlay(t, dir, fmt.Sprintf(`
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
  pprof:
    endpoint: 127.0.0.1:%d
receivers:
  decisionevents:
    endpoint: 127.0.0.1:%d
service:
  pipelines:
    logs:
      receivers: [otlp, decisionevents]
`, testenv.FreePort(t), testenv.FreePort(t), eventsPort)), filepath.Join(repoRoot, "deploy", "local", "auth.yaml"))

	logs := func(id string) plog.Logs {
		ld := plog.NewLogs()
		lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		lr.Attributes().PutStr(conventions.DecisionID, id)
		lr.Attributes().PutStr(conventions.DecisionWorkflow, "claims-triage")
		lr.Attributes().PutStr(conventions.DecisionLayer, conventions.LayerModel)
		lr.Attributes().PutStr(conventions.DecisionEvent, conventions.EventModelOutput)
		return ld
	}
	post := func(port int, path, mime string, body []byte, auth string) int {
		req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", mime)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	otlpHTTP := func(id, auth string) int {
		body, err := plogotlp.NewExportRequestFromLogs(logs(id)).MarshalProto()
		require.NoError(t, err)
		return post(httpPort, "/v1/logs", "application/x-protobuf", body, auth)
	}
	events := func(id, auth string) int {
		body := `[{"decision.id":"` + id + `","decision.workflow":"claims-triage","decision.layer":"model","decision.event":"model.output"}]`
		return post(eventsPort, "/v1/decision-events", "application/json", []byte(body), auth)
	}
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", grpcPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := plogotlp.NewGRPCClient(conn)
	otlpGRPC := func(id, auth string) codes.Code {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if auth != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", auth)
		}
		_, err := client.Export(ctx, plogotlp.NewExportRequestFromLogs(logs(id)))
		return status.Code(err)
	}

	for _, auth := range []string{"", "Bearer wrong-token"} {
		assert.Equal(t, http.StatusUnauthorized, otlpHTTP("refused-http", auth), "OTLP/HTTP with %q", auth)
		assert.Equal(t, http.StatusUnauthorized, events("refused-events", auth), "decision events with %q", auth)
		assert.Equal(t, codes.Unauthenticated, otlpGRPC("refused-grpc", auth), "OTLP gRPC with %q", auth)
	}
	const good = "Bearer s3cret-token"
	assert.Equal(t, http.StatusOK, otlpHTTP("ok-http", good))
	assert.Equal(t, http.StatusOK, events("ok-events", good))
	assert.Equal(t, codes.OK, otlpGRPC("ok-grpc", good))

	var ids []string
	require.Eventually(t, func() bool {
		ids = ids[:0]
		rows, err := s.Conn().Query(context.Background(), "SELECT decision_id FROM "+db+".events ORDER BY decision_id")
		if err != nil {
			return false
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			_ = rows.Scan(&id)
			ids = append(ids, id)
		}
		return len(ids) >= 3
	}, 30*time.Second, 100*time.Millisecond)
	time.Sleep(500 * time.Millisecond) // anything refused that was stored after all would be in by now
	rows, err := s.Conn().Query(context.Background(), "SELECT decision_id FROM "+db+".events ORDER BY decision_id")
	require.NoError(t, err)
	defer rows.Close()
	ids = ids[:0]
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	assert.Equal(t, []string{"ok-events", "ok-grpc", "ok-http"}, ids, "only what carried the token is stored")
}
