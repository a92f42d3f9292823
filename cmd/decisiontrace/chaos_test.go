package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/decisiontrace/decisiontrace/internal/amtest"
	"github.com/decisiontrace/decisiontrace/internal/chlocal"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// chaosWorkflow is the workflow of the load's records: it has no contract,
// so the load raises no alert and does not end the incident's silence.
const chaosWorkflow = "chaos-load"

// chaosKey is the attribute every record of the load carries with its own
// key, so that each stored row is traced back to the record that was sent,
// whatever became of its decision ID (an invalid UTF-8 one, say).
const chaosKey = "chaos.key"

// TestIntegrationChaos is the suite's chaos test (issue 12). The real
// collector runs as a child process with a persistent queue, the evaluator
// (contracts from deploy/contracts) and an Alertmanager exporter pointed at
// a real Alertmanager whose webhook records notifications, on a ClickHouse
// of its own. Bounded load runs over OTLP/HTTP (protobuf and JSON), OTLP
// gRPC and the decision-events endpoint, every record with a unique key,
// mixed with hostile records (invalid UTF-8 identifiers, time 0, values
// nested deeper than protobuf reads back, refused events beside valid ones)
// and hostile requests (malformed protobuf, declared lengths that lie,
// bodies and gzip bombs over the size limit, malformed JSON). Meanwhile the
// collector is SIGKILLed and restarted on the same queue five times (all
// up; ClickHouse down with a backlog in the queue; Alertmanager down with
// the alert below pending, then firing and not delivered; all up again),
// ClickHouse is stopped and started again with its data, and so is
// Alertmanager. claims-triage stopped deciding an hour ago: its
// DecisionWorkflowSilent must page, and fires while Alertmanager is down.
//
// Once everything is back: every record of a request a receiver answered
// OK for is stored; nothing is stored that was not sent, or that a receiver
// refused; the counts users see (distinct event IDs, the per-decision
// summary) count each stored record exactly once, whatever the retries and
// the queue's redeliveries stored twice; and the silence was notified,
// firing and never resolved, and nothing else was.
func TestIntegrationChaos(t *testing.T) {
	begin := time.Now()
	elapsed := func() string { return time.Since(begin).Truncate(100 * time.Millisecond).String() }
	dir := t.TempDir()
	ch := testenv.NewClickHouse(t, filepath.Join(dir, "clickhouse"))
	addr := ch.TCPAddr()
	const db = "dt_chaos"
	am, hook := amtest.StartNotifying(t)
	env := collectorConfig(t, dir, hangUpProxy(t, addr), db, true, am.URL())
	eventsPort := testenv.FreePort(t)
	// The decision-events endpoint beside OTLP; firing alerts re-sent every
	// 5 s, so a restarted Alertmanager has them again soon.
	configs := []string{env.configPath, overlay(t, dir, fmt.Sprintf(`
receivers:
  decisionevents:
    endpoint: 127.0.0.1:%d
  alertrules:
    resend_interval: 5s
exporters:
  decisionalertmanager:
    ends_at_ahead: 1m
service:
  pipelines:
    logs:
      receivers: [otlp, decisionevents]
`, eventsPort))}
	logPath := filepath.Join(dir, "collector.log")
	col := startChaosCollector(t, configs, env.httpPort, logPath)
	t.Logf("%s: ClickHouse, Alertmanager and the collector are up (collector log: %s)", elapsed(), logPath)

	// The incident: both contracted workflows decided for 40 minutes, every
	// layer present and every source fresh, and stopped an hour ago, as in
	// TestIntegrationTrafficPauseIsOnePageThroughTheCollector.
	// claims-triage allows 30 minutes of silence (then `for: 1m`),
	// loan-underwriting 3 hours.
	now := time.Now().UTC().Truncate(time.Second)
	before, _ := incident(incidentOptions{start: now.Add(-101 * time.Minute), span: 40 * time.Minute, every: 30 * time.Second, seed: 12,
		staleAt: time.Hour, batch: 5 * time.Minute})
	incidentLogs := plog.NewLogs()
	for _, r := range append(before, queueDepths(now.Add(-101*time.Minute), 40*time.Minute)) {
		r.logs.ResourceLogs().MoveAndAppendTo(incidentLogs.ResourceLogs())
	}
	incidentEvents := incidentLogs.LogRecordCount()
	send(t, env.httpPort, incidentLogs)

	// The load.
	l := newChaosLedger()
	grpcConn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", env.grpcPort),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second}))
	require.NoError(t, err)
	defer grpcConn.Close()
	c := &chaosClient{
		http:       &http.Client{Timeout: 20 * time.Second},
		grpc:       plogotlp.NewGRPCClient(grpcConn),
		otlpURL:    fmt.Sprintf("http://127.0.0.1:%d/v1/logs", env.httpPort),
		otlpAddr:   fmt.Sprintf("127.0.0.1:%d", env.httpPort),
		eventsURL:  fmt.Sprintf("http://127.0.0.1:%d/v1/decision-events", eventsPort),
		ledger:     l,
		retryUntil: 2 * time.Minute,
	}
	load, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	var wg sync.WaitGroup
	for _, g := range []struct {
		every time.Duration
		next  func(seq int) chaosRequest
	}{
		{120 * time.Millisecond, c.otlpProtobuf},
		{200 * time.Millisecond, c.otlpJSON},
		{120 * time.Millisecond, c.otlpGRPC},
		{200 * time.Millisecond, c.decisionEvents},
		{400 * time.Millisecond, c.hostile},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; load.Err() == nil; seq++ {
				c.deliver(g.next(seq))
				select {
				case <-load.Done():
				case <-time.After(g.every):
				}
			}
		}()
	}

	// The chaos, one step after another while the load runs.
	pause := func(d time.Duration) { time.Sleep(d) }
	kill := func(why string) {
		t.Logf("%s: SIGKILL the collector (%s)", elapsed(), why)
		col.kill()
		col = startChaosCollector(t, configs, env.httpPort, logPath)
		t.Logf("%s: collector restarted on the same queue", elapsed())
	}
	pause(4 * time.Second)
	kill("all up")
	pause(3 * time.Second)
	t.Logf("%s: stop ClickHouse", elapsed())
	require.NoError(t, ch.Stop())
	pause(5 * time.Second)
	kill("ClickHouse down, a backlog in the queue")
	pause(3 * time.Second)
	ch, err = chlocal.Start(context.Background(), ch.Options())
	require.NoError(t, err)
	t.Cleanup(func() { _ = ch.Stop() })
	t.Logf("%s: ClickHouse started again with its data", elapsed())
	pause(4 * time.Second)
	t.Logf("%s: stop Alertmanager", elapsed())
	am.Stop()
	pause(3 * time.Second)
	kill("Alertmanager down, the silence's alert pending")
	// The silence fires (its `for` is a minute) while Alertmanager is down;
	// the collector that could not deliver it is killed, its retries with
	// it, before Alertmanager comes back.
	firedAt := chaosWaitForFiring(t, addr, db, "DecisionWorkflowSilent", "claims-triage", 3*time.Minute)
	t.Logf("%s: DecisionWorkflowSilent fired (at %s), Alertmanager down", elapsed(), firedAt.Format(time.RFC3339Nano))
	kill("Alertmanager down, the silence's alert firing and not delivered")
	pause(3 * time.Second)
	am.Restart()
	t.Logf("%s: Alertmanager started again", elapsed())
	pause(4 * time.Second)
	kill("all up again")
	pause(4 * time.Second)
	stopLoad()
	wg.Wait()
	t.Logf("%s: load stopped; %s", elapsed(), l.summary())

	// Every record of an acknowledged request is stored, at last, and so
	// is the incident.
	conn := chaosConn(t, addr)
	ctx := context.Background()
	incidentStored := func() (n uint64) {
		_ = conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM "+db+".events WHERE workflow != ?", chaosWorkflow).Scan(&n)
		return n
	}
	var stored map[string]uint64
	var missing []string
	deadline := time.Now().Add(3 * time.Minute)
	for {
		stored = chaosStored(conn, db)
		missing = l.missingFrom(stored)
		if len(missing) == 0 && incidentStored() >= uint64(incidentEvents) {
			break
		}
		select {
		case <-ch.Done():
			t.Fatalf("ClickHouse exited during the test; the end of its log:\n%s", chaosLogTail(ch.Options().LogPath, 6000))
		default:
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	require.Empty(t, missing, "%d acknowledged records not stored after 3 minutes (of %d acknowledged, %d stored), e.g. %v; collector log: %s",
		len(missing), len(l.acked), len(stored), chaosFirst(missing, 10), logPath)
	t.Logf("%s: every acknowledged record is stored", elapsed())
	// Then until the store is quiet: no insert running and the same rows
	// twice in a row, so that a late redelivery is counted below.
	stored = chaosQuiet(t, conn, db)

	var notSent, refusedStored []string
	rawDuplicates, duplicatesOfOneSend := 0, 0
	for k, n := range stored {
		attempts, sent := l.sent[k]
		if !sent {
			notSent = append(notSent, k)
		}
		if _, ok := l.refused[k]; ok {
			refusedStored = append(refusedStored, fmt.Sprintf("%s (%s)", k, l.refused[k]))
		}
		if n > 1 {
			rawDuplicates++
			if attempts == 1 {
				duplicatesOfOneSend++
			}
		}
	}
	sort.Strings(notSent)
	sort.Strings(refusedStored)
	assert.Empty(t, notSent, "stored, never sent")
	assert.Empty(t, refusedStored, "stored although a receiver refused it")
	t.Logf("%d keys sent, %d acknowledged, %d stored (%d acknowledged by no answer: their answer was lost or refused for now); "+
		"%d keys with more than one row, %d of them sent once (the queue redelivered them in another insert)",
		len(l.sent), len(l.acked), len(stored), len(stored)-len(l.acked), rawDuplicates, duplicatesOfOneSend)

	// The counts users see count every stored record once.
	var distinctEvents, distinctDecisions, rows uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT uniqExact(event_id), uniqExact(decision_id), count() FROM "+db+".events WHERE workflow = ?", chaosWorkflow).
		Scan(&distinctEvents, &distinctDecisions, &rows))
	assert.Equal(t, uint64(len(stored)), distinctEvents, "distinct event IDs of the load")
	assert.Equal(t, uint64(len(stored)), distinctDecisions, "distinct decisions of the load (one event each)")
	var decisions, summed, most uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(), sum(events), max(events) FROM "+db+".decision_summary WHERE workflow = ?", chaosWorkflow).
		Scan(&decisions, &summed, &most))
	assert.Equal(t, uint64(len(stored)), decisions, "decisions in decision_summary")
	assert.Equal(t, uint64(len(stored)), summed, "events counted by decision_summary")
	assert.Equal(t, uint64(1), most, "no decision_summary row counts an event twice")
	t.Logf("users see %d events of %d decisions (%d rows, raw)", distinctEvents, decisions, rows)
	// At the time they happened, or (time 0) when observed or stored:
	// none in 1970, where every TTL would delete it.
	var earliest, latest time.Time
	require.NoError(t, conn.QueryRow(ctx, "SELECT min(time), max(time) FROM "+db+".events WHERE workflow = ?", chaosWorkflow).Scan(&earliest, &latest))
	assert.False(t, earliest.Before(begin.Add(-time.Minute)), "earliest record of the load at %s, the test began at %s", earliest, begin)
	assert.False(t, latest.After(time.Now().Add(time.Minute)), "latest record of the load at %s", latest)

	// The incident is stored, and it paged once everything was back.
	assert.Equal(t, uint64(incidentEvents), incidentStored(), "the incident's events")
	firing := func() []amtest.Notification {
		var out []amtest.Notification
		for _, n := range hook.Notifications(t, "DecisionWorkflowSilent") {
			if n.Status == "firing" && n.Labels["workflow"] == "claims-triage" {
				out = append(out, n)
			}
		}
		return out
	}
	for deadline := time.Now().Add(3 * time.Minute); len(firing()) == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Second)
	}
	var got []string
	for _, n := range hook.Notifications(t, "") {
		got = append(got, fmt.Sprintf("%s %s %s (starts %s)", n.Labels["alertname"], n.Labels["workflow"], n.Status, n.StartsAt.Format(time.RFC3339Nano)))
	}
	t.Logf("%s: notifications: %v", elapsed(), got)
	require.NotEmpty(t, firing(), "claims-triage's silence is paged (collector log: %s)\nAlertmanager log:\n%s", logPath, am.Log())
	for _, n := range hook.Notifications(t, "") {
		assert.Equal(t, "DecisionWorkflowSilent claims-triage firing", n.Labels["alertname"]+" "+n.Labels["workflow"]+" "+n.Status,
			"the only page is the silence, and it never resolves")
	}
	// Paged as the alert that fired, not as a new one: it starts when it
	// fired, however many collectors and Alertmanagers died since.
	for _, n := range firing() {
		assert.True(t, n.StartsAt.Equal(firedAt), "notified with startsAt %s, fired at %s", n.StartsAt, firedAt)
	}

	logText, err := os.ReadFile(logPath)
	require.NoError(t, err)
	assert.NotContains(t, string(logText), "panic:", "collector log: %s", logPath)
	assert.NotContains(t, string(logText), "Dropping data", "collector log: %s", logPath)
	assert.NotContains(t, string(logText), "DATA RACE", "collector log: %s", logPath) // under -race
	select {
	case <-ch.Done():
		t.Errorf("ClickHouse exited during the test; the end of its log:\n%s", chaosLogTail(ch.Options().LogPath, 6000))
	default:
	}
}

