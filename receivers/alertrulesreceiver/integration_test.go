package alertrulesreceiver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/store"
	"github.com/decisiontrace/decisiontrace/internal/storetest"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
	"github.com/decisiontrace/decisiontrace/receivers/alertrulesreceiver/internal/metadata"
)

type rig struct {
	*storetest.Store
	dir string
	tel *componenttest.Telemetry // of the last receiver
}

func newRig(t *testing.T) *rig {
	t.Helper()
	return &rig{Store: storetest.New(t, "dt_alerts"), dir: t.TempDir()}
}

// counter is the sum of an Int64 counter's data points.
func (r *rig) counter(t *testing.T, name string) int64 {
	t.Helper()
	m, err := r.tel.GetMetric(name)
	if err != nil {
		return 0
	}
	var n int64
	if d, ok := m.Data.(metricdata.Sum[int64]); ok {
		for _, dp := range d.DataPoints {
			n += dp.Value
		}
	}
	return n
}

// gauge is the value of a gauge's data point with exactly attrs.
func (r *rig) gauge(t *testing.T, name string, attrs ...attribute.KeyValue) (float64, bool) {
	t.Helper()
	m, err := r.tel.GetMetric(name)
	if err != nil {
		return 0, false
	}
	want := attribute.NewSet(attrs...)
	switch d := m.Data.(type) {
	case metricdata.Gauge[int64]:
		for _, dp := range d.DataPoints {
			if dp.Attributes.Equals(&want) {
				return float64(dp.Value), true
			}
		}
	case metricdata.Gauge[float64]:
		for _, dp := range d.DataPoints {
			if dp.Attributes.Equals(&want) {
				return dp.Value, true
			}
		}
	}
	return 0, false
}

func (r *rig) depth(t *testing.T, depth int64) {
	t.Helper()
	// Now: the receiver evaluates on the wall clock.
	r.write(t, "claims-triage", []event{{at: time.Now(), attrs: map[string]any{c.DecisionLayer: "workflow",
		c.DecisionEvent: "queue.depth", c.WorkflowQueue: "manual-review", c.WorkflowQueueDepth: depth}}})
}

const testRules = `
groups:
  - name: fast
    interval: 100ms
    rules:
      - alert: ReviewQueueDeep
        kind: queue_depth
        workflow: claims-triage
        max_depth: 400
        for: 400ms
        labels: {severity: page, team: claims-oncall}
        annotations:
          summary: 'manual review holds {{ printf "%.0f" .Value }} claims'
          dashboard: '{{ .DashboardURL }}'
      - alert: Broken
        kind: custom_sql
        sql: SELECT workflow, value FROM {db}.no_such_table
      - alert: VerdictsUnsupported
        kind: unsupported_certainty_rate
        window: 10m
        max_rate: 0.1
        min_count: 1
`

// config is the receiver's configuration on the rig's database, with
// rulesYAML as its only rule file.
func (r *rig) config(t *testing.T, rulesYAML string) *Config {
	t.Helper()
	f, err := os.CreateTemp(r.dir, "rules-*.yaml")
	require.NoError(t, err)
	_, err = f.WriteString(rulesYAML)
	require.NoError(t, errors.Join(err, f.Close()))
	user, pass := testenv.ClickHouseAuth()
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoint = "clickhouse://" + r.Addr
	cfg.Username, cfg.Password = user, configopaque.String(pass)
	cfg.Database = r.DB
	cfg.RuleFiles = []string{f.Name()}
	cfg.DashboardURL = "http://grafana/d/decisiontrace-overview?var-workflow={{ .Labels.workflow }}"
	cfg.VerdictRefreshInterval = 200 * time.Millisecond
	require.NoError(t, cfg.Validate())
	return cfg
}

func (r *rig) receiver(t *testing.T, sink *consumertest.LogsSink) receiver.Logs {
	t.Helper()
	return r.start(t, r.config(t, testRules), sink)
}

// start starts a receiver with cfg, its telemetry in r.tel.
func (r *rig) start(t *testing.T, cfg *Config, sink consumer.Logs) receiver.Logs {
	t.Helper()
	r.tel = componenttest.NewTelemetry()
	t.Cleanup(func() { _ = r.tel.Shutdown(context.Background()) })
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = r.tel.NewTelemetrySettings()
	rcv, err := NewFactory().CreateLogs(context.Background(), set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	return rcv
}

// refusing refuses the first n requests, as a pipeline whose exporter's
// queue is full does, then passes them on.
type refusing struct {
	*consumertest.LogsSink
	mu sync.Mutex
	n  int
}

func (c *refusing) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	c.mu.Lock()
	refuse := c.n > 0
	c.n--
	c.mu.Unlock()
	if refuse {
		return errors.New("sending queue is full")
	}
	return c.LogsSink.ConsumeLogs(ctx, ld)
}

