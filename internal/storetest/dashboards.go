package storetest

// A realistic workload for tests that read what the dashboards and dtctl
// read: the requests producers send, in the order they arrive, and the
// same requests redelivered.

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/decisiontrace/decisiontrace/internal/contract"
	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/store"
)

// Workload is three hours of decisions of three workflows (claims-triage
// and loan-underwriting with contracts, support-assist without), three a
// minute each, and the day before them at one decision per workflow every
// ten minutes, as the producers send them:
//
//   - the AI services send each decision's context reads and model output,
//     its routing, exceptions and rework together; the review tool sends
//     human actions, the claims system business outcomes, and the
//     freshness poller source.freshness and queue.depth signals; each
//     producer batches: a request per producer and five minutes;
//   - loan-underwriting's document-store reads go through a log shipper
//     that batches: they arrive 4 minutes after the decisions that made
//     them, in requests of their own, so the last 4 minutes' decisions are
//     still pending (their reads are on their way) when the workload ends;
//   - from minute 60 to 80 policy-db serves the data of minute 59.5, up to
//     20 minutes old (stale, and confident outputs on it are unsupported
//     certainty), and 3% of claims-triage decisions never read policy-db
//     (missing);
//   - some reads come from a cache (old as_of while the source is fresh),
//     a few polls find their source unavailable, CLM-3 maps to no
//     canonical entity, and the review tool sets decision.event_id while
//     the other producers leave it to the exporter.
//
// Nothing happens after End: the signals due later are not sent.
type Workload struct {
	Start, End time.Time
	// Requests in the order they arrive.
	Requests []plog.Logs
	// Complete are claims-triage decisions with all five layers.
	Complete []string
	// Unsupported is a claims-triage decision confident on stale policy-db.
	Unsupported string
	// LateContext is a loan-underwriting decision whose document-store read
	// arrives 4 minutes after its output.
	LateContext string
	// Pending is a loan-underwriting decision whose document-store read has
	// not arrived by End.
	Pending string
}

// workloadContracts are the contracts the workload is judged by: the
// shipped ones (deploy/contracts) as far as verdicts go, kept here so that
// tests do not change with the shipped files, and SLOs of every SLI.
const workloadContracts = `
workflow: claims-triage
owner: claims-platform
paging: {team: claims-oncall, severity: page}
sources:
  required:
    - {name: policy-db, owner: policy-admin-team, max_age: 90s, on_stale: escalate, on_missing: abstain}
    - {name: claims-history, owner: claims-data-team, max_age: 10m, on_stale: degrade, on_missing: escalate}
  optional:
    - {name: fraud-signals, owner: fraud-team, max_age: 5m, on_stale: warn, on_missing: proceed_with_limits}
confidence_floor: 0.7
on_low_confidence: escalate
outcomes: {good: [paid, denied], bad: [reopened], max_bad: 0.5, window: 1h}
slos:
  - {name: safe, sli: safe_outputs, objective: 0.9}
  - {name: accepted, sli: accepted_recommendations, objective: 0.5}
  - {name: good, sli: good_outcomes, objective: 0.5}
  - {name: fresh, sli: fresh_context, objective: 0.9}
---
workflow: loan-underwriting
owner: lending-platform
paging: {team: lending-oncall, severity: page}
sources:
  required:
    - {name: credit-bureau, owner: bureau-integration-team, max_age: 15m, on_stale: abstain, on_missing: abstain}
    - {name: document-store, owner: documents-team, max_age: 3m, on_stale: escalate, on_missing: escalate}
  optional:
    - {name: income-verification, owner: payroll-integration-team, max_age: 30m, on_stale: proceed_with_limits, on_missing: proceed_with_limits}
confidence_floor: 0.75
on_low_confidence: escalate
slos:
  - {name: safe, sli: safe_outputs, objective: 0.99}
`

// WorkloadContracts are the contracts of claims-triage and
// loan-underwriting the workload is judged by (as deploy/contracts ships
// them, with the default max_context_lag of 10 minutes).
func WorkloadContracts(t testing.TB) map[string]*contract.Contract {
	t.Helper()
	cs, err := parseContracts()
	require.NoError(t, err)
	return cs
}