// chaosProcess is a collector running as a child process.
type chaosProcess struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// kill SIGKILLs the collector and waits until it is gone.
func (p *chaosProcess) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// startChaosCollector runs the distribution as a child process with the
// configuration files given (each a --config), and waits until its
// OTLP/HTTP port answers.
func startChaosCollector(t *testing.T, configs []string, httpPort int, logPath string) *chaosProcess {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	defer logFile.Close()
	args := make([]string, 0, 2*len(configs))
	for _, c := range configs {
		require.NotContains(t, c, " ", "arguments are passed space-separated")
		args = append(args, "--config", c)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(args, " "))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	p := &chaosProcess{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.kill)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", httpPort), 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("collector exited while starting; see %s", logPath)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector did not open its OTLP/HTTP port in 60 s; see %s", logPath)
		}
	}
}

// chaosAnswerKind is what an answer means for the records of a request.
type chaosAnswerKind int

const (
	chaosOK      chaosAnswerKind = iota // acknowledged: every record not refused individually must be stored
	chaosLater                          // refused for now, or no answer: may be stored, send again
	chaosRefused                        // refused for good: nothing of it may be stored
	chaosUnknown                        // no answer, and not sent again: may be stored
)

// chaosAnswer is a receiver's answer to one attempt.
type chaosAnswer struct {
	kind chaosAnswerKind
	// refused are the records (by index in the request's keys) an OK answer
	// refused one by one, with why: the decision-events endpoint's partial
	// success.
	refused map[int]string
	outcome string // for the log: status code, gRPC code, "connection refused"...
}

