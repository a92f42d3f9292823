package alertrulesreceiver

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/decisiontrace/decisiontrace/internal/alerting"
	"github.com/decisiontrace/decisiontrace/internal/chconn"
	"github.com/decisiontrace/decisiontrace/internal/contract"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/rules"
	"github.com/decisiontrace/decisiontrace/internal/store"
	"github.com/decisiontrace/decisiontrace/receivers/alertrulesreceiver/internal/metadata"
)

// Rule names of the evaluator's own alerts: a rule whose query fails, a
// rule whose signals have stopped (no data), both with the rule's name in
// the label rule and tickets for the platform, and the store that cannot
// be queried at all, the one cause of every rule failing, which pages.
const (
	ruleFailingAlert      = conventions.AlertRuleFailing
	ruleNoDataAlert       = conventions.AlertRuleNoData
	storeUnavailableAlert = conventions.AlertStoreUnavailable
)

// How long a rule must fail, or lack data, or the store be unreachable,
// before the evaluator's own alert fires: a collector that starts before
// any traffic, or one query lost to a ClickHouse restart, pages no one.
var (
	failingFor          = 2 * time.Minute
	noDataFor           = 10 * time.Minute
	storeUnavailableFor = 2 * time.Minute
)

// evaluated is one rule with its alerts and the evaluator's own alerts
// about it, each keyed by the rule's label set (contract rules share names
// across workflows).
type evaluated struct {
	rule    *rules.Rule
	failing *alerting.Machine
	noData  *alerting.Machine
	// sent holds the annotations each firing alert last went out with:
	// they are rendered again every round and re-sent when they change.
	sent map[uint64]map[string]string
}

func newEvaluated(rl *rules.Rule) *evaluated {
	return &evaluated{rule: rl,
		failing: alerting.NewMachine(failingFor, 0), noData: alerting.NewMachine(noDataFor, 0), sent: map[uint64]map[string]string{}}
}

// selfKey is the persisted key of the evaluator's own alert about a rule.
func selfKey(alertname string, rl *rules.Rule) string { return alertname + "," + rl.Key() }

type alertReceiver struct {
	cfg    *Config
	set    receiver.Settings
	next   consumer.Logs
	logger *zap.Logger
	now    func() time.Time

	groups    []group
	contracts map[string]*contract.Contract
	dashboard *template.Template
	conn      driver.Conn
	store     *store.Store

	mu sync.Mutex // guards the alert state across groups
	// eval holds the rules' alerts; byRule the evaluator's own about each.
	eval   *rules.Evaluator
	byRule map[string]*evaluated
	// storeDown is DecisionStoreUnavailable, driven by every group's round.
	storeDown *alerting.Machine
	// unsaved are DecisionStoreUnavailable's state changes not yet in
	// alert_history: written by the first round that reaches the store.
	unsaved []record
	// outMu guards what goes out. unsent: records the pipeline refused
	// (the Alertmanager exporter's queue full, say), sent again, first,
	// with the next records; a page refused once would otherwise wait for
	// its alert to resolve. firing: each firing alert's last record and
	// when it went out, sent again every resend_interval.
	outMu  sync.Mutex
	unsent []record
	firing map[uint64]*sentRecord
	obs    *receiverhelper.ObsReport
	// persisted: the fingerprints in alert_state, per rule key
	persisted map[string]map[uint64]bool

	// stop ends the loops after the round they are in; cancelQueries
	// aborts that round's queries, only when it outlasts a query timeout:
	// a query cut off mid-answer costs the server an aborted reply (and
	// the embedded engine its life).
	stop, cancelQueries context.CancelFunc
	wg                  sync.WaitGroup

	evaluations  metric.Int64Counter
	transitions  metric.Int64Counter
	health       metric.Int64Gauge
	ruleDuration metric.Float64Gauge
	roundTime    metric.Float64Gauge
	lastError    metric.Float64Gauge

	refreshErrors   metric.Int64Counter
	refreshDuration metric.Float64Gauge
}