func parseContracts() (map[string]*contract.Contract, error) {
	out := map[string]*contract.Contract{}
	for i, doc := range strings.Split(workloadContracts, "\n---\n") {
		ct, err := contract.Parse(fmt.Sprintf("workload-%d.yaml", i), []byte(doc))
		if err != nil {
			return nil, err
		}
		out[ct.Workflow] = ct
	}
	return out, nil
}

// workloadSignal is one log record and who sends it when.
type workloadSignal struct {
	sender string
	sent   time.Time // when it is sent (its request: this time's batch)
	at     time.Time // event time
	attrs  map[string]any
}

type workloadWorkflow struct {
	name, queue string
	sources     []string
	versions    []string
	conf        float64 // confidence floor of the outputs' spread
}

// NewWorkload builds the workload of the three hours from start.
func NewWorkload(start time.Time) *Workload {
	start = start.UTC()
	w := &Workload{Start: start, End: start.Add(3 * time.Hour)}
	workflows := []workloadWorkflow{
		{"claims-triage", "manual-review", []string{"policy-db", "claims-history", "fraud-signals"}, []string{"2025.09.1", "2025.11.0"}, 0.5},
		{"loan-underwriting", "underwriter-review", []string{"credit-bureau", "document-store", "income-verification"}, []string{"2025.10.2", "2025.11.0"}, 0.55},
		{"support-assist", "", []string{"crm-profile"}, []string{"2025.08.0"}, 0.6},
	}
	r := rand.New(rand.NewPCG(1, 2))
	var sigs []workloadSignal
	emit := func(sender string, sent, at time.Time, attrs map[string]any) {
		sigs = append(sigs, workloadSignal{sender: sender, sent: sent, at: at, attrs: attrs})
	}
	eventSeq := 0
	// The decisions tests look at: every required source read (fresh but
	// for the policy-db episode) and a confident output.
	w.Complete = []string{"claims-triage-10-0", "claims-triage-11-0"}
	w.Unsupported, w.LateContext, w.Pending = "claims-triage-70-1", "loan-underwriting-100-1", "loan-underwriting-178-1"
	special := map[string]bool{w.Complete[0]: true, w.Complete[1]: true, w.Unsupported: true, w.LateContext: true, w.Pending: true}

	// decide emits one decision of workflow wf at d; full adds the layers
	// after the model.
	decide := func(wf workloadWorkflow, id string, d time.Time, minute int, full bool) {
		base := func(layer, event string, m map[string]any) map[string]any {
			m[c.DecisionID], m[c.DecisionWorkflow], m[c.DecisionLayer], m[c.DecisionEvent] = id, wf.name, layer, event
			return m
		}
		ai := wf.name + "-ai"
		for _, src := range wf.sources {
			if src == "policy-db" && r.Float64() < 0.03 && !special[id] {
				continue // never read: missing
			}
			asOf := d.Add(-20 * time.Second)
			if src == "policy-db" && minute >= 60 && minute < 80 {
				asOf = start.Add(60 * time.Minute).Add(-30 * time.Second)
			}
			if r.Float64() < 0.03 && !special[id] {
				asOf = d.Add(-3 * time.Hour) // a cached read: old, while the source is fresh
			}
			ent := fmt.Sprintf("CLM-%d", 1+r.IntN(3))
			attrs := base(c.LayerData, c.EventContextRead, map[string]any{c.DataSource: src, c.DataAsOf: asOf.Format(time.RFC3339Nano),
				c.DataComplete: r.Float64() > 0.05, c.DataEntitySystem: "claims-dw", c.DataEntityID: ent,
				c.DataEntityResolved: ent != "CLM-3"})
			if ent != "CLM-3" {
				attrs[c.DataEntityCanonicalID] = "entity-" + ent[4:]
			}
			sender, sent := ai, d
			if src == "document-store" {
				sender, sent = "document-shipper", d.Add(4*time.Minute)
			}
			emit(sender, sent, d.Add(-time.Second), attrs)
		}
		conf := wf.conf + r.Float64()*(1-wf.conf)
		if special[id] {
			conf = 0.93
		}
		emit(ai, d, d, base(c.LayerModel, c.EventModelOutput, map[string]any{c.ModelName: wf.name + "-llm",
			c.ModelVersion: wf.versions[r.IntN(len(wf.versions))], c.ModelConfidence: conf,
			c.ModelLatencyMS: 200 + r.Float64()*800, c.ModelUnsafe: r.Float64() < 0.05, c.ModelRecommendation: []string{"approve", "deny"}[r.IntN(2)],
			c.GenAIUsageInputTokens: int64(500 + r.IntN(500)), c.GenAIUsageOutputTokens: int64(50 + r.IntN(100))}))
		if !full {
			return
		}
		// An evaluator scores the output a minute later; the score comes
		// from the decision's ID, not the shared random sequence, so that
		// the other signals stay what they were.
		h := fnv.New32a()
		_, _ = h.Write([]byte(id))
		emit("evaluator", d.Add(time.Minute), d.Add(time.Minute), base(c.LayerModel, c.EventModelEvaluation, map[string]any{
			c.GenAIEvaluationName: "groundedness", c.GenAIEvaluationScoreValue: float64(h.Sum32()%100) / 100}))
		routed := map[string]any{c.WorkflowRoute: []string{"auto", "review", "escalated"}[r.IntN(3)]}
		if wf.queue != "" && routed[c.WorkflowRoute] != "auto" {
			routed[c.WorkflowQueue] = wf.queue
		}
		emit(ai, d, d.Add(time.Second), base(c.LayerWorkflow, c.EventWorkflowRouted, routed))
		if r.Float64() < 0.1 {
			emit(ai, d, d.Add(2*time.Second), base(c.LayerWorkflow, c.EventWorkflowException, map[string]any{c.WorkflowExceptionType: []string{"timeout", "schema"}[r.IntN(2)]}))
		}
		if r.Float64() < 0.1 {
			emit(ai, d, d.Add(3*time.Second), base(c.LayerWorkflow, c.EventWorkflowRework, map[string]any{}))
		}
		acted := d.Add(time.Duration(30+r.IntN(300)) * time.Second)
		eventSeq++
		emit("review-tool", acted, acted, base(c.LayerHuman, c.EventHumanAction, map[string]any{
			c.HumanAction:     []string{c.ActionAccepted, c.ActionAccepted, c.ActionModified, c.ActionOverridden, c.ActionIgnored, c.ActionEscalated}[r.IntN(6)],
			c.HumanActor:      fmt.Sprintf("reviewer-%d", r.IntN(8)),
			c.DecisionEventID: fmt.Sprintf("review-%d", eventSeq)}))
		done := d.Add(10 * time.Minute)
		emit("claims-system", done, done, base(c.LayerBusiness, c.EventBusinessOutcome, map[string]any{
			c.BusinessOutcome: []string{"paid", "denied", "reopened"}[r.IntN(3)], c.BusinessCycleTimeS: 600 + r.Float64()*3600,
			c.BusinessCost: float64(r.IntN(2000)) / 100}))
	}

	// The day before: the baseline of the drift panels and rules.
	for k := -144; k < 0; k++ {
		at := start.Add(time.Duration(k) * 10 * time.Minute)
		for _, wf := range workflows {
			decide(wf, fmt.Sprintf("%s-h%d", wf.name, -k), at.Add(15*time.Second), k, false)
		}
	}
	for k := 0; k < 180; k++ {
		at := start.Add(time.Duration(k) * time.Minute)
		for _, wf := range workflows {
			for _, src := range wf.sources {
				asOf := at.Add(-30 * time.Second)
				if src == "policy-db" && k >= 60 && k < 80 {
					asOf = start.Add(60 * time.Minute).Add(-30 * time.Second)
				}
				attrs := map[string]any{c.DecisionWorkflow: wf.name, c.DecisionLayer: c.LayerData, c.DecisionEvent: c.EventSourceFreshness,
					c.DataSource: src, c.DataAsOf: asOf.Format(time.RFC3339Nano), c.DataAvailable: true,
					c.DataAgeS: at.Sub(asOf).Seconds()}
				if r.Float64() < 0.02 {
					attrs[c.DataAvailable] = false
					attrs[c.DataError] = "dial tcp: connection refused"
					delete(attrs, c.DataAsOf)
					delete(attrs, c.DataAgeS)
				}
				emit("freshness-poller", at, at, attrs)
			}
			if wf.queue != "" {
				emit("freshness-poller", at, at, map[string]any{c.DecisionWorkflow: wf.name, c.DecisionLayer: c.LayerWorkflow,
					c.DecisionEvent: c.EventQueueDepth, c.WorkflowQueue: wf.queue, c.WorkflowQueueDepth: int64(100 + r.IntN(50) + k)})
			}
			for j := 0; j < 3; j++ {
				id := fmt.Sprintf("%s-%d-%d", wf.name, k, j)
				d := at.Add(time.Duration(5+j*15) * time.Second)
				decide(wf, id, d, k, true)
			}
		}
	}

	// Requests: per sender and five minutes of arrival (six hours the
	// day before), in arrival order; what would arrive after End is not sent.
	type key struct {
		sent   time.Time
		sender string
	}
	byKey := map[key][]workloadSignal{}
	for _, s := range sigs {
		if s.at.After(w.End) || s.sent.After(w.End) {
			continue
		}
		batch := 5 * time.Minute
		if s.at.Before(start) {
			batch = 6 * time.Hour
		}
		k := key{s.sent.Truncate(batch), s.sender}
		byKey[k] = append(byKey[k], s)
	}
	keys := make([]key, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if !keys[i].sent.Equal(keys[j].sent) {
			return keys[i].sent.Before(keys[j].sent)
		}
		return keys[i].sender < keys[j].sender
	})
	for _, k := range keys {
		w.Requests = append(w.Requests, requestOf(byKey[k]))
	}
	return w
}

