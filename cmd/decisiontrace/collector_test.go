package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/decisiontrace/decisiontrace/internal/chlocal"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// childConfigEnv makes the test binary run as the collector itself, so a
// test can kill it the way a crash would (SIGKILL), which an in-process
// collector cannot show.
const childConfigEnv = "DECISIONTRACE_TEST_COLLECTOR_CONFIG"

// childArgsEnv makes the test binary run the distribution's main with
// these arguments (space-separated), as the built command would.
const childArgsEnv = "DECISIONTRACE_TEST_ARGS"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childConfigEnv); cfg != "" {
		os.Args = []string{"decisiontrace", "--config", cfg}
		main()
		os.Exit(0)
	}
	if args := os.Getenv(childArgsEnv); args != "" {
		os.Args = append([]string{"decisiontrace"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	testenv.Main(m)
}

func TestShippedConfigsValidate(t *testing.T) {
	// Shipped configurations name contracts relative to the repository
	// root, where demo.sh starts the collector.
	t.Chdir(filepath.Join("..", ".."))
	files, err := filepath.Glob(filepath.Join("deploy", "*", "collector*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			cmd := otelcol.NewCommand(settings())
			cmd.SetArgs([]string{"validate", "--config", f})
			cmd.SetOut(&bytes.Buffer{})
			require.NoError(t, cmd.Execute())
		})
	}
	// Authentication on ingest is the local configuration with an overlay.
	t.Run("deploy/local/auth.yaml over deploy/local/collector.yaml", func(t *testing.T) {
		t.Setenv("DECISIONTRACE_TOKEN_FILE", filepath.Join(t.TempDir(), "token"))
		cmd := otelcol.NewCommand(settings())
		cmd.SetArgs([]string{"validate", "--config", "deploy/local/collector.yaml", "--config", "deploy/local/auth.yaml"})
		cmd.SetOut(&bytes.Buffer{})
		require.NoError(t, cmd.Execute())
	})
	// The latency probe's collector is the local one with an overlay.
	t.Run("deploy/local/latency/collector.yaml over deploy/local/collector.yaml", func(t *testing.T) {
		cmd := otelcol.NewCommand(settings())
		cmd.SetArgs([]string{"validate", "--config", "deploy/local/collector.yaml", "--config", "deploy/local/latency/collector.yaml"})
		cmd.SetOut(&bytes.Buffer{})
		require.NoError(t, cmd.Execute())
	})
}

type collectorEnv struct {
	configPath         string
	httpPort, grpcPort int
}

func writeConfig(t *testing.T, dir, clickhouseAddr, db string) collectorEnv {
	t.Helper()
	return collectorConfig(t, dir, clickhouseAddr, db, false, "")
}

// collectorConfig writes the configuration of a test's collector: OTLP in,
// the decision processor, the decision store with a persistent queue
// stored as the shipped configuration stores it (file_storage, and
// spillstorage for the requests). With
// evaluator, also the rule evaluator (contracts from deploy/contracts,
// evaluated and refreshing verdicts every second) with its alerts to the
// Alertmanager at alertmanager (a URL), or to the debug exporter.
func collectorConfig(t *testing.T, dir, clickhouseAddr, db string, evaluator bool, alertmanager string) collectorEnv {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	env := collectorEnv{configPath: filepath.Join(dir, "collector.yaml"), httpPort: testenv.FreePort(t), grpcPort: testenv.FreePort(t)}
	receivers, exporters, alerts := "", "", ""
	if evaluator {
		receivers = fmt.Sprintf(`
  alertrules:
    endpoint: clickhouse://%[1]s
    database: %[2]s
    contracts: ["%[3]s/deploy/contracts/*.yaml"]
    contract_rules_interval: 1s
    verdict_refresh_interval: 1s
    resend_interval: 1m`, clickhouseAddr, db, repoRoot)
		exporters = `
  debug:
    verbosity: basic`
		alerts = `
    logs/alerts:
      receivers: [alertrules]
      exporters: [debug]`
		if alertmanager != "" {
			exporters = fmt.Sprintf(`
  decisionalertmanager:
    endpoints: [%q]`, alertmanager)
			alerts = strings.Replace(alerts, "[debug]", "[decisionalertmanager]", 1)
		}
	}
	cfg := fmt.Sprintf(`
extensions:
  file_storage:
    directory: %[1]s
    create_directory: true
  spillstorage:
    storage: file_storage
    directory: %[1]s/requests
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%[2]d
      http:
        endpoint: 127.0.0.1:%[3]d%[6]s
processors:
  decision: {}
exporters:%[7]s
  decisionstore:
    endpoint: clickhouse://%[4]s
    database: %[5]s
    ttl: 0s
    connect_timeout: 500ms
    timeout: 5s
    retry_on_failure:
      enabled: true
      initial_interval: 100ms
      max_interval: 500ms
      max_elapsed_time: 0s
    sending_queue:
      enabled: true
      storage: spillstorage
      num_consumers: 2
      batch:
        flush_timeout: 100ms
service:
  extensions: [file_storage, spillstorage]
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [otlp]
      processors: [decision]
      exporters: [decisionstore]%[8]s
`, filepath.Join(dir, "queue"), env.grpcPort, env.httpPort, clickhouseAddr, db, receivers, exporters, alerts)
	require.NoError(t, os.WriteFile(env.configPath, []byte(cfg), 0o600))
	return env
}

// runCollector starts the distribution in-process, as `decisiontrace
// --config FILE [--config OVERLAY...]` would, and returns a function that
// shuts it down.
func runCollector(t *testing.T, configPath string, overlays ...string) (stop func()) {
	t.Helper()
	set := settings()
	set.ConfigProviderSettings.ResolverSettings.URIs = []string{"file:" + configPath}
	for _, o := range overlays {
		set.ConfigProviderSettings.ResolverSettings.URIs = append(set.ConfigProviderSettings.ResolverSettings.URIs, "file:"+o)
	}
	col, err := otelcol.NewCollector(set)
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	runErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		runErr <- col.Run(context.Background())
	}()
	// Polled here, not in require.Eventually: its condition runs on
	// another goroutine, where a failed start could not end the test.
	for deadline := time.Now().Add(30 * time.Second); col.GetState() != otelcol.StateRunning; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-runErr:
			t.Fatalf("collector stopped while starting: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("collector not running after 30 s")
		}
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			col.Shutdown()
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return stop
}