// chaosRequest is one request of the load, sent again while its answer
// says later (when retry is set).
type chaosRequest struct {
	kind  string
	keys  []string // the chaosKey of every record in it
	retry bool
	send  func() chaosAnswer
}

// chaosLedger is what the load sent and what the receivers answered, per
// record key.
type chaosLedger struct {
	mu       sync.Mutex
	sent     map[string]int    // key → attempts that carried it
	acked    map[string]string // key → the kind of request answered OK for it
	refused  map[string]string // key → why a receiver refused it for good
	outcomes map[string]int    // "kind: outcome" → answers
}

func newChaosLedger() *chaosLedger {
	return &chaosLedger{sent: map[string]int{}, acked: map[string]string{}, refused: map[string]string{}, outcomes: map[string]int{}}
}

func (l *chaosLedger) answered(r chaosRequest, a chaosAnswer, attempt int, giveUp bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range r.keys {
		l.sent[k]++
	}
	l.outcomes[r.kind+": "+a.outcome]++
	switch a.kind {
	case chaosOK:
		for i, k := range r.keys {
			if why, ok := a.refused[i]; ok {
				// Validation refuses it on every attempt.
				l.refused[k] = r.kind + ": " + why
				continue
			}
			l.acked[k] = r.kind
		}
	case chaosRefused:
		// An earlier attempt without an answer may have been taken.
		if attempt == 1 {
			for _, k := range r.keys {
				l.refused[k] = r.kind + ": " + a.outcome
			}
		}
	case chaosLater:
		if giveUp {
			l.outcomes[r.kind+": gave up"]++
		}
	}
}

