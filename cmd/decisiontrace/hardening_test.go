package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.yaml.in/yaml/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/decisiontrace/decisiontrace/internal/chlocal"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// nested puts under key a map nested depth levels deep, its innermost
// value a string.
func nested(m pcommon.Map, key string, depth int) {
	for i := 1; i < depth; i++ {
		m = m.PutEmptyMap(key)
		key = fmt.Sprintf("level%d", i+1)
	}
	m.PutStr(key, "bottom")
}

// TestIntegrationDeeplyNestedAttributesAreStored: OTLP/HTTP JSON takes
// attribute values nested deeper than protobuf (and so the persistent
// queue) can read back. Such a request is answered 200 only because it is
// stored: the record with a value nested 40 levels deep is stored, that
// value flattened to JSON below the depth the queue takes, and so is the
// valid record beside it.
func TestIntegrationDeeplyNestedAttributesAreStored(t *testing.T) {
	addr := testenv.ClickHouse(t)
	db := testenv.Database(t, addr, "dt_deep")
	s := storeOf(t, addr, db)
	env := collectorConfig(t, t.TempDir(), addr, db, false, "")
	runCollector(t, env.configPath)

	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i, depth := range []int{40, 0} {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		a := lr.Attributes()
		a.PutStr(conventions.DecisionID, fmt.Sprintf("deep-%d", i))
		a.PutStr(conventions.DecisionWorkflow, "claims-triage")
		a.PutStr(conventions.DecisionLayer, conventions.LayerModel)
		a.PutStr(conventions.DecisionEvent, conventions.EventModelOutput)
		if depth > 0 {
			nested(a, "model.input", depth)
		}
	}
	body, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	require.NoError(t, err)
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/logs", env.httpPort), "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	require.Eventually(t, func() bool {
		var n uint64
		return s.Conn().QueryRow(context.Background(), "SELECT count() FROM "+db+".events").Scan(&n) == nil && n == 2
	}, 30*time.Second, 100*time.Millisecond, "both records of the acknowledged request are stored")
	var attrs string
	require.NoError(t, s.Conn().QueryRow(context.Background(), "SELECT toString(attributes) FROM "+db+".events WHERE decision_id = 'deep-0'").Scan(&attrs))
	assert.Contains(t, attrs, "bottom", "the innermost value is kept, in the flattened JSON")
	assert.True(t, strings.Contains(attrs, "level40"), "every level's key is kept: %s", attrs)
}