// A firing alert whose record the pipeline refused (the exporter's queue
// full) is sent with the next round's records, not when it resolves.
func TestIntegrationRefusedAlertRecordsAreSentAgain(t *testing.T) {
	r := newRig(t)
	r.depth(t, 480)
	sink := &refusing{LogsSink: new(consumertest.LogsSink), n: 3}
	cfg := r.config(t, `
groups:
  - name: q
    interval: 200ms
    rules:
      - alert: ReviewQueueDeep
        kind: queue_depth
        workflow: claims-triage
        max_depth: 400
`)
	rcv := r.start(t, cfg, sink)
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })
	require.Eventually(t, func() bool { return find(alerts(sink.LogsSink), "ReviewQueueDeep", "firing") != nil },
		20*time.Second, 50*time.Millisecond, "the firing record refused three times is sent after")
	fired := find(alerts(sink.LogsSink), "ReviewQueueDeep", "firing")
	assert.Equal(t, 480.0, fired.value)
	// Reported as every receiver reports what it hands on.
	for _, name := range []string{"otelcol_receiver_accepted_log_records", "otelcol_receiver_refused_log_records"} {
		m, err := r.tel.GetMetric(name)
		require.NoError(t, err, name)
		var sum int64
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			sum += dp.Value
		}
		assert.Positive(t, sum, name)
	}
}

type alertRec struct {
	name, state, firedAt string
	labels, annotations  map[string]any
	value                float64
}

func alerts(sink *consumertest.LogsSink) []alertRec {
	var out []alertRec
	for _, ld := range sink.AllLogs() {
		lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		for i := 0; i < lrs.Len(); i++ {
			a := lrs.At(i).Attributes().AsRaw()
			rec := alertRec{name: a[c.AlertName].(string), state: a[c.AlertState].(string),
				labels: a[c.AlertLabels].(map[string]any), annotations: a[c.AlertAnnotations].(map[string]any), value: a[c.AlertValue].(float64)}
			if f, ok := a[c.AlertFiredAt].(string); ok {
				rec.firedAt = f
			}
			out = append(out, rec)
		}
	}
	return out
}

func find(recs []alertRec, name, state string) *alertRec {
	for i := range recs {
		if recs[i].name == name && recs[i].state == state {
			return &recs[i]
		}
	}
	return nil
}