// postLogs sends one OTLP/HTTP protobuf request of n decision events.
func postLogs(t *testing.T, port int, batch, n int) *http.Response {
	t.Helper()
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "outage-test")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	now := time.Now()
	for i := 0; i < n; i++ {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
		a := lr.Attributes()
		a.PutStr(conventions.DecisionID, fmt.Sprintf("outage-%d-%d", batch, i))
		a.PutStr(conventions.DecisionWorkflow, "claims-triage")
		a.PutStr(conventions.DecisionLayer, conventions.LayerModel)
		a.PutStr(conventions.DecisionEvent, conventions.EventModelOutput)
		a.PutDouble(conventions.ModelConfidence, 0.9)
	}
	body, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	require.NoError(t, err)
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/logs", port), "application/x-protobuf", bytes.NewReader(body))
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp
}

func storedCounts(t *testing.T, addr, db string) (distinct, raw uint64) {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: time.Second})
	require.NoError(t, err)
	defer conn.Close()
	ctx := context.Background()
	if err := conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM "+db+".events").Scan(&distinct); err != nil {
		return 0, 0
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".events").Scan(&raw); err != nil {
		return 0, 0
	}
	return distinct, raw
}

// TestIntegrationOutageAndRestartLoseNothing is the promise to on-call: data
// the collector accepted while ClickHouse was down waits in the persistent
// queue, survives a collector restart, and lands exactly once when
// ClickHouse returns.
func TestIntegrationOutageAndRestartLoseNothing(t *testing.T) {
	dir := t.TempDir()
	ch := testenv.NewClickHouse(t, filepath.Join(dir, "clickhouse"))
	addr := ch.TCPAddr()
	const db = "dt_outage"
	env := writeConfig(t, dir, addr, db)
	const perRequest, requests = 50, 10

	stop := runCollector(t, env.configPath)
	for b := 0; b < requests; b++ {
		require.Equal(t, http.StatusOK, postLogs(t, env.httpPort, b, perRequest).StatusCode)
	}
	require.Eventually(t, func() bool {
		f, _ := storedCounts(t, addr, db)
		return f == perRequest*requests
	}, 60*time.Second, 100*time.Millisecond, "first half lands while ClickHouse is up")

	require.NoError(t, ch.Stop())
	for b := requests; b < 2*requests; b++ {
		resp := postLogs(t, env.httpPort, b, perRequest)
		require.Equal(t, http.StatusOK, resp.StatusCode, "accepted into the persistent queue while ClickHouse is down")
	}
	// Let the exporter try (and fail) at least once, so that requests are in
	// flight, not only queued, when the collector stops.
	time.Sleep(time.Second)
	stop()

	runCollector(t, env.configPath)
	ch2, err := chlocal.Start(context.Background(), ch.Options())
	require.NoError(t, err)
	t.Cleanup(func() { _ = ch2.Stop() })

	assertStoredOnce(t, addr, db, 2*requests*perRequest, "")
}

func TestIntegrationMalformedOTLPGets400(t *testing.T) {
	dir := t.TempDir()
	env := writeConfig(t, dir, testenv.ClickHouse(t), "dt_malformed")
	runCollector(t, env.configPath)
	url := fmt.Sprintf("http://127.0.0.1:%d/v1/logs", env.httpPort)
	for _, tc := range []struct{ contentType, body string }{
		{"application/x-protobuf", "\x0a\xff\xff\xff\xff\x0fgarbage"},
		{"application/json", `{"resourceLogs": [ {`},
	} {
		resp, err := http.Post(url, tc.contentType, strings.NewReader(tc.body))
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, tc.contentType)
	}
	// And the pipeline carries on.
	assert.Equal(t, http.StatusOK, postLogs(t, env.httpPort, 0, 3).StatusCode)
	require.Eventually(t, func() bool {
		f, _ := storedCounts(t, testenv.ClickHouse(t), "dt_malformed")
		return f == 3
	}, 30*time.Second, 100*time.Millisecond)
}