// Rule health, as Prometheus reports it for its rules.
var healthValues = []string{"ok", "err", "nodata"}

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Logs) (*alertReceiver, error) {
	groups, contracts, err := cfg.loadRules()
	if err != nil {
		return nil, err
	}
	dash, err := dashboardTemplate(cfg.DashboardURL)
	if err != nil {
		return nil, err
	}
	r := &alertReceiver{cfg: cfg, set: set, next: next, logger: set.Logger, now: time.Now, groups: groups, contracts: contracts, dashboard: dash,
		byRule: map[string]*evaluated{}, storeDown: alerting.NewMachine(storeUnavailableFor, 0),
		persisted: map[string]map[uint64]bool{}, firing: map[uint64]*sentRecord{}}
	var all []*rules.Rule
	for _, g := range groups {
		for _, rl := range g.rules {
			r.byRule[rl.Key()] = newEvaluated(rl)
			all = append(all, rl)
		}
	}
	r.eval = rules.NewEvaluator(all)
	// Records accepted and refused by the pipeline, as every receiver
	// reports them (otelcol_receiver_accepted_log_records, ...).
	if r.obs, err = receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: "clickhouse", ReceiverCreateSettings: set,
	}); err != nil {
		return nil, err
	}
	// Its own metrics, as metadata.yaml declares them.
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	r.evaluations = tb.AlertrulesEvaluations
	r.transitions = tb.AlertrulesTransitions
	r.health = tb.AlertrulesRuleHealth
	r.ruleDuration = tb.AlertrulesRuleLastEvaluationDuration
	r.roundTime = tb.AlertrulesGroupLastDuration
	r.lastError = tb.AlertrulesRuleLastErrorTimestamp
	r.refreshErrors = tb.AlertrulesVerdictRefreshErrors
	r.refreshDuration = tb.AlertrulesVerdictRefreshDuration
	return r, nil
}

func dashboardTemplate(s string) (*template.Template, error) {
	return template.New("dashboard_url").Option("missingkey=zero").Parse(s)
}

// connect opens the ClickHouse connection; it does not wait for the
// server, which may come up after the collector.
func (r *alertReceiver) connect() error {
	opts, err := r.cfg.ClientConfig.Options()
	if err != nil {
		return fmt.Errorf("alertrules: %w", err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return fmt.Errorf("alertrules: open %s: %w", chconn.Redact(r.cfg.Endpoint), err)
	}
	r.conn = conn
	r.store = store.New(conn, r.cfg.Database, r.cfg.layout())
	return nil
}

func (r *alertReceiver) Start(context.Context, component.Host) error {
	if err := r.connect(); err != nil {
		return err
	}
	stopCtx, stop := context.WithCancel(context.Background())
	runCtx, cancelQueries := context.WithCancel(context.Background())
	r.stop, r.cancelQueries = stop, cancelQueries
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		// ClickHouse may come up after the collector, and no exporter may
		// have created the schema yet: keep trying to migrate it, record
		// the contracts and load the state before the first round, so
		// nothing re-pages.
		for {
			err := r.prepare(runCtx)
			if err == nil {
				break
			}
			r.logger.Warn("decision store not ready yet; retrying before the first evaluation", zap.Error(err))
			select {
			case <-stopCtx.Done():
				return
			case <-time.After(5 * time.Second):
			}
		}
		// Verdicts are judged once before the first round and then every
		// verdict_refresh_interval. A refresh that fails, or takes longer
		// than a query may, holds up no evaluation: the verdict rules read
		// the verdicts refreshed so far.
		first := make(chan struct{})
		r.wg.Add(1)
		go r.refreshLoop(stopCtx, runCtx, first)
		select {
		case <-stopCtx.Done():
			return
		case <-first:
		case <-time.After(r.cfg.QueryTimeout):
			r.logger.Info("the first verdict refresh is still running; evaluating meanwhile")
		}
		for _, g := range r.groups {
			r.wg.Add(1)
			go r.loop(stopCtx, runCtx, g)
		}
		r.wg.Add(1)
		go r.resendLoop(stopCtx, runCtx)
	}()
	return nil
}

// prepare readies the store for evaluation: the schema (the receiver may
// be the first component to reach the database), the contracts in force
// (their verdicts are judged against them) and the persisted alert state.
func (r *alertReceiver) prepare(ctx context.Context) error {
	if _, _, err := r.store.Migrate(ctx); err != nil {
		return err
	}
	if err := r.store.WriteContracts(ctx, r.contracts, r.now()); err != nil {
		return err
	}
	return r.restore(ctx)
}

