package decisionprocessor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/decisiontrace/decisiontrace/exporters/decisionstoreexporter"
	"github.com/decisiontrace/decisiontrace/internal/chconn"
	"github.com/decisiontrace/decisiontrace/internal/contract"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/store"
	"github.com/decisiontrace/decisiontrace/internal/storetest"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// storeRig is the processor in front of the real decision store: its logs
// and traces pipelines end in the decisionstore exporter, built by its
// factory, writing synchronously (no sending queue, no retries) into a
// migrated database of the test ClickHouse.
type storeRig struct {
	store  *storetest.Store
	logs   processor.Logs
	traces processor.Traces
}

func newStoreRig(t *testing.T, mut func(*Config)) *storeRig {
	t.Helper()
	ctx := context.Background()
	r := &storeRig{store: storetest.New(t, "dt_proc")}

	ef := decisionstoreexporter.NewFactory()
	ecfg := ef.CreateDefaultConfig().(*decisionstoreexporter.Config)
	user, pass := testenv.ClickHouseAuth()
	ecfg.Endpoint = "clickhouse://" + r.store.Addr
	ecfg.Username, ecfg.Password = user, configopaque.String(pass)
	ecfg.Database = r.store.DB
	ecfg.TTL = 0 // the replay's times are fixed and long past: no retention may drop them
	ecfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	ecfg.BackOffConfig.Enabled = false
	require.NoError(t, ecfg.Validate())
	eset := exportertest.NewNopSettings(ef.Type())
	logsOut, err := ef.CreateLogs(ctx, eset, ecfg)
	require.NoError(t, err)
	tracesOut, err := ef.CreateTraces(ctx, eset, ecfg)
	require.NoError(t, err)
	for _, c := range []component.Component{logsOut, tracesOut} {
		require.NoError(t, c.Start(ctx, componenttest.NewNopHost()))
	}
	t.Cleanup(func() {
		_ = logsOut.Shutdown(ctx)
		_ = tracesOut.Shutdown(ctx)
	})

	cfg := createDefaultConfig().(*Config)
	if mut != nil {
		mut(cfg)
	}
	require.NoError(t, cfg.Validate())
	pset := processortest.NewNopSettings(typ)
	pset.ID = component.NewIDWithName(typ, t.Name()) // a rig of its own
	r.logs, err = NewFactory().CreateLogs(ctx, pset, cfg, logsOut)
	require.NoError(t, err)
	r.traces, err = NewFactory().CreateTraces(ctx, pset, cfg, tracesOut)
	require.NoError(t, err)
	require.NoError(t, r.logs.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, r.traces.Start(ctx, componenttest.NewNopHost()))
	// Registered last, so run first: the processors stop before the
	// exporters, which stop before the database is dropped.
	t.Cleanup(func() {
		_ = r.logs.Shutdown(ctx)
		_ = r.traces.Shutdown(ctx)
	})
	return r
}

// ---------------------------------------------------------------------------
// The incident: two workflows under their shipped contracts, eight minutes
// of decisions in which policy-db (required by claims-triage) stops
// updating for three minutes, some reads are truly never sent, some find
// their source unavailable, credit-bureau's reads carry no as_of a fifth of
// the time and are judged by its polled freshness (down for one poll), and
// a share of the outputs is under the confidence floor.

// incidentSpan bounds the decisions' times: under the contracts' default
// max_context_lag (10m), so that while only the outputs are stored every
// decision may still get its context (pending, not missing).
const incidentSpan = 8 * time.Minute

// settledTail is the incident's end in which every decision reads every
// source.
const settledTail = 90 * time.Second

type readSig struct {
	source    string
	asOf      *time.Time
	available *bool
	// explicit reads name decision.layer and decision.event; the others
	// rely on the processor's classification.
	explicit bool
}

type decisionSig struct {
	id, workflow string
	at           time.Time // the model output's own time: the decision time
	confidence   float64
	reads        []readSig // logged 500 ms before the output
	human        string    // a reviewer's action 30 s later, or none
}