func (l *chaosLedger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for k, n := range l.outcomes {
		out = append(out, fmt.Sprintf("%s ×%d", k, n))
	}
	sort.Strings(out)
	return fmt.Sprintf("%d records sent, %d acknowledged, %d refused; answers:\n\t%s", len(l.sent), len(l.acked), len(l.refused), strings.Join(out, "\n\t"))
}

// missingFrom are the acknowledged keys not in stored, with the kind of
// request that carried them, sorted.
func (l *chaosLedger) missingFrom(stored map[string]uint64) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for k, kind := range l.acked {
		if stored[k] == 0 {
			out = append(out, k+" ("+kind+")")
		}
	}
	sort.Strings(out)
	return out
}

func chaosFirst(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// chaosClient sends the load's requests to one collector's receivers.
type chaosClient struct {
	http       *http.Client
	grpc       plogotlp.GRPCClient
	otlpURL    string
	otlpAddr   string // host:port of OTLP/HTTP, for requests written by hand
	eventsURL  string
	ledger     *chaosLedger
	retryUntil time.Duration // how long a request is sent again while the answer is "later"
}

func (c *chaosClient) deliver(r chaosRequest) {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		a := r.send()
		giveUp := a.kind == chaosLater && (!r.retry || time.Since(start) > c.retryUntil)
		c.ledger.answered(r, a, attempt, giveUp)
		if a.kind != chaosLater || giveUp {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// post sends one HTTP request; a 200's body is returned for the caller.
func (c *chaosClient) post(url, contentType, encoding string, body []byte) (chaosAnswer, []byte) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return chaosAnswer{kind: chaosLater, outcome: chaosTransportOutcome(err)}, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return chaosAnswer{kind: chaosLater, outcome: fmt.Sprintf("%d, then %s", resp.StatusCode, chaosTransportOutcome(err))}, nil
	}
	return chaosAnswer{kind: chaosHTTPAnswer(resp.StatusCode), outcome: fmt.Sprint(resp.StatusCode)}, b
}

func chaosHTTPAnswer(code int) chaosAnswerKind {
	switch {
	case code == http.StatusOK:
		return chaosOK
	case code == http.StatusServiceUnavailable, code == http.StatusTooManyRequests, code >= 500:
		return chaosLater
	default:
		return chaosRefused
	}
}

func chaosTransportOutcome(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	default:
		return "connection lost"
	}
}