func TestIntegrationPendingFiringResolvedAndRestartWithoutRepage(t *testing.T) {
	failingFor, noDataFor = 0, 0
	t.Cleanup(func() { failingFor, noDataFor = 2*time.Minute, 10*time.Minute })
	r := newRig(t)
	r.depth(t, 480)
	// The workflow decides, and did before the rules' window of 10
	// minutes (no contract judges it): a verdict rule without verdicts
	// has no data, which an idle workflow, or one that began or resumed
	// in the window, would not be.
	var decided []event
	for i, at := range []time.Time{time.Now().Add(-11 * time.Minute), time.Now()} {
		decided = append(decided, event{at: at, attrs: map[string]any{c.DecisionID: fmt.Sprint("d-", i), c.DecisionLayer: "model",
			c.DecisionEvent: "model.output", c.ModelConfidence: 0.9}})
	}
	r.write(t, "claims-triage", decided)

	sink := new(consumertest.LogsSink)
	rcv := r.receiver(t, sink)
	require.Eventually(t, func() bool { return find(alerts(sink), "ReviewQueueDeep", "firing") != nil }, 20*time.Second, 50*time.Millisecond)
	recs := alerts(sink)
	pending, firing := find(recs, "ReviewQueueDeep", "pending"), find(recs, "ReviewQueueDeep", "firing")
	require.NotNil(t, pending, "pending before firing: for is 400ms")
	assert.Equal(t, map[string]any{"workflow": "claims-triage", "queue": "manual-review", "severity": "page", "team": "claims-oncall"}, firing.labels)
	assert.Equal(t, "manual review holds 480 claims", firing.annotations["summary"])
	assert.Equal(t, "http://grafana/d/decisiontrace-overview?var-workflow=claims-triage", firing.annotations["dashboard"])
	assert.InDelta(t, 480, firing.value, 1e-9)

	// A failing query and a rule without data are alerts of their own.
	require.Eventually(t, func() bool {
		recs := alerts(sink)
		return find(recs, ruleFailingAlert, "firing") != nil && find(recs, ruleNoDataAlert, "firing") != nil
	}, 10*time.Second, 50*time.Millisecond)
	failing := find(alerts(sink), ruleFailingAlert, "firing")
	assert.Equal(t, "Broken", failing.labels["rule"])
	assert.Contains(t, failing.annotations["error"], "no_such_table", "the failing alert says why")
	// Rule health in the collector's own metrics, as Prometheus reports it.
	for rule, health := range map[string]string{"Broken": "err", "ReviewQueueDeep": "ok", "VerdictsUnsupported": "nodata"} {
		for _, h := range healthValues {
			v, ok := r.gauge(t, "otelcol_alertrules_rule_health", attribute.String("rule", rule), attribute.String("group", "fast"), attribute.String("health", h))
			require.True(t, ok, "rule_health{rule=%s,health=%s}", rule, h)
			assert.Equal(t, map[bool]float64{true: 1, false: 0}[h == health], v, "rule_health{rule=%s,health=%s}", rule, h)
		}
	}
	lastErr, ok := r.gauge(t, "otelcol_alertrules_rule_last_error_timestamp", attribute.String("rule", "Broken"), attribute.String("group", "fast"))
	require.True(t, ok)
	assert.InDelta(t, float64(time.Now().Unix()), lastErr, 30)
	_, ok = r.gauge(t, "otelcol_alertrules_rule_last_error_timestamp", attribute.String("rule", "ReviewQueueDeep"), attribute.String("group", "fast"))
	assert.False(t, ok, "a healthy rule has no error time")
	round, ok := r.gauge(t, "otelcol_alertrules_group_last_duration", attribute.String("group", "fast"))
	require.True(t, ok)
	assert.Greater(t, round, 0.0)
	assert.Equal(t, "VerdictsUnsupported", find(alerts(sink), ruleNoDataAlert, "firing").labels["rule"])
	assert.Nil(t, find(alerts(sink), "VerdictsUnsupported", "resolved"), "no data is never a resolve")

	// Restart: the firing alert is announced again with its original
	// fired_at, and no new pending or firing transition happens.
	require.NoError(t, rcv.Shutdown(context.Background()))
	sink2 := new(consumertest.LogsSink)
	rcv2 := r.receiver(t, sink2)
	defer func() { _ = rcv2.Shutdown(context.Background()) }()
	require.Eventually(t, func() bool { return find(alerts(sink2), "ReviewQueueDeep", "firing") != nil }, 10*time.Second, 50*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	recs2 := alerts(sink2)
	assert.Equal(t, firing.firedAt, find(recs2, "ReviewQueueDeep", "firing").firedAt)
	assert.Nil(t, find(recs2, "ReviewQueueDeep", "pending"))
	n := 0
	for _, rec := range recs2 {
		if rec.name == "ReviewQueueDeep" {
			n++
		}
	}
	assert.Equal(t, 1, n, "only the restored announcement")

	// The queue drains: resolved.
	r.depth(t, 120)
	require.Eventually(t, func() bool { return find(alerts(sink2), "ReviewQueueDeep", "resolved") != nil }, 10*time.Second, 50*time.Millisecond)

	// Records go out before the round's state is written: the history
	// follows a moment later.
	history := func() []string {
		var states []string
		rows, err := r.Conn.Query(context.Background(), "SELECT state FROM "+r.DB+".alert_history WHERE alertname = 'ReviewQueueDeep' ORDER BY time")
		require.NoError(t, err)
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			states = append(states, s)
		}
		require.NoError(t, rows.Err())
		return states
	}
	require.Eventually(t, func() bool { return len(history()) >= 3 }, 5*time.Second, 50*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // rounds every 100 ms: room for a duplicate
	assert.Equal(t, []string{"pending", "firing", "resolved"}, history(), "every state change is in the history, once")
}

func TestIntegrationNothingAfterShutdownNoLeaks(t *testing.T) {
	r := newRig(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	sink := new(consumertest.LogsSink)
	rcv := r.receiver(t, sink)
	require.Eventually(t, func() bool { return len(sink.AllLogs()) > 0 }, 10*time.Second, 50*time.Millisecond)
	require.NoError(t, rcv.Shutdown(context.Background()))
	n := len(sink.AllLogs())
	time.Sleep(300 * time.Millisecond)
	assert.Len(t, sink.AllLogs(), n)
}

// A verdict refresh that fails is logged and counted, and holds up no
// evaluation.
func TestIntegrationVerdictRefreshFailureHoldsUpNoEvaluation(t *testing.T) {
	r := newRig(t)
	// The refreshes' own table is gone: every refresh fails.
	require.NoError(t, r.Conn.Exec(context.Background(), "DROP TABLE "+r.DB+".verdict_refreshes"))
	r.depth(t, 480)
	sink := new(consumertest.LogsSink)
	rcv := r.receiver(t, sink)
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()
	require.Eventually(t, func() bool { return find(alerts(sink), "ReviewQueueDeep", "firing") != nil }, 20*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool { return r.counter(t, "otelcol_alertrules_verdict_refresh_errors") >= 2 }, 10*time.Second, 50*time.Millisecond,
		"every failed refresh is counted, and refreshes go on")
	_, ok := r.gauge(t, "otelcol_alertrules_verdict_refresh_duration")
	assert.True(t, ok, "a refresh's time is recorded")
}

// The receiver may be the first component to reach an empty database: it
// creates the schema, writes its contracts and judges the verdicts its
// rules read.
func TestIntegrationReceiverAloneOnAnEmptyDatabase(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	fresh := &storetest.Store{Store: store.New(r.Conn, r.DB+"_empty", store.Layout{}).AtRest(), Addr: r.Addr, DB: r.DB + "_empty", Conn: r.Conn}
	t.Cleanup(func() { _ = r.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+fresh.DB+" SYNC") })
	cfg := r.config(t, `
groups:
  - name: verdicts
    interval: 100ms
    rules:
      - alert: ConfidentOnStaleContext
        kind: unsupported_certainty_rate
        workflow: claims-triage
        window: 1h
        max_rate: 0.5
        min_count: 3
        annotations: {example_decisions: '{{ join .ExampleDecisions " " }}'}
`)
	cfg.Database = fresh.DB
	cfg.Contracts = []string{"testdata/contracts/claims-triage.yaml"}
	sink := new(consumertest.LogsSink)
	rcv := r.start(t, cfg, sink)
	defer func() { require.NoError(t, rcv.Shutdown(ctx)) }()

	require.Eventually(t, func() bool {
		v, err := fresh.Version(ctx)
		return err == nil && v == store.Latest()
	}, 20*time.Second, 50*time.Millisecond, "the receiver migrates the schema")
	require.Eventually(t, func() bool {
		var n uint64
		return r.Conn.QueryRow(ctx, "SELECT count() FROM "+fresh.DB+".contracts WHERE workflow = 'claims-triage'").Scan(&n) == nil && n == 1
	}, 10*time.Second, 50*time.Millisecond, "the receiver writes its contracts")

	// Four confident decisions, three of them on a policy-db read 20
	// minutes old (its budget is 90 s).
	now := time.Now() // the receiver evaluates on the wall clock
	var evs []event
	for i := 0; i < 4; i++ {
		id, at := fmt.Sprintf("d-%d", i), now.Add(time.Duration(i-10)*time.Second)
		asOf := at.Add(-20 * time.Minute)
		if i == 3 {
			asOf = at.Add(-10 * time.Second)
		}
		evs = append(evs,
			event{at: at, attrs: map[string]any{c.DecisionID: id, c.DecisionLayer: "model", c.DecisionEvent: "model.output", c.ModelConfidence: 0.9}},
			event{at: at.Add(-time.Second), attrs: map[string]any{c.DecisionID: id, c.DecisionLayer: "data", c.DecisionEvent: "context.read",
				c.DataSource: "policy-db", c.DataAsOf: asOf.Format(time.RFC3339Nano)}},
			event{at: at.Add(-time.Second), attrs: map[string]any{c.DecisionID: id, c.DecisionLayer: "data", c.DecisionEvent: "context.read",
				c.DataSource: "claims-history", c.DataAsOf: at.Add(-time.Minute).Format(time.RFC3339Nano)}})
	}
	(&rig{Store: fresh}).write(t, "claims-triage", evs)

	require.Eventually(t, func() bool { return find(alerts(sink), "ConfidentOnStaleContext", "firing") != nil }, 20*time.Second, 50*time.Millisecond)
	firing := find(alerts(sink), "ConfidentOnStaleContext", "firing")
	assert.InDelta(t, 0.75, firing.value, 1e-9)
	assert.Equal(t, "d-2 d-1 d-0", firing.annotations["example_decisions"])
}