func (d *decisionSig) readTime() time.Time { return d.at.Add(-500 * time.Millisecond) }

type pollSig struct {
	source    string
	at        time.Time
	asOf      *time.Time
	available bool
}

type incident struct {
	contracts map[string]*contract.Contract
	decisions []*decisionSig // by time
	polls     []pollSig      // by time
}

func ptr[T any](v T) *T { return &v }

// newIncident generates the replay from t0, deterministically.
func newIncident(t *testing.T, t0 time.Time) *incident {
	t.Helper()
	contracts, err := contract.Load([]string{"../../deploy/contracts/claims-triage.yaml", "../../deploy/contracts/loan-underwriting.yaml"})
	require.NoError(t, err)
	in := &incident{contracts: contracts}
	rng := mrand.New(mrand.NewPCG(10, 2026))
	uniform := func(lo, hi time.Duration) time.Duration {
		ms := lo.Milliseconds() + rng.Int64N(hi.Milliseconds()-lo.Milliseconds())
		return time.Duration(ms) * time.Millisecond
	}
	confidence := func(floor float64) float64 {
		if rng.Float64() < 0.25 {
			return math.Round((0.40+rng.Float64()*(floor-0.41))*100) / 100 // under the floor
		}
		return math.Round((floor+rng.Float64()*(0.99-floor))*100) / 100
	}
	fresh := func(at time.Time, lo, hi time.Duration) readSig {
		return readSig{asOf: ptr(at.Add(-uniform(lo, hi)))}
	}
	unavailable := readSig{available: ptr(false)}

	// policy-db's feed freezes at freeze and comes back three minutes later:
	// its reads keep returning the last update, which turns stale (90 s).
	freeze := t0.Add(2 * time.Minute)
	lastUpdate := freeze.Add(-5 * time.Second)
	claims := func(at time.Time, settled bool) []readSig {
		var rs []readSig
		policy := fresh(at, 5*time.Second, 60*time.Second)
		if !at.Before(freeze) && at.Before(freeze.Add(3*time.Minute)) {
			policy = readSig{asOf: ptr(lastUpdate)}
		}
		rs = append(rs, withSource("policy-db", policy))
		switch u := rng.Float64(); {
		case settled:
			rs = append(rs, withSource("claims-history", fresh(at, time.Minute, 9*time.Minute)))
		case u < 0.04: // never sent
		case u < 0.07:
			rs = append(rs, withSource("claims-history", unavailable))
		case u < 0.10:
			rs = append(rs, withSource("claims-history", fresh(at, 11*time.Minute, 20*time.Minute)))
		default:
			rs = append(rs, withSource("claims-history", fresh(at, time.Minute, 9*time.Minute)))
		}
		if settled || rng.Float64() < 0.9 {
			rs = append(rs, withSource("fraud-signals", fresh(at, 30*time.Second, 8*time.Minute)))
		}
		return rs
	}
	loans := func(at time.Time, settled bool) []readSig {
		var rs []readSig
		switch u := rng.Float64(); {
		case settled:
			rs = append(rs, withSource("credit-bureau", fresh(at, time.Minute, 12*time.Minute)))
		case u < 0.20:
			rs = append(rs, withSource("credit-bureau", readSig{})) // no as_of: judged by the poll
		case u < 0.23:
			rs = append(rs, withSource("credit-bureau", unavailable))
		default:
			rs = append(rs, withSource("credit-bureau", fresh(at, time.Minute, 12*time.Minute)))
		}
		switch u := rng.Float64(); {
		case settled:
			rs = append(rs, withSource("document-store", fresh(at, 10*time.Second, 150*time.Second)))
		case u < 0.03: // never sent
		case u < 0.05:
			rs = append(rs, withSource("document-store", unavailable))
		case u < 0.11:
			rs = append(rs, withSource("document-store", fresh(at, 200*time.Second, 400*time.Second)))
		default:
			rs = append(rs, withSource("document-store", fresh(at, 10*time.Second, 150*time.Second)))
		}
		if settled || rng.Float64() < 0.9 {
			rs = append(rs, withSource("income-verification", fresh(at, time.Minute, 20*time.Minute)))
		}
		return rs
	}
	for _, wf := range []struct {
		name  string
		first time.Duration
		every time.Duration
		reads func(time.Time, bool) []readSig
	}{
		{"claims-triage", 600 * time.Millisecond, 1200 * time.Millisecond, claims},
		{"loan-underwriting", time.Second, 2 * time.Second, loans},
	} {
		floor := contracts[wf.name].ConfidenceFloor
		n := int((incidentSpan - wf.first) / wf.every)
		for i := 0; i < n; i++ {
			at := t0.Add(wf.first + time.Duration(i)*wf.every)
			// The last decisions read everything, so that every source's
			// reads reach well past every earlier decision: an absent read
			// is then missing for good.
			d := &decisionSig{id: fmt.Sprintf("%s-%04d", wf.name, i), workflow: wf.name, at: at,
				confidence: confidence(floor), reads: wf.reads(at, at.Sub(t0) >= incidentSpan-settledTail)}
			for j := range d.reads {
				d.reads[j].explicit = rng.IntN(2) == 0
			}
			if rng.Float64() < 0.3 {
				d.human = []string{conventions.ActionAccepted, conventions.ActionOverridden}[rng.IntN(2)]
			}
			in.decisions = append(in.decisions, d)
		}
	}
	sort.SliceStable(in.decisions, func(i, j int) bool { return in.decisions[i].at.Before(in.decisions[j].at) })

	// credit-bureau is polled every 45 s; one poll finds it down.
	for at := t0.Add(-40 * time.Second); at.Before(t0.Add(incidentSpan)); at = at.Add(45 * time.Second) {
		p := pollSig{source: "credit-bureau", at: at, asOf: ptr(at.Add(-4 * time.Minute)), available: true}
		if !at.Before(t0.Add(4*time.Minute)) && at.Before(t0.Add(4*time.Minute+45*time.Second)) {
			p.asOf, p.available = nil, false
		}
		in.polls = append(in.polls, p)
	}
	return in
}