// chaosLogs is an empty request of one resource and scope.
func chaosLogs() (plog.Logs, plog.LogRecordSlice) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "chaos")
	return ld, rl.ScopeLogs().AppendEmpty().LogRecords()
}

// chaosRecord appends a valid model output whose decision ID, event ID and
// chaosKey are key, at the current time.
func chaosRecord(lrs plog.LogRecordSlice, key string) plog.LogRecord {
	lr := lrs.AppendEmpty()
	now := pcommon.NewTimestampFromTime(time.Now())
	lr.SetTimestamp(now)
	lr.SetObservedTimestamp(now)
	a := lr.Attributes()
	a.PutStr(conventions.DecisionID, key)
	a.PutStr(conventions.DecisionEventID, key)
	a.PutStr(conventions.DecisionWorkflow, chaosWorkflow)
	a.PutStr(conventions.DecisionLayer, conventions.LayerModel)
	a.PutStr(conventions.DecisionEvent, conventions.EventModelOutput)
	a.PutStr(conventions.ModelName, "chaos")
	a.PutDouble(conventions.ModelConfidence, 0.8)
	a.PutStr(chaosKey, key)
	return lr
}

// chaosRecords appends n valid records keyed prefix-i.
func chaosRecords(lrs plog.LogRecordSlice, prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s-%d", prefix, i)
		chaosRecord(lrs, keys[i])
	}
	return keys
}

// chaosOdd adds the odd record of which: 0, one with time 0 (timestamp
// and observed timestamp); 1, one whose decision ID holds the invalid
// UTF-8 bad; else none. It returns the keys it added.
func chaosOdd(lrs plog.LogRecordSlice, prefix string, which int, bad string) []string {
	switch which {
	case 0:
		k := prefix + "-time0"
		lr := chaosRecord(lrs, k)
		lr.SetTimestamp(0)
		lr.SetObservedTimestamp(0)
		return []string{k}
	case 1:
		k := prefix + "-utf8"
		chaosRecord(lrs, k).Attributes().PutStr(conventions.DecisionID, "chaos-"+bad+"-"+k)
		return []string{k}
	}
	return nil
}

func chaosProtobuf(ld plog.Logs) []byte {
	b, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	if err != nil {
		panic(err)
	}
	return b
}