// refreshLoop refreshes the verdicts at once (closing first when done) and
// then verdict_refresh_interval after each refresh ends. A ticker would
// start the next refresh at once whenever one outlasts the interval: under
// flat-out ingestion on a small store server, refreshes ran back to back
// and took the CPU the inserts needed. Spaced, each refresh judges a longer
// stretch of changes, and the 10 s it looks back again is a smaller share.
func (r *alertReceiver) refreshLoop(stop, ctx context.Context, first chan<- struct{}) {
	defer r.wg.Done()
	r.refresh(ctx)
	close(first)
	wait := time.NewTimer(r.cfg.VerdictRefreshInterval)
	defer wait.Stop()
	for {
		select {
		case <-stop.Done():
			return
		case <-wait.C:
			if stop.Err() != nil {
				return
			}
			r.refresh(ctx)
			wait.Reset(r.cfg.VerdictRefreshInterval)
		}
	}
}

// refresh judges again the decisions whose verdict may have changed. Any
// number of replicas may refresh at once; a failure is logged and counted,
// and the next refresh catches up.
func (r *alertReceiver) refresh(ctx context.Context) {
	started := time.Now()
	st, err := r.store.RefreshVerdicts(ctx)
	if ctx.Err() != nil {
		return // shutting down
	}
	took := time.Since(started)
	r.refreshDuration.Record(ctx, took.Seconds())
	if err != nil {
		r.refreshErrors.Add(ctx, 1)
		r.logger.Warn("verdicts not refreshed; the verdict rules read the last refreshed verdicts until a refresh succeeds", zap.Error(err))
		return
	}
	r.logger.Debug("verdicts refreshed", zap.Int("statements", st.Statements), zap.Int("workflows_pending", st.Pending), zap.Duration("took", took))
}

func (r *alertReceiver) Shutdown(ctx context.Context) error {
	if r.stop != nil {
		r.stop()
		done := make(chan struct{})
		go func() {
			r.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
		case <-time.After(r.cfg.QueryTimeout):
		}
		r.cancelQueries()
		<-done
	}
	if r.conn != nil {
		return r.conn.Close()
	}
	return nil
}

func (r *alertReceiver) loop(stop, ctx context.Context, g group) {
	defer r.wg.Done()
	r.evalGroup(ctx, g)
	every(stop, g.interval, func() { r.evalGroup(ctx, g) })
}

// every runs f every d until stop is done; a tick that finds stop done
// runs nothing.
func every(stop context.Context, d time.Duration, f func()) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-stop.Done():
			return
		case <-tick.C:
			if stop.Err() != nil {
				return
			}
			f()
		}
	}
}