func withSource(source string, r readSig) readSig {
	r.source = source
	return r
}

// ---------------------------------------------------------------------------
// The ground truth, computed in Go from the generated signals alone, by the
// rules of the dependency contracts.

// judged is what is compared of a verdict.
type judged struct {
	Context              string
	Stale, Missing       string // required sources, sorted, comma-separated
	Pending              string
	StaleSource          string
	ConfidenceLow        bool
	UnsupportedCertainty bool
	Behaviour            string
	ContextSource        string
}

// stored says which signals have reached the store.
type stored struct {
	outputs, reads map[string]bool // by decision ID
	polls          []pollSig
}

// judge gives the verdicts of the decisions whose output is stored. A
// source a decision has no read of is pending until that source's reads
// for the workflow have reached grace past the decision (the store allows
// a little slack for reads stored out of order), or the workflow's
// decisions have moved max_context_lag past it; then it is missing.
func (in *incident) judge(st stored, grace time.Duration) map[string]judged {
	decidedUntil := map[string]time.Time{}
	readUntil := map[string]map[string]time.Time{}
	for _, d := range in.decisions {
		if st.outputs[d.id] && d.at.After(decidedUntil[d.workflow]) {
			decidedUntil[d.workflow] = d.at
		}
		if !st.reads[d.id] {
			continue
		}
		if readUntil[d.workflow] == nil {
			readUntil[d.workflow] = map[string]time.Time{}
		}
		for _, r := range d.reads {
			if d.readTime().After(readUntil[d.workflow][r.source]) {
				readUntil[d.workflow][r.source] = d.readTime()
			}
		}
	}
	out := map[string]judged{}
	for _, d := range in.decisions {
		if !st.outputs[d.id] {
			continue
		}
		c := in.contracts[d.workflow]
		var stale, missing, pending []string
		behaviour := conventions.BehaviourProceed
		worst, staleSource := -1.0, ""
		fromReads, fromPolls := 0, 0
		judgeSource := func(s contract.Source, required bool) {
			var reads []readSig
			if st.reads[d.id] {
				for _, r := range d.reads {
					if r.source == s.Name {
						reads = append(reads, r)
					}
				}
			}
			status := ""
			var age time.Duration
			if len(reads) == 0 {
				status = conventions.ContextPending
				if !readUntil[d.workflow][s.Name].Before(d.at.Add(grace)) || decidedUntil[d.workflow].Sub(d.at) > c.MaxContextLag.D() {
					status = conventions.ContextMissing
				}
			} else {
				// The best read wins: the freshest as_of, then one without
				// as_of; the source is unavailable only if every read said so.
				var asOf *time.Time
				noAsOf := false
				for _, r := range reads {
					switch {
					case r.available != nil && !*r.available:
					case r.asOf != nil:
						if asOf == nil || r.asOf.After(*asOf) {
							asOf = r.asOf
						}
					default:
						noAsOf = true
					}
				}
				if asOf == nil && noAsOf {
					// The latest poll at or before the decision time.
					var poll *pollSig
					for i := range st.polls {
						if p := &st.polls[i]; p.source == s.Name && !p.at.After(d.at) && (poll == nil || p.at.After(poll.at)) {
							poll = p
						}
					}
					if poll != nil && poll.available && poll.asOf != nil {
						asOf = poll.asOf
						fromPolls++
					}
				} else if asOf != nil {
					fromReads++
				}
				switch {
				case asOf == nil:
					status = conventions.ContextMissing
				case d.at.Sub(*asOf) > s.MaxAge.D():
					status, age = conventions.ContextStale, d.at.Sub(*asOf)
				default:
					status = conventions.ContextFresh
				}
			}
			switch status {
			case conventions.ContextStale:
				behaviour = contract.MostSevere(behaviour, s.OnStale)
			case conventions.ContextMissing:
				behaviour = contract.MostSevere(behaviour, s.OnMissing)
			}
			if !required {
				return
			}
			switch status {
			case conventions.ContextStale:
				stale = append(stale, s.Name)
				if ratio := float64(age) / float64(s.MaxAge.D()); ratio > worst || (ratio == worst && s.Name > staleSource) {
					worst, staleSource = ratio, s.Name
				}
			case conventions.ContextMissing:
				missing = append(missing, s.Name)
			case conventions.ContextPending:
				pending = append(pending, s.Name)
			}
		}
		for _, s := range c.Sources.Required {
			judgeSource(s, true)
		}
		for _, s := range c.Sources.Optional {
			judgeSource(s, false)
		}
		j := judged{StaleSource: staleSource}
		switch {
		case len(missing) > 0:
			j.Context = conventions.ContextMissing
		case len(pending) > 0:
			j.Context = conventions.ContextPending
		case len(stale) > 0:
			j.Context = conventions.ContextStale
		default:
			j.Context = conventions.ContextFresh
		}
		j.Stale, j.Missing, j.Pending = joinSorted(stale), joinSorted(missing), joinSorted(pending)
		j.ConfidenceLow = d.confidence < c.ConfidenceFloor
		j.UnsupportedCertainty = !j.ConfidenceLow && (j.Context == conventions.ContextStale || j.Context == conventions.ContextMissing)
		if j.ConfidenceLow {
			behaviour = contract.MostSevere(behaviour, c.OnLowConfidence)
		}
		j.Behaviour = behaviour
		switch {
		case fromReads > 0 && fromPolls > 0:
			j.ContextSource = "reads+polled"
		case fromPolls > 0:
			j.ContextSource = "polled"
		default:
			j.ContextSource = "reads"
		}
		out[d.id] = j
	}
	return out
}