// requestOf puts signals into one request, a resource per sender (the resource
// is part of an event's identity when the producer sets no event ID).
func requestOf(sigs []workloadSignal) plog.Logs {
	ld := plog.NewLogs()
	scopes := map[string]plog.LogRecordSlice{}
	for _, s := range sigs {
		lrs, ok := scopes[s.sender]
		if !ok {
			rl := ld.ResourceLogs().AppendEmpty()
			rl.Resource().Attributes().PutStr("service.name", s.sender)
			lrs = rl.ScopeLogs().AppendEmpty().LogRecords()
			scopes[s.sender] = lrs
		}
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(s.at))
		if err := lr.Attributes().FromRaw(s.attrs); err != nil {
			panic(err) // the workload's own attributes
		}
	}
	return ld
}

// singleRecords flattens requests into one request per record, each keeping its
// resource.
func singleRecords(reqs []plog.Logs) []plog.Logs {
	var out []plog.Logs
	for _, req := range reqs {
		rls := req.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			rl := rls.At(i)
			sls := rl.ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					one := plog.NewLogs()
					orl := one.ResourceLogs().AppendEmpty()
					rl.Resource().CopyTo(orl.Resource())
					osl := orl.ScopeLogs().AppendEmpty()
					sls.At(j).Scope().CopyTo(osl.Scope())
					lrs.At(k).CopyTo(osl.LogRecords().AppendEmpty())
					out = append(out, one)
				}
			}
		}
	}
	return out
}