// evalGroup runs one round of a group: the store's reachability, each
// rule's query, its state machine, the records of every change, and the
// persisted state. Records go out before the state is persisted: a store
// that cannot take the state must not hold up a page.
func (r *alertReceiver) evalGroup(ctx context.Context, g group) {
	// The state is persisted at millisecond precision; keeping the same
	// precision in memory makes a restored alert identical to the live one.
	now := r.now().UTC().Truncate(time.Millisecond)
	started := time.Now()
	defer func() {
		r.roundTime.Record(ctx, time.Since(started).Seconds(), metric.WithAttributes(attribute.String("group", g.name)))
	}()
	// A store that cannot be queried is one cause, whatever number of
	// rules it fails: DecisionStoreUnavailable pages, the rules keep their
	// state and their own failing alerts stay as they are.
	pctx, cancel := context.WithTimeout(ctx, r.cfg.QueryTimeout)
	down := r.conn.Ping(pctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	records := r.storeAlert(ctx, down, now)
	if down != nil {
		r.logger.Warn("decision store cannot be queried; every rule keeps its state", zap.String("group", g.name), zap.Error(down))
		for _, rl := range g.rules {
			r.recordHealth(ctx, g, rl, "err", 0)
		}
		r.emit(ctx, records)
		return
	}
	// The rules' queries run side by side; their results are applied in
	// the group's order, as one after the other would.
	results := rules.EvalAll(ctx, r.conn, r.cfg.Database, now, g.rules, r.cfg.RuleQueryConcurrency, r.cfg.QueryTimeout)
	if ctx.Err() != nil {
		return
	}
	var changes []record
	for i, rl := range g.rules {
		if ctx.Err() != nil {
			return
		}
		ev := r.byRule[rl.Key()]
		result := "ok"
		ruleStarted := time.Now()
		samples, hasData, idle, err := results[i].Samples, results[i].HasData, results[i].Idle, results[i].Err
		var changed []alerting.Transition
		r.mu.Lock()
		held := r.eval.HeldBack(rl)
		switch {
		case err != nil:
			result = "err"
			r.logger.Warn("rule evaluation failed; its alerts keep their state", zap.String("rule", rl.Alert), zap.Error(err))
		case !hasData:
			result = "nodata"
		default:
			changed = r.eval.Apply(rl, now, samples)
		}
		self := r.selfLabels(rl, ruleFailingAlert)
		failing := r.selfAlert(ctx, ev.failing, rl, self, err, err != nil, now)
		noData := r.selfAlert(ctx, ev.noData, rl, r.selfLabels(rl, ruleNoDataAlert), nil, err == nil && !hasData && !idle && !held[rl.Labels["workflow"]], now)
		firing := firingOf(r.eval.Machine(rl))
		r.mu.Unlock()
		changes = append(append(changes, failing...), noData...)
		// Records are built outside the lock: a firing one looks up its
		// example decisions in ClickHouse, which must not hold up the other
		// groups.
		fresh := map[uint64]bool{}
		var own []record
		for _, t := range changed {
			rec := r.record(ctx, ev.rule, t.Alert, stateOf(t), now)
			r.transitions.Add(ctx, 1, metric.WithAttributes(attribute.String("rule", rl.Alert), attribute.String("state", rec.state)))
			own = append(own, rec)
			fresh[t.Alert.Fingerprint] = true
		}
		changes = append(changes, own...)
		// Annotations are rendered again every round, as Prometheus does:
		// a firing alert whose value or example decisions changed goes out
		// again, so what on-call reads is what holds now.
		var again []record
		for _, a := range firing {
			if !fresh[a.Fingerprint] {
				again = append(again, r.record(ctx, ev.rule, a, conventions.AlertStateFiring, now))
			}
		}
		r.mu.Lock()
		for _, rec := range own {
			ev.remember(rec)
		}
		for _, rec := range again {
			if !maps.Equal(ev.sent[rec.alert.Fingerprint], rec.annotations) {
				ev.remember(rec)
				records = append(records, rec)
			}
		}
		r.mu.Unlock()
		r.recordHealth(ctx, g, rl, result, results[i].Took+time.Since(ruleStarted))
		if err != nil {
			r.lastError.Record(ctx, float64(time.Now().UnixMilli())/1000, metric.WithAttributes(attribute.String("rule", rl.Alert), attribute.String("group", g.name)))
		}
	}
	records = append(records, changes...)
	r.emit(ctx, records)
	r.mu.Lock()
	changes = append(changes, r.unsaved...)
	r.unsaved = nil
	r.mu.Unlock()
	if err := r.persist(ctx, g, now, changes); err != nil {
		r.logger.Warn("alert state not persisted; it is retried next round", zap.String("group", g.name), zap.Error(err))
	}
}

// recordHealth reports one rule's evaluation in the collector's metrics.
func (r *alertReceiver) recordHealth(ctx context.Context, g group, rl *rules.Rule, result string, took time.Duration) {
	// Contract rules share names across workflows; the group tells them
	// apart, as rule_group does in Prometheus.
	ruleAttrs := []attribute.KeyValue{attribute.String("rule", rl.Alert), attribute.String("group", g.name)}
	r.evaluations.Add(ctx, 1, metric.WithAttributes(append(ruleAttrs, attribute.String("result", result))...))
	if took > 0 {
		r.ruleDuration.Record(ctx, took.Seconds(), metric.WithAttributes(ruleAttrs...))
	}
	for _, h := range healthValues {
		v := int64(0)
		if h == result {
			v = 1
		}
		r.health.Record(ctx, v, metric.WithAttributes(append(ruleAttrs, attribute.String("health", h))...))
	}
}

// storeAlert drives DecisionStoreUnavailable with this round's ping. Every
// replica raises the same label set, which Alertmanager deduplicates.
func (r *alertReceiver) storeAlert(ctx context.Context, down error, now time.Time) []record {
	labels := map[string]string{"alertname": storeUnavailableAlert, "severity": "page", "database": r.cfg.Database}
	var samples []alerting.Sample
	if down != nil {
		samples = []alerting.Sample{{Labels: labels, Value: 1}}
	}
	r.mu.Lock()
	changed := r.storeDown.Eval(now, samples)
	r.mu.Unlock()
	var out []record
	for _, t := range changed {
		rec := r.record(ctx, &rules.Rule{Alert: storeUnavailableAlert}, t.Alert, stateOf(t), now)
		rec.annotations = map[string]string{"summary": "the decision store (database " + r.cfg.Database + ") cannot be queried: no rule is evaluated and no alert state is kept until it can"}
		if down != nil {
			rec.annotations["error"] = down.Error()
		}
		r.transitions.Add(ctx, 1, metric.WithAttributes(attribute.String("rule", storeUnavailableAlert), attribute.String("state", rec.state)))
		out = append(out, rec)
	}
	r.mu.Lock()
	r.unsaved = append(r.unsaved, out...)
	r.mu.Unlock()
	return out
}

// firingOf returns m's firing alerts. Called with r.mu held.
func firingOf(m *alerting.Machine) []alerting.Alert {
	var out []alerting.Alert
	for _, a := range m.Active() {
		if a.State == alerting.StateFiring {
			out = append(out, a)
		}
	}
	return out
}

// remember notes what a record of the rule's own alerts said. Called with
// r.mu held.
func (ev *evaluated) remember(rec record) {
	if rec.state == conventions.AlertStateFiring {
		ev.sent[rec.alert.Fingerprint] = rec.annotations
	} else {
		delete(ev.sent, rec.alert.Fingerprint)
	}
}

func stateOf(t alerting.Transition) string {
	if t.Resolved {
		return conventions.AlertStateResolved
	}
	return t.Alert.State.String()
}

// due returns the firing alerts last sent resend_interval or more before
// now, in fingerprint order, and marks them sent. Called with r.outMu held.
func (r *alertReceiver) due(now time.Time) []record {
	var fps []uint64
	for fp, s := range r.firing {
		if now.Sub(s.at) >= r.cfg.ResendInterval {
			fps = append(fps, fp)
		}
	}
	slices.Sort(fps)
	out := make([]record, 0, len(fps))
	for _, fp := range fps {
		s := r.firing[fp]
		s.at = now
		out = append(out, s.rec)
	}
	return out
}

// selfLabels are the labels of the evaluator's own alert about a rule:
// the rule and its workflow, as tickets (the shipped Alertmanager
// configuration routes them to the team that runs decisiontrace).
func (r *alertReceiver) selfLabels(rl *rules.Rule, alertname string) map[string]string {
	labels := map[string]string{"alertname": alertname, "rule": rl.Alert, "severity": "ticket"}
	if wf := rl.Labels["workflow"]; wf != "" {
		labels["workflow"] = wf
	}
	return labels
}

// selfAlert drives the evaluator's own alert about one rule: its machine
// holds that one alert, present while the condition holds. Called with
// r.mu held; the record needs no query.
func (r *alertReceiver) selfAlert(ctx context.Context, m *alerting.Machine, rl *rules.Rule, labels map[string]string, cause error, holds bool, now time.Time) []record {
	var samples []alerting.Sample
	if holds {
		samples = []alerting.Sample{{Labels: labels, Value: 1}}
	}
	var out []record
	for _, t := range m.Eval(now, samples) {
		rec := record{alert: t.Alert, state: stateOf(t)}
		rec.annotations = map[string]string{"summary": selfSummary(labels["alertname"], rl.Alert)}
		if cause != nil {
			rec.annotations["error"] = cause.Error()
		}
		r.transitions.Add(ctx, 1, metric.WithAttributes(attribute.String("rule", labels["alertname"]), attribute.String("state", rec.state)))
		out = append(out, rec)
	}
	return out
}

func selfSummary(alert, rule string) string {
	if alert == ruleFailingAlert {
		return "the query of rule " + rule + " fails; its alerts keep their last state"
	}
	return "rule " + rule + " has no data: the signals it is computed from have stopped"
}

// record is an alert state change on its way out.
type record struct {
	alert       alerting.Alert
	state       string
	annotations map[string]string
	generator   string
}

// record renders an alert's annotations for a record in state: a firing
// one with its example decisions, looked up at now.
func (r *alertReceiver) record(ctx context.Context, rl *rules.Rule, a alerting.Alert, state string, now time.Time) record {
	data := rules.TemplateData{Labels: a.Labels, Value: a.Value, Now: now}
	if state == conventions.AlertStateFiring && r.cfg.ExampleDecisions > 0 {
		qctx, cancel := context.WithTimeout(ctx, r.cfg.QueryTimeout)
		ex, err := rl.Examples(qctx, r.conn, r.cfg.Database, now, a.Labels, r.cfg.ExampleDecisions)
		cancel()
		if err != nil {
			// The page goes out without examples rather than not at all.
			r.logger.Warn("example decisions not found", zap.String("rule", rl.Alert), zap.Error(err))
		}
		data.ExampleDecisions = ex
	}
	data.DashboardURL = r.dashboardURL(data)
	return record{alert: a, state: state, annotations: rl.Annotate(data), generator: data.DashboardURL}
}

// announce is a restored firing alert on its way out again, with the
// annotations it paged with: not a state change.
func (r *alertReceiver) announce(a alerting.Alert, ann map[string]string) record {
	data := rules.TemplateData{Labels: a.Labels, Value: a.Value, ExampleDecisions: strings.Fields(ann["example_decisions"])}
	return record{alert: a, state: conventions.AlertStateFiring, annotations: ann, generator: r.dashboardURL(data)}
}

func (r *alertReceiver) dashboardURL(data rules.TemplateData) string {
	var url strings.Builder
	if err := r.dashboard.Execute(&url, data); err != nil {
		return ""
	}
	return url.String()
}

// maxUnsent bounds the records kept for another try: past it the oldest
// go, counted; the alerts still firing go out again with their re-send.
const maxUnsent = 10000

// sentRecord is a firing alert's last record and when it went out.
type sentRecord struct {
	rec record
	at  time.Time
}

// resendLoop sends the firing alerts that are due every resend_interval,
// whatever the groups' intervals: a group evaluated less often than
// Alertmanager's endsAt runs out must not let its alerts expire.
func (r *alertReceiver) resendLoop(stop, ctx context.Context) {
	defer r.wg.Done()
	every(stop, r.cfg.ResendInterval, func() { r.emit(ctx, nil) })
}

// emit sends recs down the pipeline, after the records it refused before
// and with every firing alert not sent for resend_interval.
func (r *alertReceiver) emit(ctx context.Context, recs []record) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	now := r.now()
	for _, rec := range recs {
		switch rec.state {
		case conventions.AlertStateFiring:
			r.firing[rec.alert.Fingerprint] = &sentRecord{rec: rec, at: now}
		case conventions.AlertStateResolved:
			delete(r.firing, rec.alert.Fingerprint)
		}
	}
	recs = append(r.unsent, recs...)
	r.unsent = nil
	recs = append(recs, r.due(now)...)
	if len(recs) == 0 {
		return
	}
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "decisiontrace")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	ts := pcommon.NewTimestampFromTime(now)
	for _, rec := range recs {
		alerting.Record{Alert: rec.alert, State: rec.state, Annotations: rec.annotations, GeneratorURL: rec.generator}.
			Encode(sl.LogRecords().AppendEmpty(), ts)
	}
	octx := r.obs.StartLogsOp(ctx)
	err := r.next.ConsumeLogs(octx, ld)
	r.obs.EndLogsOp(octx, metadata.Type.String(), len(recs), err)
	if err != nil {
		if drop := len(recs) - maxUnsent; drop > 0 {
			r.logger.Error("alert records refused by the pipeline too long; the oldest are dropped", zap.Int("dropped", drop))
			recs = recs[drop:]
		}
		r.unsent = recs
		r.logger.Warn("alert records refused by the pipeline; sent again with the next ones", zap.Int("records", len(recs)), zap.Error(err))
	}
}