// lateForever is slack no watermark ever covers: only max_context_lag turns
// an absent read missing.
const lateForever = 1000 * time.Hour

func joinSorted(s []string) string {
	s = slices.Clone(s)
	sort.Strings(s)
	return strings.Join(s, ",")
}

func fromStore(vs map[string]store.Verdict) map[string]judged {
	out := make(map[string]judged, len(vs))
	for id, v := range vs {
		out[id] = judged{
			Context: v.Context, Stale: joinSorted(v.StaleSources), Missing: joinSorted(v.MissingSources), Pending: joinSorted(v.PendingSources),
			StaleSource: v.StaleSource, ConfidenceLow: v.ConfidenceLow, UnsupportedCertainty: v.UnsupportedCertainty,
			Behaviour: v.Behaviour, ContextSource: v.ContextSource,
		}
	}
	return out
}

// where lists, sorted, the decisions whose verdict satisfies f.
func where(vs map[string]judged, f func(judged) bool) []string {
	var ids []string
	for id, v := range vs {
		if f(v) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// requireVerdicts compares the store's verdicts with the truth: the sets the
// alerts are made of by decision ID, then every decision field by field.
func requireVerdicts(t *testing.T, s *storetest.Store, want map[string]judged) map[string]judged {
	t.Helper()
	got := fromStore(s.Verdicts(t))
	require.Len(t, got, len(want), "one verdict per decision with an output")
	unsupported := s.IDs(t, "SELECT decision_id FROM {db}.verdicts FINAL WHERE unsupported_certainty ORDER BY decision_id")
	assert.Equal(t, where(want, func(v judged) bool { return v.UnsupportedCertainty }), unsupported, "unsupported certainty, by decision ID")
	for _, ctx := range []string{conventions.ContextMissing, conventions.ContextStale, conventions.ContextPending, conventions.ContextFresh} {
		assert.Equal(t, where(want, func(v judged) bool { return v.Context == ctx }), where(got, func(v judged) bool { return v.Context == ctx }), "context %s", ctx)
	}
	requireEach(t, got, want, nil)
	return got
}

// requireVerdictsWhileLate checks verdicts while some context is still on
// its way: a source a decision has no read of may be pending or missing
// depending on how much slack the store gives reads stored out of order
// (none: early; unlimited: late); every other verdict is exact.
func requireVerdictsWhileLate(t *testing.T, s *storetest.Store, early, late map[string]judged) {
	t.Helper()
	got := fromStore(s.Verdicts(t))
	require.Len(t, got, len(early), "one verdict per decision with an output")
	requireEach(t, got, early, late)
}

func requireEach(t *testing.T, got, want, or map[string]judged) {
	t.Helper()
	var wrong []string
	for id, w := range want {
		g, ok := got[id]
		if ok && (g == w || (or != nil && g == or[id])) {
			continue
		}
		wrong = append(wrong, fmt.Sprintf("%s:\n  want %+v\n  got  %+v", id, w, g))
	}
	sort.Strings(wrong)
	require.Empty(t, wrong, "%d verdicts differ from the truth", len(wrong))
}

// ---------------------------------------------------------------------------
// What is sent, as the services send it: context reads and polls as logs,
// model outputs as GenAI spans, reviewers' actions as logs.

func (in *incident) readsLogs(ds []*decisionSig, polls []pollSig) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "context-gateway")
	sl := rl.ScopeLogs().AppendEmpty()
	for _, p := range polls {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(p.at))
		a := lr.Attributes()
		a.PutStr(conventions.DecisionLayer, conventions.LayerData)
		a.PutStr(conventions.DecisionEvent, conventions.EventSourceFreshness)
		a.PutStr(conventions.DataSource, p.source)
		a.PutBool(conventions.DataAvailable, p.available)
		if p.asOf != nil {
			a.PutStr(conventions.DataAsOf, p.asOf.Format(time.RFC3339Nano))
		}
	}
	for _, d := range ds {
		for _, r := range d.reads {
			lr := sl.LogRecords().AppendEmpty()
			lr.SetTimestamp(pcommon.NewTimestampFromTime(d.readTime()))
			a := lr.Attributes()
			a.PutStr(conventions.DecisionID, d.id)
			a.PutStr(conventions.DecisionWorkflow, d.workflow)
			if r.explicit {
				a.PutStr(conventions.DecisionLayer, conventions.LayerData)
				a.PutStr(conventions.DecisionEvent, conventions.EventContextRead)
			}
			a.PutStr(conventions.DataSource, r.source)
			if r.asOf != nil {
				a.PutStr(conventions.DataAsOf, r.asOf.Format(time.RFC3339Nano))
			}
			if r.available != nil {
				a.PutBool(conventions.DataAvailable, *r.available)
			}
		}
	}
	return ld
}