// mergeRequests puts single-record requests into one request.
func mergeRequests(parts []plog.Logs) plog.Logs {
	ld := plog.NewLogs()
	for _, p := range parts {
		rls := p.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			rls.At(i).CopyTo(ld.ResourceLogs().AppendEmpty())
		}
	}
	return ld
}

// Redelivered is every request of reqs delivered twice, the second time in
// other batch compositions (a producer that resends after a timeout, with
// what it had queued since), and every other record of every third request
// a third time, in reverse order (a retried half of a split batch): each
// copy lands as new rows, since ClickHouse drops only a repeated insert of
// an identical batch, and a record is stored two or three times, so that an
// average over rows would move. Copies never arrive before their original.
func Redelivered(reqs []plog.Logs) []plog.Logs {
	const chunk = 211
	var out []plog.Logs
	var copies []plog.Logs // single records not yet resent
	for i, req := range reqs {
		out = append(out, req)
		recs := singleRecords([]plog.Logs{req})
		copies = append(copies, recs...)
		for len(copies) >= chunk {
			out = append(out, mergeRequests(copies[:chunk]))
			copies = copies[chunk:]
		}
		if i%3 == 2 {
			var again []plog.Logs
			for j := len(recs) - 1; j >= 0; j-- {
				if j%2 == 0 {
					again = append(again, recs[j])
				}
			}
			out = append(out, mergeRequests(again))
		}
	}
	if len(copies) > 0 {
		out = append(out, mergeRequests(copies))
	}
	return out
}

// Alert is one alert instance for InsertAlert: its current state in
// alert_state and its state changes in alert_history.
type Alert struct {
	Name, State string
	Labels      map[string]string // besides alertname
	Annotations map[string]string
	Value       float64
	ActiveAt    time.Time
	FiredAt     time.Time // zero unless firing
}