// startCollectorProcess runs the collector as a child process and waits
// until its OTLP/HTTP port answers.
func startCollectorProcess(t *testing.T, env collectorEnv, logPath string) *exec.Cmd {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	t.Cleanup(func() { _ = logFile.Close() })
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childConfigEnv+"="+env.configPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", env.httpPort), 100*time.Millisecond)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}, 30*time.Second, 50*time.Millisecond, "collector did not open its OTLP/HTTP port; see %s", logPath)
	return cmd
}

// TestIntegrationCrashLosesNothingAcknowledged: what the receiver answered
// 200 for is on disk, so a collector killed with SIGKILL while ClickHouse
// is down still delivers all of it, once, after both come back.
func TestIntegrationCrashLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	ch := testenv.NewClickHouse(t, filepath.Join(dir, "clickhouse"))
	addr := ch.TCPAddr()
	const db = "dt_crash"
	env := writeConfig(t, dir, addr, db)
	require.NoError(t, ch.Stop())
	logPath := filepath.Join(dir, "collector.log")

	first := startCollectorProcess(t, env, logPath)
	const perRequest, requests = 40, 25
	for b := 0; b < requests; b++ {
		resp := postLogs(t, env.httpPort, b, perRequest)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()

	startCollectorProcess(t, env, logPath)
	ch2, err := chlocal.Start(context.Background(), ch.Options())
	require.NoError(t, err)
	t.Cleanup(func() { _ = ch2.Stop() })

	assertStoredOnce(t, addr, db, requests*perRequest, "collector log: "+logPath)
}

// hangUpProxy forwards TCP connections to upstream (the test's
// ClickHouse) and returns its own address, for a collector the test will
// SIGKILL. The embedded engine aborted in TestIntegrationChaos ("Terminate called for uncaught exception":
// NETWORK_ERROR, connection reset by peer) when a SIGKILLed collector's
// connections were reset under it, which a real ClickHouse server logs and
// survives. The proxy ends a connection whose collector died as a client
// that hangs up does: it closes its sending side towards ClickHouse and
// reads what ClickHouse still sends until ClickHouse closes. While
// ClickHouse is down, it closes the connections it accepts, as a load
// balancer in front of ClickHouse would.
func hangUpProxy(t *testing.T, upstream string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer client.Close()
				up, err := net.DialTimeout("tcp", upstream, 2*time.Second)
				if err != nil {
					return
				}
				defer up.Close()
				done := make(chan struct{})
				go func() {
					defer close(done)
					_, _ = io.Copy(client, up)
					// The collector is gone: ClickHouse's answer is read to
					// its end, not refused.
					_, _ = io.Copy(io.Discard, up)
					_ = client.Close()
				}()
				_, _ = io.Copy(up, client)
				_ = up.(*net.TCPConn).CloseWrite()
				_ = up.SetReadDeadline(time.Now().Add(30 * time.Second))
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

// assertStoredOnce waits until every event of the test is queryable, then
// checks that none was stored twice, even before merges.
func assertStoredOnce(t *testing.T, addr, db string, want uint64, hint string) {
	t.Helper()
	var distinct, raw uint64
	require.Eventually(t, func() bool {
		distinct, raw = storedCounts(t, addr, db)
		return distinct == want
	}, 90*time.Second, 200*time.Millisecond, "stored %d of %d events; %s", distinct, want, hint)
	// Give a late duplicate the chance to show up before judging.
	time.Sleep(time.Second)
	distinct, raw = storedCounts(t, addr, db)
	assert.Equal(t, want, distinct)
	assert.Equal(t, want, raw, "no event stored twice")
}

// A configuration written before the Alertmanager exporter's type was
// renamed (alertmanager, now decisionalertmanager) still loads in this
// distribution.
func TestOldAlertmanagerExporterTypeStillLoads(t *testing.T) {
	t.Chdir(filepath.Join("..", ".."))
	b, err := os.ReadFile(filepath.Join("deploy", "local", "collector.yaml"))
	require.NoError(t, err)
	old := strings.ReplaceAll(string(b), "decisionalertmanager", "alertmanager")
	require.NotContains(t, old, "decisionalertmanager")
	path := filepath.Join(t.TempDir(), "collector-0.2.yaml")
	require.NoError(t, os.WriteFile(path, []byte(old), 0o600))
	cmd := otelcol.NewCommand(settings())
	cmd.SetArgs([]string{"validate", "--config", path})
	cmd.SetOut(&bytes.Buffer{})
	require.NoError(t, cmd.Execute())
}