func (in *incident) outputSpans(ds []*decisionSig) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "model-gateway")
	ss := rs.ScopeSpans().AppendEmpty()
	for _, d := range ds {
		sp := ss.Spans().AppendEmpty()
		sp.SetName("chat " + d.workflow + "-model")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(d.at))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(d.at.Add(800 * time.Millisecond)))
		a := sp.Attributes()
		a.PutStr(conventions.DecisionID, d.id)
		a.PutStr(conventions.DecisionWorkflow, d.workflow)
		a.PutStr(conventions.GenAIRequestModel, d.workflow+"-model")
		a.PutStr(conventions.ModelVersion, "2026.02.1")
		a.PutDouble(conventions.ModelConfidence, d.confidence)
	}
	return td
}

func (in *incident) humanLogs(ds []*decisionSig) plog.Logs {
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	for _, d := range ds {
		if d.human == "" {
			continue
		}
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(d.at.Add(30 * time.Second)))
		a := lr.Attributes()
		a.PutStr(conventions.DecisionID, d.id)
		a.PutStr(conventions.DecisionWorkflow, d.workflow)
		a.PutStr(conventions.HumanAction, d.human)
		a.PutStr(conventions.HumanActor, "reviewer-7")
	}
	return ld
}

// chunks cuts the decisions into consecutive requests' worth, each with the
// polls up to its last decision's time (a poll never reaches the store
// after a decision it judges).
func (in *incident) chunks(size int) (ds [][]*decisionSig, polls [][]pollSig) {
	next := 0
	for i := 0; i < len(in.decisions); i += size {
		chunk := in.decisions[i:min(i+size, len(in.decisions))]
		until := chunk[len(chunk)-1].at
		var ps []pollSig
		for next < len(in.polls) && (!in.polls[next].at.After(until) || i+size >= len(in.decisions)) {
			ps = append(ps, in.polls[next])
			next++
		}
		ds, polls = append(ds, chunk), append(polls, ps)
	}
	return ds, polls
}