// otlpProtobuf: 8 valid records, and in some requests beside them one
// with time 0 (timestamp and observed timestamp) or one whose decision ID
// is invalid UTF-8. Both are records like any other: stored if answered OK.
func (c *chaosClient) otlpProtobuf(seq int) chaosRequest {
	ld, lrs := chaosLogs()
	prefix := fmt.Sprintf("hp%d", seq)
	keys := append(chaosRecords(lrs, prefix, 8), chaosOdd(lrs, prefix, seq%3, "\xff\xfe")...)
	body := chaosProtobuf(ld)
	return chaosRequest{kind: "otlp/http protobuf", keys: keys, retry: true, send: func() chaosAnswer {
		a, _ := c.post(c.otlpURL, "application/x-protobuf", "", body)
		return a
	}}
}

// otlpJSON: 6 valid records, and in some requests beside them one with a
// value nested 40 levels deep (deeper than protobuf, and so the persistent
// queue, reads back), or 3,000.
func (c *chaosClient) otlpJSON(seq int) chaosRequest {
	ld, lrs := chaosLogs()
	keys := chaosRecords(lrs, fmt.Sprintf("hj%d", seq), 6)
	depth := 0
	switch {
	case seq%10 == 5:
		depth = 3000
	case seq%2 == 0:
		depth = 40
	}
	if depth > 0 {
		k := fmt.Sprintf("hj%d-deep%d", seq, depth)
		nested(chaosRecord(lrs, k).Attributes(), "model.input", depth)
		keys = append(keys, k)
	}
	body, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	if err != nil {
		panic(err)
	}
	return chaosRequest{kind: "otlp/http json", keys: keys, retry: true, send: func() chaosAnswer {
		a, _ := c.post(c.otlpURL, "application/json", "", body)
		return a
	}}
}

// otlpGRPC: 8 valid records, and in some requests one with time 0 or an
// invalid UTF-8 decision ID.
func (c *chaosClient) otlpGRPC(seq int) chaosRequest {
	ld, lrs := chaosLogs()
	prefix := fmt.Sprintf("g%d", seq)
	keys := append(chaosRecords(lrs, prefix, 8), chaosOdd(lrs, prefix, seq%4, "\xc3\x28")...)
	req := plogotlp.NewExportRequestFromLogs(ld)
	return chaosRequest{kind: "otlp/grpc", keys: keys, retry: true, send: func() chaosAnswer {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := c.grpc.Export(ctx, req)
		code := status.Code(err)
		switch code {
		case codes.OK:
			return chaosAnswer{kind: chaosOK, outcome: code.String()}
		case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Aborted:
			return chaosAnswer{kind: chaosLater, outcome: code.String()}
		default:
			return chaosAnswer{kind: chaosRefused, outcome: code.String()}
		}
	}}
}