// TestIntegrationSlowClientsAreCutOff: a client that declares a 2 GB body
// and sends three bytes of it gets an answer and a closed connection once
// read_timeout passes, on OTLP/HTTP and on the decision-events receiver,
// instead of holding the connection as long as it likes.
func TestIntegrationSlowClientsAreCutOff(t *testing.T) {
	dir := t.TempDir()
	otlpPort, eventsPort := testenv.FreePort(t), testenv.FreePort(t)
	cfg := fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
        read_timeout: 2s
  decisionevents:
    endpoint: 127.0.0.1:%d
    read_timeout: 2s
exporters:
  debug:
    verbosity: basic
service:
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [otlp, decisionevents]
      exporters: [debug]
`, otlpPort, eventsPort)
	path := filepath.Join(dir, "collector.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	runCollector(t, path)

	for name, target := range map[string]struct {
		port       int
		path, mime string
	}{
		"OTLP/HTTP":       {otlpPort, "/v1/logs", "application/x-protobuf"},
		"decision events": {eventsPort, "/v1/decision-events", "application/json"},
	} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", target.port))
			require.NoError(t, err)
			defer conn.Close()
			_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: 2000000000\r\n\r\nabc", target.path, target.mime)
			require.NoError(t, err)
			// Far longer than read_timeout; without it the read blocks
			// until this deadline.
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
			_, err = io.ReadAll(conn)
			var ne net.Error
			require.False(t, errors.As(err, &ne) && ne.Timeout(), "the collector still holds the connection after 20 s")
		})
	}
}

// Every HTTP server the shipped configuration opens to clients cuts off a
// slow or stalled request (read_header_timeout, read_timeout); idle
// keep-alive connections close after confighttp's default minute.
func TestShippedHTTPServersCutOffSlowClients(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "local", "collector.yaml"))
	require.NoError(t, err)
	var cfg struct {
		Receivers map[string]map[string]any `yaml:"receivers"`
	}
	require.NoError(t, yaml.Unmarshal(b, &cfg))
	otlpHTTP := cfg.Receivers["otlp"]["protocols"].(map[string]any)["http"].(map[string]any)
	for name, server := range map[string]map[string]any{"otlp http": otlpHTTP, "decisionevents": cfg.Receivers["decisionevents"]} {
		for _, key := range []string{"read_header_timeout", "read_timeout"} {
			v, ok := server[key].(string)
			require.True(t, ok, "%s sets %s", name, key)
			d, err := time.ParseDuration(v)
			require.NoError(t, err)
			assert.Positive(t, d, "%s %s", name, key)
		}
	}
}

// `decisiontrace validate` names a bad contract's problem once, with the
// file, the workflow and the field, and exits 1.
func TestValidateNamesAContractProblemOnce(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("workflow: w\nsources:\n  required:\n    - {name: a, max_age: -5s}\n"), 0o600))
	// The shipped configuration, its contracts replaced, run where
	// demo.sh runs it.
	cmd := exec.Command(os.Args[0])
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), childArgsEnv+"=validate --config deploy/local/collector.yaml", "DECISIONTRACE_CONTRACTS="+bad)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s", out)
	assert.Equal(t, 1, exit.ExitCode())
	problem := bad + ": workflow w: sources.required[0].max_age: required and must be positive"
	assert.Equal(t, 1, strings.Count(string(out), problem), "said once:\n%s", out)
}

// TestIntegrationFullQueueRefusesAndLosesNothing: ClickHouse is down and
// the persistent sending queue (60 events, three requests, here) fills. Then the
// collector refuses, with an answer a client retries on and when (OTLP/HTTP
// 503 with Retry-After, gRPC Unavailable with RetryInfo), instead of
// answering OK and dropping; and every request it did accept is stored, once, when
// ClickHouse is back.
func TestIntegrationFullQueueRefusesAndLosesNothing(t *testing.T) {
	dir := t.TempDir()
	ch := testenv.NewClickHouse(t, filepath.Join(dir, "clickhouse"))
	addr := ch.TCPAddr()
	const db = "dt_full"
	env := writeConfig(t, dir, addr, db)
	runCollector(t, env.configPath, overlay(t, dir, `
exporters:
  decisionstore:
    sending_queue:
      sizer: items
      queue_size: 60
      batch:
        min_size: 20
`))
	const perRequest = 20
	// The schema exists before ClickHouse goes away.
	require.Equal(t, http.StatusOK, postLogs(t, env.httpPort, 0, perRequest).StatusCode)
	assertStoredOnce(t, addr, db, perRequest, "")
	require.NoError(t, ch.Stop())

	accepted := 1
	var refusedHTTP *http.Response
	for batch := 1; batch < 50 && refusedHTTP == nil; batch++ {
		resp := postLogs(t, env.httpPort, batch, perRequest)
		if resp.StatusCode == http.StatusOK {
			accepted++
			continue
		}
		refusedHTTP = resp
	}
	require.NotNil(t, refusedHTTP, "50 requests into a queue of 3 with ClickHouse down: one must be refused")
	assert.Equal(t, http.StatusServiceUnavailable, refusedHTTP.StatusCode)
	assert.Equal(t, "5", refusedHTTP.Header.Get("Retry-After"), "when to retry")
	t.Logf("OTLP/HTTP: %d accepted, then %s", accepted, refusedHTTP.Status)

	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", env.grpcPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	lr.Attributes().PutStr(conventions.DecisionID, "grpc-while-full")
	lr.Attributes().PutStr(conventions.DecisionWorkflow, "claims-triage")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(ld))
	st := status.Convert(err)
	assert.Equal(t, codes.Unavailable, st.Code(), "gRPC while the queue is full: %v", err)
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	require.NotNil(t, retry, "gRPC says when to retry")
	assert.Equal(t, 5*time.Second, retry.GetRetryDelay().AsDuration())

	ch2, err := chlocal.Start(context.Background(), ch.Options())
	require.NoError(t, err)
	t.Cleanup(func() { _ = ch2.Stop() })
	assertStoredOnce(t, addr, db, uint64(accepted*perRequest), "every accepted request, none refused")
}

// TestIntegrationQueueSpaceReturnedAfterADrain: a backlog no longer grows
// the persistent queue's bbolt file (which never gives space back by
// itself): each queued request is a file of its own (spillstorage), removed
// once its events are stored, so the space comes back as the backlog
// drains, and the bbolt file holds only the queue's small keys.
func TestIntegrationQueueSpaceReturnedAfterADrain(t *testing.T) {
	dir := t.TempDir()
	ch := testenv.NewClickHouse(t, filepath.Join(dir, "clickhouse"))
	addr := ch.TCPAddr()
	const db = "dt_spill"
	env := writeConfig(t, dir, addr, db)
	queueDir := filepath.Join(dir, "queue")
	requestsDir := filepath.Join(queueDir, "requests", "exporter_decisionstore__logs")
	runCollector(t, env.configPath)
	const perRequest, requests = 500, 60
	require.Equal(t, http.StatusOK, postLogs(t, env.httpPort, 0, perRequest).StatusCode)
	assertStoredOnce(t, addr, db, perRequest, "")

	require.NoError(t, ch.Stop())
	for batch := 1; batch <= requests; batch++ {
		require.Equal(t, http.StatusOK, postLogs(t, env.httpPort, batch, perRequest).StatusCode)
	}
	backlog := dirSize(t, requestsDir)
	t.Logf("backlog: %.1f MiB of request files, bbolt file %.1f MiB", float64(backlog)/(1<<20), float64(dirSize(t, queueDir))/(1<<20))
	require.Greater(t, backlog, int64(4<<20), "the accepted requests wait in files")
	assert.Less(t, dirSize(t, queueDir), int64(2<<20), "the bbolt file holds keys, not the requests")

	ch2, err := chlocal.Start(context.Background(), ch.Options())
	require.NoError(t, err)
	t.Cleanup(func() { _ = ch2.Stop() })
	assertStoredOnce(t, addr, db, uint64((requests+1)*perRequest), "")
	require.Eventually(t, func() bool { return dirSize(t, requestsDir) == 0 }, 30*time.Second, 200*time.Millisecond,
		"every stored request's file is removed (%d bytes left)", dirSize(t, requestsDir))
}

// dirSize is the bytes of the regular files directly in dir.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var n int64
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
	}
	return n
}

// The shipped persistent queue compacts its file after a drain, in its
// own directory (the container's root filesystem is read-only).
func TestShippedQueueIsCompactedAfterADrain(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "local", "collector.yaml"))
	require.NoError(t, err)
	var cfg struct {
		Extensions struct {
			FileStorage struct {
				Directory  string `yaml:"directory"`
				Compaction struct {
					OnRebound bool   `yaml:"on_rebound"`
					Directory string `yaml:"directory"`
				} `yaml:"compaction"`
			} `yaml:"file_storage"`
		} `yaml:"extensions"`
	}
	require.NoError(t, yaml.Unmarshal(b, &cfg))
	fs := cfg.Extensions.FileStorage
	assert.True(t, fs.Compaction.OnRebound)
	assert.Equal(t, fs.Directory, fs.Compaction.Directory)
}

// overlay writes a configuration merged over a test collector's (as
// deploy/local/auth.yaml is over the shipped one) and returns its path.
func overlay(t *testing.T, dir, content string) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "overlay-*.yaml")
	require.NoError(t, err)
	_, err = f.WriteString(content)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return f.Name()
}