// The incident-replay exactness test, through the processor into the
// decision store: the decisions ClickHouse judges unsupported certainty,
// missing or stale are exactly those the contracts make so, whichever
// order the signals arrive in, and while context is late they are pending.
func TestIntegrationIncidentReplayVerdictsInTheStore(t *testing.T) {
	t0 := time.Date(2026, time.March, 2, 9, 0, 0, 0, time.UTC)
	in := newIncident(t, t0)

	all := stored{outputs: map[string]bool{}, reads: map[string]bool{}, polls: in.polls}
	for _, d := range in.decisions {
		all.outputs[d.id], all.reads[d.id] = true, true
	}
	truth := in.judge(all, 0)
	// Once everything is stored, no slack the store may give reads stored
	// out of order changes a verdict.
	require.Equal(t, truth, in.judge(all, time.Minute))

	// The incident has every kind of decision the alerts are about.
	count := func(f func(d *decisionSig, v judged) bool) int {
		n := 0
		for _, d := range in.decisions {
			if f(d, truth[d.id]) {
				n++
			}
		}
		return n
	}
	require.Zero(t, count(func(_ *decisionSig, v judged) bool { return v.Context == conventions.ContextPending }), "with everything stored nothing waits")
	require.Greater(t, count(func(_ *decisionSig, v judged) bool { return v.UnsupportedCertainty }), 30)
	require.Greater(t, count(func(d *decisionSig, v judged) bool {
		return v.Context == conventions.ContextStale && v.StaleSource == "policy-db"
	}), 30, "the frozen feed")
	require.Greater(t, count(func(_ *decisionSig, v judged) bool {
		return v.Context == conventions.ContextStale && v.StaleSource != "policy-db"
	}), 5)
	require.Greater(t, count(func(_ *decisionSig, v judged) bool { return v.Context == conventions.ContextStale && v.ConfidenceLow }), 5, "low confidence on stale context is not unsupported certainty")
	require.Greater(t, count(func(d *decisionSig, v judged) bool {
		return v.Context == conventions.ContextMissing && !slices.ContainsFunc(d.reads, func(r readSig) bool { return strings.Contains(v.Missing, r.source) })
	}), 10, "reads never sent")
	require.Greater(t, count(func(d *decisionSig, v judged) bool {
		return slices.ContainsFunc(d.reads, func(r readSig) bool { return r.available != nil && strings.Contains(v.Missing, r.source) })
	}), 10, "sources found unavailable")
	require.Greater(t, count(func(d *decisionSig, v judged) bool {
		return v.ContextSource == "reads+polled"
	}), 10, "credit-bureau judged by its polls")
	require.Greater(t, count(func(d *decisionSig, v judged) bool {
		return slices.ContainsFunc(d.reads, func(r readSig) bool { return r.source == "credit-bureau" && r.asOf == nil && r.available == nil }) &&
			strings.Contains(v.Missing, "credit-bureau")
	}), 0, "a read without as_of while the poll found the bureau down")
	require.Greater(t, count(func(_ *decisionSig, v judged) bool { return v.Context == conventions.ContextFresh && !v.ConfidenceLow }), 100)

	t.Logf("%d decisions: %d unsupported certainty, %d missing, %d stale, %d under the floor",
		len(in.decisions), len(where(truth, func(v judged) bool { return v.UnsupportedCertainty })),
		len(where(truth, func(v judged) bool { return v.Context == conventions.ContextMissing })),
		len(where(truth, func(v judged) bool { return v.Context == conventions.ContextStale })),
		len(where(truth, func(v judged) bool { return v.ConfidenceLow })))

	var inOrder map[string]judged
	t.Run("each decision's signals in order", func(t *testing.T) {
		r := newStoreRig(t, nil)
		ctx := context.Background()
		r.store.Contracts(t, t0, "../../deploy/contracts/claims-triage.yaml", "../../deploy/contracts/loan-underwriting.yaml")
		ds, polls := in.chunks(25)
		sent := stored{outputs: map[string]bool{}, reads: map[string]bool{}}
		for i := range ds {
			require.NoError(t, r.logs.ConsumeLogs(ctx, in.readsLogs(ds[i], polls[i])))
			require.NoError(t, r.traces.ConsumeTraces(ctx, in.outputSpans(ds[i])))
			require.NoError(t, r.logs.ConsumeLogs(ctx, in.humanLogs(ds[i])))
			for _, d := range ds[i] {
				sent.outputs[d.id], sent.reads[d.id] = true, true
			}
			sent.polls = append(sent.polls, polls[i]...)
			if i == len(ds)/2 {
				// Halfway: the decisions so far are judged; the last ones'
				// absent reads may still come.
				r.store.Refresh(t)
				requireVerdictsWhileLate(t, r.store, in.judge(sent, 0), in.judge(sent, lateForever))
			}
		}
		r.store.Refresh(t)
		inOrder = requireVerdicts(t, r.store, truth)
	})

	t.Run("outputs first, context minutes later", func(t *testing.T) {
		r := newStoreRig(t, nil)
		ctx := context.Background()
		r.store.Contracts(t, t0, "../../deploy/contracts/claims-triage.yaml", "../../deploy/contracts/loan-underwriting.yaml")
		ds, polls := in.chunks(40)
		sent := stored{outputs: map[string]bool{}, reads: map[string]bool{}}
		for i := range ds {
			require.NoError(t, r.traces.ConsumeTraces(ctx, in.outputSpans(ds[i])))
			for _, d := range ds[i] {
				sent.outputs[d.id] = true
			}
		}
		// Every output is stored, no context yet: every decision waits for
		// it, none is missing, none is unsupported certainty.
		r.store.Refresh(t)
		pending := requireVerdicts(t, r.store, in.judge(sent, 0))
		require.Len(t, where(pending, func(v judged) bool { return v.Context == conventions.ContextPending }), len(in.decisions))

		for i := range ds {
			require.NoError(t, r.logs.ConsumeLogs(ctx, in.readsLogs(ds[i], polls[i])))
			require.NoError(t, r.logs.ConsumeLogs(ctx, in.humanLogs(ds[i])))
			for _, d := range ds[i] {
				sent.reads[d.id] = true
			}
			sent.polls = append(sent.polls, polls[i]...)
			if i == len(ds)/2 {
				r.store.Refresh(t)
				requireVerdictsWhileLate(t, r.store, in.judge(sent, 0), in.judge(sent, lateForever))
			}
		}
		r.store.Refresh(t)
		got := requireVerdicts(t, r.store, truth)
		if inOrder != nil {
			assert.Equal(t, inOrder, got, "the same verdicts whatever the order")
		}
	})
}