// chaosEvent is a valid event of the decision-events endpoint.
func chaosEvent(key string) []byte {
	b, err := json.Marshal(map[string]any{
		conventions.DecisionID: key, conventions.DecisionEventID: key, conventions.DecisionWorkflow: chaosWorkflow,
		conventions.DecisionLayer: conventions.LayerModel, conventions.DecisionEvent: conventions.EventModelOutput,
		conventions.ModelName: "chaos", conventions.ModelConfidence: 0.8,
		"attributes": map[string]any{chaosKey: key},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// chaosHostileEvent is an event the decision-events endpoint must refuse,
// or (time 0) may take: invalid UTF-8 in its decision ID, attributes
// nested deeper than 8 levels, an unknown key, or time 0.
func chaosHostileEvent(key string, which int) []byte {
	var m map[string]any
	if err := json.Unmarshal(chaosEvent(key), &m); err != nil {
		panic(err)
	}
	switch which {
	case 0:
		b, _ := json.Marshal(m)
		return bytes.Replace(b, []byte(`"`+conventions.DecisionID+`":"`), []byte(`"`+conventions.DecisionID+`":"bad-`+"\xff\xfe"), 1)
	case 1:
		deep := map[string]any{"bottom": true}
		for i := 0; i < 12; i++ {
			deep = map[string]any{fmt.Sprintf("level%d", i): deep}
		}
		m["attributes"].(map[string]any)["deep"] = deep
	case 2:
		m["model.confidance"] = 0.9
	case 3:
		m["time"] = 0
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// chaosEventsAnswer reads the decision-events endpoint's answer: on 200,
// which events it refused.
func chaosEventsAnswer(a chaosAnswer, body []byte) chaosAnswer {
	if a.kind != chaosOK {
		return a
	}
	var res struct {
		Accepted, Refused int
		Errors            []struct {
			Index        int
			Path, Reason string
		}
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return chaosAnswer{kind: chaosUnknown, outcome: "200 with an answer that does not decode: " + err.Error()}
	}
	a.refused = map[int]string{}
	for _, e := range res.Errors {
		a.refused[e.Index] = e.Path + ": " + e.Reason
	}
	if res.Refused > 0 {
		a.outcome = "200 partial"
	}
	return a
}

// decisionEvents: 6 valid events and a hostile one in the same request.
func (c *chaosClient) decisionEvents(seq int) chaosRequest {
	var events [][]byte
	var keys []string
	for i := 0; i < 6; i++ {
		k := fmt.Sprintf("de%d-%d", seq, i)
		keys = append(keys, k)
		events = append(events, chaosEvent(k))
	}
	k := fmt.Sprintf("de%d-hostile%d", seq, seq%4)
	keys = append(keys, k)
	events = append(events, chaosHostileEvent(k, seq%4))
	body := append(append([]byte("["), bytes.Join(events, []byte(","))...), ']')
	return chaosRequest{kind: "decision events", keys: keys, retry: true, send: func() chaosAnswer {
		return chaosEventsAnswer(c.post(c.eventsURL, "application/json", "", body))
	}}
}

// hostile is a request that is hostile as a whole: malformed protobuf, a
// body shorter than its declared length, protobuf cut inside a record, a
// body or a gzip bomb over the size limit, malformed JSON, a JSON request
// nested 20,000 levels deep (beside a valid record), a decision-events
// request whose every event is invalid, a wrong content type.
func (c *chaosClient) hostile(seq int) chaosRequest {
	prefix := fmt.Sprintf("x%d", seq)
	post := func(kind, url, contentType, encoding string, body []byte, keys []string) chaosRequest {
		return chaosRequest{kind: kind, keys: keys, retry: true, send: func() chaosAnswer {
			a, _ := c.post(url, contentType, encoding, body)
			return a
		}}
	}
	switch seq % 8 {
	case 0:
		return post("hostile: protobuf length lie", c.otlpURL, "application/x-protobuf", "", []byte("\x0a\xff\xff\xff\xff\x0fgarbage"), nil)
	case 1:
		ld, lrs := chaosLogs()
		keys := chaosRecords(lrs, prefix, 3)
		body := chaosProtobuf(ld)
		return chaosRequest{kind: "hostile: body shorter than Content-Length", keys: keys, send: func() chaosAnswer {
			return c.shortBody(body, len(body)+100)
		}}
	case 2:
		ld, lrs := chaosLogs()
		keys := chaosRecords(lrs, prefix, 3)
		if seq/8 < 2 {
			lrs.At(0).Attributes().PutStr("pad", strings.Repeat("x", 21<<20))
			return post("hostile: 21 MiB body", c.otlpURL, "application/x-protobuf", "", chaosProtobuf(ld), keys)
		}
		body := chaosProtobuf(ld)
		return post("hostile: protobuf cut inside a record", c.otlpURL, "application/x-protobuf", "", body[:len(body)-7], keys)
	case 3:
		var gz bytes.Buffer
		w := gzip.NewWriter(&gz)
		if seq/8 < 2 {
			_, _ = w.Write(make([]byte, 64<<20))
		} else {
			_, _ = w.Write([]byte("\x0a\xff\xff\xff\xff\x0fgarbage"))
		}
		_ = w.Close()
		b := gz.Bytes()
		if seq/8 >= 4 {
			b = b[:len(b)/2] // truncated gzip
		}
		return post("hostile: gzip", c.otlpURL, "application/x-protobuf", "gzip", b, nil)
	case 4:
		return post("hostile: malformed JSON", c.otlpURL, "application/json", "", []byte(`{"resourceLogs": [ {`), nil)
	case 5:
		ld, lrs := chaosLogs()
		keys := chaosRecords(lrs, prefix, 1)
		k := prefix + "-deep20000"
		nested(chaosRecord(lrs, k).Attributes(), "model.input", 20000)
		body, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
		if err != nil {
			panic(err)
		}
		return post("hostile: JSON nested 20000 deep", c.otlpURL, "application/json", "", body, append(keys, k))
	case 6:
		var events [][]byte
		var keys []string
		for i := 0; i < 3; i++ {
			k := fmt.Sprintf("%s-%d", prefix, i)
			keys = append(keys, k)
			events = append(events, chaosHostileEvent(k, i))
		}
		body := append(append([]byte("["), bytes.Join(events, []byte(","))...), ']')
		return chaosRequest{kind: "hostile: decision events all invalid", keys: keys, retry: true, send: func() chaosAnswer {
			return chaosEventsAnswer(c.post(c.eventsURL, "application/json", "", body))
		}}
	default:
		ld, lrs := chaosLogs()
		keys := chaosRecords(lrs, prefix, 2)
		return post("hostile: wrong content type", c.otlpURL, "text/plain", "", chaosProtobuf(ld), keys)
	}
}

// shortBody posts body to OTLP/HTTP declaring length bytes, and closes its
// side of the connection once body is sent.
func (c *chaosClient) shortBody(body []byte, length int) chaosAnswer {
	conn, err := net.DialTimeout("tcp", c.otlpAddr, 2*time.Second)
	if err != nil {
		return chaosAnswer{kind: chaosUnknown, outcome: chaosTransportOutcome(err)}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	_, err = fmt.Fprintf(conn, "POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: %d\r\n\r\n%s", length, body)
	if err == nil {
		err = conn.(*net.TCPConn).CloseWrite()
	}
	if err != nil {
		return chaosAnswer{kind: chaosUnknown, outcome: chaosTransportOutcome(err)}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return chaosAnswer{kind: chaosUnknown, outcome: chaosTransportOutcome(err)}
	}
	_ = resp.Body.Close()
	k := chaosHTTPAnswer(resp.StatusCode)
	if k == chaosLater {
		k = chaosUnknown
	}
	return chaosAnswer{kind: k, outcome: fmt.Sprint(resp.StatusCode)}
}

// chaosConn is a connection to the test's ClickHouse. Unlike
// testenv.Conn's, it gives up dialing after 2 s: this ClickHouse is stopped
// during the test.
func chaosConn(t *testing.T, addr string) clickhouse.Conn {
	t.Helper()
	user, pass := testenv.ClickHouseAuth()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Username: user, Password: pass}, DialTimeout: 2 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// chaosStored is the number of rows stored per chaosKey; none while the
// store does not answer.
func chaosStored(conn clickhouse.Conn, db string) map[string]uint64 {
	out := map[string]uint64{}
	rows, err := conn.Query(context.Background(), "SELECT attributes['"+chaosKey+"'] AS k, count() FROM "+db+".events WHERE k != '' GROUP BY k")
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n uint64
		if rows.Scan(&k, &n) != nil {
			return map[string]uint64{}
		}
		out[k] = n
	}
	if rows.Err() != nil {
		return map[string]uint64{}
	}
	return out
}

// chaosQuiet waits until no insert into the test's events is running and
// two reads a second apart find the same rows, so that a redelivery still
// in the queue is stored before the counts are read; it returns the rows
// per key.
func chaosQuiet(t *testing.T, conn clickhouse.Conn, db string) map[string]uint64 {
	t.Helper()
	total := func(m map[string]uint64) (n uint64) {
		for _, v := range m {
			n += v
		}
		return n
	}
	last := chaosStored(conn, db)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		time.Sleep(time.Second)
		var inserting uint64
		err := conn.QueryRow(context.Background(), "SELECT count() FROM system.processes WHERE query_kind = 'Insert' AND position(query, ?) > 0", db+".events").Scan(&inserting)
		now := chaosStored(conn, db)
		if err == nil && inserting == 0 && len(now) == len(last) && total(now) == total(last) {
			return now
		}
		last = now
	}
	t.Logf("the store did not go quiet within a minute; counting what it holds")
	return last
}

// chaosLogTail is the last n bytes of the file at path, for a failure
// message (the test's directory is gone once it ends).
func chaosLogTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// chaosWaitForFiring waits until the store has the alert of the workflow
// firing, and returns when it fired (alert_state's fired_at).
func chaosWaitForFiring(t *testing.T, addr, db, alertname, workflow string, within time.Duration) time.Time {
	t.Helper()
	conn := chaosConn(t, addr)
	deadline := time.Now().Add(within)
	for {
		var firedAt time.Time
		err := conn.QueryRow(context.Background(), "SELECT fired_at FROM "+db+".alert_state FINAL WHERE state = 'firing' AND is_deleted = 0 AND fingerprint IN "+
			"(SELECT fingerprint FROM "+db+".alert_history WHERE alertname = ? AND labels['workflow'] = ?)",
			alertname, workflow).Scan(&firedAt)
		if err == nil {
			return firedAt.UTC()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s for %s not firing in the store after %s: %v", alertname, workflow, within, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