// InsertAlert writes an alert the way the rule evaluator keeps it:
// alert_state holds its current state, alert_history its pending and (when
// fired) firing changes.
func (s *Store) InsertAlert(t testing.TB, a Alert) {
	t.Helper()
	require.NoError(t, s.insertAlert(context.Background(), a))
}

func (s *Store) insertAlert(ctx context.Context, a Alert) error {
	labels := map[string]string{"alertname": a.Name}
	for k, v := range a.Labels {
		labels[k] = v
	}
	ann := a.Annotations
	if ann == nil {
		ann = map[string]string{}
	}
	var fp uint64 = 14695981039346656037 // FNV-1a of the sorted labels
	for _, k := range sortedLabelKeys(labels) {
		for _, b := range []byte(k + "\x00" + labels[k] + "\x00") {
			fp = (fp ^ uint64(b)) * 1099511628211
		}
	}
	zero := time.Unix(0, 0).UTC()
	fired, updated := zero, a.ActiveAt
	if !a.FiredAt.IsZero() {
		fired, updated = a.FiredAt, a.FiredAt
	}
	if err := s.Conn.Exec(ctx, `INSERT INTO `+s.DB+`.alert_state (rule_key, fingerprint, labels, state, value, active_at, fired_at,
resolved_at, keep_firing_since, updated_at, is_deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`,
		a.Name, fp, labels, a.State, a.Value, a.ActiveAt, fired, zero, zero, updated); err != nil {
		return fmt.Errorf("insert alert %s: %w", a.Name, err)
	}
	type change struct {
		at    time.Time
		state string
	}
	changes := []change{{a.ActiveAt, c.AlertStatePending}}
	if !a.FiredAt.IsZero() {
		changes = append(changes, change{a.FiredAt, c.AlertStateFiring})
	}
	for _, ch := range changes {
		if err := s.Conn.Exec(ctx, `INSERT INTO `+s.DB+`.alert_history (time, alertname, fingerprint, state, value, labels, annotations)
VALUES (?, ?, ?, ?, ?, ?, ?)`, ch.at, a.Name, fp, ch.state, a.Value, labels, ann); err != nil {
			return fmt.Errorf("insert alert %s: %w", a.Name, err)
		}
	}
	return nil
}

func sortedLabelKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Load writes the workload's contracts and requests (reqs: w.Requests or
// Redelivered(w.Requests)), judges its decisions, and adds the alerts a
// rule evaluator would have raised on it: unsupported certainty firing in
// claims-triage since the policy-db episode, and missing context pending
// in loan-underwriting.
func (s *Store) Load(t testing.TB, w *Workload, reqs []plog.Logs) {
	t.Helper()
	require.NoError(t, s.LoadWorkload(context.Background(), w, reqs))
}

// LoadWorkload is Load for a goroutine of its own: it returns its error.
func (s *Store) LoadWorkload(ctx context.Context, w *Workload, reqs []plog.Logs) error {
	cs, err := parseContracts()
	if err != nil {
		return err
	}
	if err := s.WriteContracts(ctx, cs, w.Start); err != nil {
		return err
	}
	for _, req := range reqs {
		if err := s.InsertEvents(ctx, store.LogEvents(req, true)); err != nil {
			return err
		}
	}
	if _, err := s.RefreshVerdicts(ctx); err != nil {
		return err
	}
	for _, a := range []Alert{
		{Name: "DecisionUnsupportedCertainty", State: c.AlertStateFiring,
			Labels:      map[string]string{"workflow": "claims-triage", "severity": "page", "team": "claims-oncall"},
			Annotations: map[string]string{"summary": "31.2% of claims-triage decisions are confident on stale or missing context", "example_decisions": w.Unsupported},
			Value:       0.312, ActiveAt: w.Start.Add(62 * time.Minute), FiredAt: w.Start.Add(64 * time.Minute)},
		{Name: "DecisionMissingContext", State: c.AlertStatePending,
			Labels:      map[string]string{"workflow": "loan-underwriting", "severity": "ticket", "team": "lending-oncall"},
			Annotations: map[string]string{"summary": "document-store reads trail decisions", "example_decisions": w.Pending},
			Value:       0.02, ActiveAt: w.End.Add(-2 * time.Minute)},
	} {
		if err := s.insertAlert(ctx, a); err != nil {
			return err
		}
	}
	return nil
}