// Identity reconciliation from a ClickHouse alias table: a change in the
// table takes effect without a restart, and identifiers nobody can map are
// stored marked as unresolved, so inconsistent state is measurable.
func TestIntegrationAliasTableChangeTakesEffectWithoutRestart(t *testing.T) {
	addr := testenv.ClickHouse(t)
	user, pass := testenv.ClickHouseAuth()
	ctx := context.Background()
	admin, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Username: user, Password: pass}})
	require.NoError(t, err)
	defer admin.Close()
	var b [4]byte
	_, _ = rand.Read(b[:])
	aliasDB := "dt_alias_" + hex.EncodeToString(b[:])
	require.NoError(t, admin.Exec(ctx, "CREATE DATABASE "+aliasDB))
	t.Cleanup(func() { _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+aliasDB+" SYNC") })
	require.NoError(t, admin.Exec(ctx, "CREATE TABLE "+aliasDB+".entity_aliases (system String, local_id String, canonical_id String) ENGINE = MergeTree ORDER BY (system, local_id)"))
	require.NoError(t, admin.Exec(ctx, "INSERT INTO "+aliasDB+".entity_aliases VALUES ('crm', 'C-9', 'customer-9')"))

	r := newStoreRig(t, func(c *Config) {
		table := AliasTableConfig{ClientConfig: chconn.NewClientConfig(), Table: aliasDB + ".entity_aliases"}
		table.Endpoint, table.Username, table.Password = "clickhouse://"+addr, user, configopaque.String(pass)
		c.Aliases.ClickHouse = configoptional.Some(table)
		c.Aliases.ReloadInterval = time.Hour // reloaded by hand below, as the loop would
	})
	instances.Lock()
	dp := instances.m[component.NewIDWithName(typ, t.Name())]
	instances.Unlock()
	require.NotNil(t, dp)
	send := func(id, entity string) {
		require.NoError(t, r.logs.ConsumeLogs(ctx, contextRead(id, "policy-db", t0,
			map[string]any{conventions.DataEntitySystem: "crm", conventions.DataEntityID: entity})))
	}
	// The loop reads the table once at start; reloading here as well makes
	// sure it has been read before the first record.
	dp.reloadAliases(ctx)
	send("probe", "C-9")
	assert.Equal(t, uint64(1), r.store.Count(t, "SELECT count() FROM {db}.events WHERE decision_id = 'probe' AND entity_canonical_id = 'customer-9'"))

	send("a1", "C-10")
	assert.Equal(t, uint64(1), r.store.Count(t, "SELECT count() FROM {db}.events WHERE decision_id = 'a1' AND entity_resolved = false AND entity_canonical_id = ''"),
		"an identifier no map knows is stored, marked unresolved")

	require.NoError(t, admin.Exec(ctx, "INSERT INTO "+aliasDB+".entity_aliases VALUES ('crm', 'C-10', 'customer-10')"))
	dp.reloadAliases(ctx)
	send("a2", "C-10")
	assert.Equal(t, uint64(1), r.store.Count(t, "SELECT count() FROM {db}.events WHERE decision_id = 'a2' AND entity_resolved AND entity_canonical_id = 'customer-10'"),
		"the new alias applies without a restart")
}
