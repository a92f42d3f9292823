package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/decisiontrace/decisiontrace/internal/contract"
	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The decisions of the verdict scenario happen at fixed times far from
// today: verdicts depend on event time only.
var v0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

// freshStore is an empty migrated store on the test ClickHouse; settings
// apply to every query of its connection.
func freshStore(t *testing.T, settings ...clickhouse.Settings) *Store {
	t.Helper()
	addr := testenv.ClickHouse(t)
	user, pass := testenv.ClickHouseAuth()
	opts := &clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Username: user, Password: pass}}
	if len(settings) > 0 {
		opts.Settings = settings[0]
	}
	conn, err := clickhouse.Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	s := New(conn, testenv.Database(t, addr, "dt_store"), Layout{}).AtRest()
	_, _, err = s.Migrate(context.Background())
	require.NoError(t, err)
	return s
}

// logs builds one request of log records.
type logs struct{ ld plog.Logs }

func newLogs() *logs { return &logs{plog.NewLogs()} }

func (l *logs) add(at time.Time, attrs map[string]any) *logs {
	if l.ld.ResourceLogs().Len() == 0 {
		l.ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	}
	lr := l.ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
	if err := lr.Attributes().FromRaw(attrs); err != nil {
		panic(err)
	}
	return l
}

func output(id string, at time.Time, conf float64) (time.Time, map[string]any) {
	return at, map[string]any{c.DecisionID: id, c.DecisionWorkflow: "claims", c.DecisionLayer: c.LayerModel,
		c.DecisionEvent: c.EventModelOutput, c.ModelName: "triage", c.ModelVersion: "v1", c.ModelConfidence: conf}
}

// read is a context read of source by decision id at time at; asOf nil
// means a read without as_of.
func read(id, source string, at time.Time, asOf *time.Time, available bool) (time.Time, map[string]any) {
	a := map[string]any{c.DecisionID: id, c.DecisionWorkflow: "claims", c.DecisionLayer: c.LayerData,
		c.DecisionEvent: c.EventContextRead, c.DataSource: source, c.DataAvailable: available}
	if asOf != nil {
		a[c.DataAsOf] = asOf.Format(time.RFC3339Nano)
	}
	return at, a
}

func ago(at time.Time, d time.Duration) *time.Time { x := at.Add(-d); return &x }

func poll(source string, at, asOf time.Time) (time.Time, map[string]any) {
	return at, map[string]any{c.DecisionLayer: c.LayerData, c.DecisionEvent: c.EventSourceFreshness,
		c.DataSource: source, c.DataAsOf: asOf.Format(time.RFC3339Nano), c.DataAvailable: true}
}

const claimsContract = `
workflow: claims
owner: claims-platform
sources:
  required:
    - {name: a, max_age: 90s, on_stale: escalate, on_missing: abstain}
    - {name: b, max_age: 10m, on_stale: degrade, on_missing: escalate}
  optional:
    - {name: c, max_age: 5m, on_stale: warn, on_missing: proceed_with_limits}
confidence_floor: 0.7
on_low_confidence: escalate
`

func parseContract(t *testing.T, yaml string) map[string]*contract.Contract {
	t.Helper()
	ct, err := contract.Parse("claims.yaml", []byte(yaml))
	require.NoError(t, err)
	return map[string]*contract.Contract{ct.Workflow: ct}
}

func (s *Store) write(t *testing.T, l *logs) {
	t.Helper()
	require.NoError(t, s.InsertEvents(context.Background(), LogEvents(l.ld, true)))
}

// stored reads every stored verdict (verdicts FINAL), by decision.
func (s *Store) stored(t *testing.T) map[string]Verdict {
	t.Helper()
	return s.verdictsFrom(t, s.db+".verdicts FINAL")
}

// live judges every decision now (decision_verdicts).
func (s *Store) live(t *testing.T) map[string]Verdict {
	t.Helper()
	return s.verdictsFrom(t, s.db+".decision_verdicts")
}

func (s *Store) verdictsFrom(t *testing.T, from string) map[string]Verdict {
	t.Helper()
	rows, err := s.conn.Query(context.Background(), "SELECT "+strings.Join(verdictColumns, ", ")+" FROM "+from)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]Verdict{}
	for rows.Next() {
		var v Verdict
		require.NoError(t, rows.Scan(&v.DecisionID, &v.Workflow, &v.DecisionTime, &v.ModelName, &v.ModelVersion, &v.Confidence, &v.ContractHash,
			&v.Context, &v.StaleSources, &v.MissingSources, &v.PendingSources, &v.StaleSource, &v.StaleAgeS, &v.StaleBudgetS,
			&v.ConfidenceLow, &v.ConfidenceFloor, &v.UnsupportedCertainty, &v.Behaviour, &v.ContextSource))
		v.DecisionTime = v.DecisionTime.UTC()
		out[v.DecisionID] = v
	}
	require.NoError(t, rows.Err())
	return out
}

// refresh judges what changed and checks that what is stored is what the
// store says now, decision by decision.
func (s *Store) refresh(t *testing.T) map[string]Verdict {
	t.Helper()
	_, err := s.RefreshVerdicts(context.Background())
	require.NoError(t, err)
	stored := s.stored(t)
	assert.Equal(t, s.live(t), stored, "the refreshed verdicts are the store's verdicts")
	return stored
}

type want struct {
	context, behaviour   string
	stale, missing, pend []string
	unsupported, low     bool
	origin               string
}

func check(t *testing.T, got map[string]Verdict, id string, w want) {
	t.Helper()
	v, ok := got[id]
	if !assert.True(t, ok, "verdict of %s", id) {
		return
	}
	nz := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	assert.Equal(t, w.context, v.Context, "%s context", id)
	assert.Equal(t, w.behaviour, v.Behaviour, "%s behaviour", id)
	assert.Equal(t, nz(w.stale), nz(v.StaleSources), "%s stale sources", id)
	assert.Equal(t, nz(w.missing), nz(v.MissingSources), "%s missing sources", id)
	assert.Equal(t, nz(w.pend), nz(v.PendingSources), "%s pending sources", id)
	assert.Equal(t, w.unsupported, v.UnsupportedCertainty, "%s unsupported certainty", id)
	assert.Equal(t, w.low, v.ConfidenceLow, "%s confidence low", id)
	if w.origin != "" {
		assert.Equal(t, w.origin, v.ContextSource, "%s context source", id)
	}
}

func TestIntegrationVerdictsFromTheStore(t *testing.T) {
	checkVerdictsThroughStore(t, freshStore(t))
}

// ClickHouse 24.8 still lets a server run the old query planner
// (allow_experimental_analyzer = 0), which refuses some SQL the analyzer
// takes; the schema and its verdicts must work on both.
func TestIntegrationVerdictsOnTheOldQueryPlanner(t *testing.T) {
	checkVerdictsThroughStore(t, freshStore(t, clickhouse.Settings{"allow_experimental_analyzer": 0, "compatibility": "24.8"}))
}

// checkVerdictsThroughStore writes a workflow's decisions in several
// requests, out of order, and checks each verdict the store derives after
// every step; it runs on one server and through a cluster's Distributed
// tables.
func checkVerdictsThroughStore(t *testing.T, s *Store) {
	ctx := context.Background()
	require.NoError(t, s.WriteContracts(ctx, parseContract(t, claimsContract), v0))

	m := func(d time.Duration) time.Time { return v0.Add(d) }
	fresh := func(id string, at time.Time, l *logs) {
		l.add(read(id, "a", at.Add(-time.Second), ago(at, 30*time.Second), true))
		l.add(read(id, "b", at.Add(-time.Second), ago(at, 5*time.Minute), true))
		l.add(read(id, "c", at.Add(-time.Second), ago(at, time.Minute), true))
	}
	// Model outputs arrive before their context, in their own request.
	outs := newLogs().
		add(output("fresh", m(0), 0.9)).
		add(output("stale", m(time.Minute), 0.9)).
		add(output("low", m(2*time.Minute), 0.5)).
		add(output("unavailable", m(3*time.Minute), 0.9)).
		add(output("polled", m(4*time.Minute), 0.9)).
		add(output("unread", m(6*time.Minute), 0.9)).
		add(output("late", m(9*time.Minute), 0.9))
	s.write(t, outs)
	got := s.refresh(t)
	for _, id := range []string{"fresh", "stale", "unavailable", "polled", "unread", "late"} {
		check(t, got, id, want{context: c.ContextPending, behaviour: c.BehaviourProceed, pend: []string{"a", "b"}})
	}
	check(t, got, "low", want{context: c.ContextPending, behaviour: c.BehaviourEscalate, pend: []string{"a", "b"}, low: true})

	// The context arrives, minutes late and in another request.
	ctxReads := newLogs()
	fresh("fresh", m(0), ctxReads)
	ctxReads.add(read("stale", "a", m(time.Minute), ago(m(time.Minute), 10*time.Minute), true)).
		add(read("stale", "b", m(time.Minute), ago(m(time.Minute), time.Minute), true)).
		add(read("stale", "c", m(time.Minute), ago(m(time.Minute), time.Minute), true))
	fresh("low", m(2*time.Minute), ctxReads)
	ctxReads.add(read("unavailable", "a", m(3*time.Minute), nil, false)).
		add(read("unavailable", "b", m(3*time.Minute), ago(m(3*time.Minute), time.Minute), true)).
		add(read("unavailable", "c", m(3*time.Minute), ago(m(3*time.Minute), time.Minute), true))
	// A read without as_of is judged by the poll at or before the decision,
	// not by a later one.
	ctxReads.add(read("polled", "a", m(4*time.Minute), nil, true)).
		add(read("polled", "b", m(4*time.Minute), ago(m(4*time.Minute), time.Minute), true)).
		add(read("polled", "c", m(4*time.Minute), ago(m(4*time.Minute), time.Minute), true)).
		add(poll("a", m(3*time.Minute+30*time.Second), m(3*time.Minute+20*time.Second))).
		add(poll("a", m(5*time.Minute), m(-time.Hour)))
	// "unread" read a and c but not b, "late" only a so far; the reads of b
	// have reached 8m (a decision at 8m read everything).
	ctxReads.add(read("unread", "a", m(6*time.Minute), ago(m(6*time.Minute), time.Second), true)).
		add(read("unread", "c", m(6*time.Minute), ago(m(6*time.Minute), time.Second), true)).
		add(read("late", "a", m(9*time.Minute), ago(m(9*time.Minute), time.Second), true)).
		add(read("late", "c", m(9*time.Minute), ago(m(9*time.Minute), time.Second), true)).
		add(output("at8", m(8*time.Minute), 0.95))
	fresh("at8", m(8*time.Minute), ctxReads)
	s.write(t, ctxReads)
	got = s.refresh(t)
	check(t, got, "fresh", want{context: c.ContextFresh, behaviour: c.BehaviourProceed, origin: "reads"})
	check(t, got, "stale", want{context: c.ContextStale, behaviour: c.BehaviourEscalate, stale: []string{"a"}, unsupported: true})
	assert.Equal(t, "a", got["stale"].StaleSource)
	assert.InDelta(t, 600, *got["stale"].StaleAgeS, 1e-6)
	assert.InDelta(t, 90, *got["stale"].StaleBudgetS, 1e-6)
	check(t, got, "low", want{context: c.ContextFresh, behaviour: c.BehaviourEscalate, low: true})
	check(t, got, "unavailable", want{context: c.ContextMissing, behaviour: c.BehaviourAbstain, missing: []string{"a"}, unsupported: true})
	check(t, got, "polled", want{context: c.ContextFresh, behaviour: c.BehaviourProceed, origin: "reads+polled"})
	check(t, got, "unread", want{context: c.ContextMissing, behaviour: c.BehaviourEscalate, missing: []string{"b"}, unsupported: true})
	check(t, got, "late", want{context: c.ContextPending, behaviour: c.BehaviourProceed, pend: []string{"b"}})
	check(t, got, "at8", want{context: c.ContextFresh, behaviour: c.BehaviourProceed})

	// Nothing new: no watermark can have moved, so the refresh judges
	// nothing, the pending decision included (a paused workflow costs no
	// judging), and every verdict stands.
	s.margin = 0
	st, err := s.RefreshVerdicts(ctx)
	require.NoError(t, err)
	assert.Zero(t, st.Statements, "statements of a refresh with nothing new")
	assert.Equal(t, 1, st.Pending, "workflows with pending decisions")
	assert.Equal(t, got, s.stored(t))
	s.margin = refreshMargin

	// late's read of b arrives: pending turns fresh, nothing else moves.
	s.write(t, newLogs().add(read("late", "b", m(9*time.Minute), ago(m(9*time.Minute), time.Minute), true)))
	got = s.refresh(t)
	check(t, got, "late", want{context: c.ContextFresh, behaviour: c.BehaviourProceed})
	check(t, got, "unread", want{context: c.ContextMissing, behaviour: c.BehaviourEscalate, missing: []string{"b"}, unsupported: true})

	// A new contract version takes effect at 15m: later decisions are
	// judged by it, earlier ones keep theirs. The reads of b stop: a
	// decision at 16m stays pending until the decisions move on by more
	// than max_context_lag (10m), then it is missing.
	strict := strings.Replace(claimsContract, "confidence_floor: 0.7", "confidence_floor: 0.95", 1)
	require.NoError(t, s.WriteContracts(ctx, parseContract(t, strict), m(15*time.Minute)))
	l := newLogs().add(output("v2", m(16*time.Minute), 0.9)).
		add(read("v2", "a", m(16*time.Minute), ago(m(16*time.Minute), time.Second), true)).
		add(read("v2", "c", m(16*time.Minute), ago(m(16*time.Minute), time.Second), true))
	s.write(t, l)
	got = s.refresh(t)
	check(t, got, "v2", want{context: c.ContextPending, behaviour: c.BehaviourEscalate, pend: []string{"b"}, low: true})
	assert.Equal(t, 0.95, got["v2"].ConfidenceFloor)
	assert.Equal(t, 0.7, got["fresh"].ConfidenceFloor, "decided under the contract in force then")
	assert.NotEqual(t, got["v2"].ContractHash, got["fresh"].ContractHash)

	s.write(t, newLogs().add(output("after", m(26*time.Minute+time.Second), 0.99)))
	got = s.refresh(t)
	check(t, got, "v2", want{context: c.ContextMissing, behaviour: c.BehaviourEscalate, missing: []string{"b"}, low: true})

	// The write of an identical contract changes nothing; everything is as
	// judged.
	require.NoError(t, s.WriteContracts(ctx, parseContract(t, strict), m(40*time.Minute)))
	var activations uint64
	require.NoError(t, s.conn.QueryRow(ctx, "SELECT count() FROM "+s.db+".contracts FINAL").Scan(&activations))
	assert.Equal(t, uint64(2), activations)
	before := s.stored(t)
	s.refresh(t)
	assert.Equal(t, before, s.stored(t))

	var lag float64
	require.NoError(t, s.conn.QueryRow(ctx, "SELECT lag_s FROM "+s.db+".read_lag WHERE workflow = 'claims' AND source = 'b'").Scan(&lag))
	assert.InDelta(t, (17*time.Minute + time.Second).Seconds(), lag, 1e-6, "b's reads (9m) trail the decisions (26m01s)")
}

func TestIntegrationVerdictsSameInEveryArrivalOrderAndDelivery(t *testing.T) {
	// One workflow's decisions, written three ways: in order, one request;
	// context after outputs; and every event twice, in other batches.
	var events []struct {
		at    time.Time
		attrs map[string]any
	}
	addEv := func(at time.Time, attrs map[string]any) {
		events = append(events, struct {
			at    time.Time
			attrs map[string]any
		}{at, attrs})
	}
	for i := 0; i < 60; i++ {
		id := "d-" + strings.Repeat("x", i%3) + string(rune('A'+i%26)) + string(rune('a'+i/26))
		at := v0.Add(time.Duration(i) * 7 * time.Second)
		addEv(output(id, at, 0.5+float64(i%5)/10))
		age := time.Duration(i%4) * 40 * time.Second // 0..120s: some over a's 90s budget
		// a is absent for every 11th decision but the last few (a later
		// read of a must pass a decision before its own counts as missing).
		if i%11 != 0 || i >= 50 {
			addEv(read(id, "a", at.Add(-time.Second), ago(at, age), i%13 != 0))
		}
		addEv(read(id, "b", at.Add(-time.Second), ago(at, time.Minute), true))
		addEv(at.Add(time.Minute), map[string]any{c.DecisionID: id, c.DecisionWorkflow: "claims", c.DecisionLayer: c.LayerHuman,
			c.DecisionEvent: c.EventHumanAction, c.HumanAction: []string{"accepted", "overridden"}[i%2], c.DecisionEventID: id + "/human"})
	}
	judge := func(batches [][]int) (map[string]Verdict, []string) {
		s := freshStore(t)
		require.NoError(t, s.WriteContracts(context.Background(), parseContract(t, claimsContract), v0))
		for _, b := range batches {
			l := newLogs()
			for _, i := range b {
				l.add(events[i].at, events[i].attrs)
			}
			s.write(t, l)
		}
		got := s.refresh(t)
		rows, err := s.conn.Query(context.Background(), "SELECT decision_id, layers_seen, events, human_action FROM "+s.db+".decision_summary ORDER BY decision_id")
		require.NoError(t, err)
		defer rows.Close()
		var summary []string
		for rows.Next() {
			var id string
			var layers []string
			var n uint64
			var action *string
			require.NoError(t, rows.Scan(&id, &layers, &n, &action))
			summary = append(summary, fmt.Sprintf("%s %v %d %s", id, layers, n, *action))
		}
		return got, summary
	}
	all := make([]int, len(events))
	for i := range all {
		all[i] = i
	}
	inOrder, summary := judge([][]int{all})

	var outputsFirst, contextAfter []int
	for i, e := range events {
		if e.attrs[c.DecisionEvent] == c.EventModelOutput {
			outputsFirst = append(outputsFirst, i)
		} else {
			contextAfter = append(contextAfter, i)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(contextAfter)))
	reordered, summary2 := judge([][]int{outputsFirst, contextAfter})

	var odd, even []int
	for i := range events {
		if i%2 == 0 {
			even = append(even, i)
		} else {
			odd = append(odd, i)
		}
	}
	// Every event twice, the second time in other requests than the first.
	twice, summary3 := judge([][]int{all, odd, even})

	require.Len(t, inOrder, 60)
	contexts := map[string]int{}
	for _, v := range inOrder {
		contexts[v.Context]++
	}
	assert.Positive(t, contexts[c.ContextFresh])
	assert.Positive(t, contexts[c.ContextStale])
	assert.Positive(t, contexts[c.ContextMissing])
	assert.Zero(t, contexts[c.ContextPending], "every read is in")
	assert.Equal(t, inOrder, reordered, "context after the outputs")
	assert.Equal(t, inOrder, twice, "every event delivered twice")
	assert.Equal(t, summary, summary2)
	assert.Equal(t, summary, summary3, "the rollup counts each event once")
}

// TestIntegrationLaterReadsStoredFirstMakeNothingMissing: two export
// consumers (or two collectors) store consecutive requests of context
// reads in either order. A request of later reads stored before the one
// carrying a decision's reads leaves that decision pending, not missing,
// however far it moves the watermark (no missing-context or
// unsupported-certainty verdict comes and goes while a backlog drains); a
// read that is truly absent is missing once the watermark that passed it
// has stood for the hold. On a new database and on one that version 8
// left, whose refreshes recorded no watermarks.
func TestIntegrationLaterReadsStoredFirstMakeNothingMissing(t *testing.T) {
	for _, from := range []int{0, 8} {
		t.Run(fmt.Sprintf("from version %d", from), func(t *testing.T) {
			s := freshStore(t)
			s.hold = time.Second
			ctx := context.Background()
			if from > 0 {
				rebuildAt(t, s, from)
				require.NoError(t, s.conn.Exec(ctx, "INSERT INTO "+s.db+".verdict_refreshes (refreshed_until, pending_floors) VALUES (now64(3) - 3600, map('claims', ?))", v0))
				_, to, err := s.Migrate(ctx)
				require.NoError(t, err)
				require.Equal(t, Latest(), to)
			}
			require.NoError(t, s.WriteContracts(ctx, parseContract(t, claimsContract), v0))
			at := func(i int) time.Time { return v0.Add(time.Duration(i) * 10 * time.Second) }
			reads := func(from, to int, skip string) *logs {
				l := newLogs()
				for i := from; i < to; i++ {
					id := fmt.Sprint("d", i)
					for _, src := range []string{"a", "b"} {
						if id+src != skip {
							l.add(read(id, src, at(i).Add(-time.Second), ago(at(i), time.Second), true))
						}
					}
				}
				return l
			}
			outputs := newLogs()
			for i := 0; i < 9; i++ {
				outputs.add(output(fmt.Sprint("d", i), at(i), 0.9))
			}
			s.write(t, outputs)
			s.refresh(t)
			// Three requests of reads, 30 s of decisions each; d1 never
			// read b. The second request is stored before the first, and
			// its reads are past d0 to d2 by more than the grace.
			s.write(t, reads(3, 6, ""))
			got := s.refresh(t)
			for i := 0; i < 3; i++ {
				check(t, got, fmt.Sprint("d", i), want{context: c.ContextPending, behaviour: c.BehaviourProceed, pend: []string{"a", "b"}})
			}
			// Had the first request been lost, the watermark that passed
			// d0 and d1 (the reads reach 49 s; d2 is at 20 s, within the
			// grace) decides once it has stood for the hold.
			time.Sleep(1100 * time.Millisecond)
			got = s.refresh(t)
			for i := 0; i < 2; i++ {
				check(t, got, fmt.Sprint("d", i), want{context: c.ContextMissing, behaviour: c.BehaviourEscalate, missing: []string{"a", "b"}, unsupported: true})
			}
			check(t, got, "d2", want{context: c.ContextPending, behaviour: c.BehaviourProceed, pend: []string{"a", "b"}})
			s.write(t, reads(0, 3, "d1b"))
			s.write(t, reads(6, 9, ""))
			got = s.refresh(t)
			check(t, got, "d1", want{context: c.ContextMissing, behaviour: c.BehaviourEscalate, missing: []string{"b"}, unsupported: true})
			for _, i := range []int{0, 2, 3, 4, 5, 6, 7, 8} {
				check(t, got, fmt.Sprint("d", i), want{context: c.ContextFresh, behaviour: c.BehaviourProceed})
			}
		})
	}
}

// contract_slos lists the SLOs of each workflow's contract in force, with
// the outcomes it counts as bad; a workflow whose new contract drops its
// SLOs has none.
func TestIntegrationContractSLOsOfTheContractsInForce(t *testing.T) {
	s := freshStore(t)
	ctx := context.Background()
	withSLOs := claimsContract + `outcomes: {good: [paid], bad: [reopened, disputed], max_bad: 0.2, window: 1h}
slos:
  - {name: fresh, sli: fresh_context, objective: 0.95}
  - {name: good, sli: good_outcomes, objective: 0.9}
`
	require.NoError(t, s.WriteContracts(ctx, parseContract(t, withSLOs), v0))
	slos := func() []string {
		rows, err := s.conn.Query(ctx, "SELECT workflow, slo, sli, objective, bad_outcomes FROM "+s.db+".contract_slos ORDER BY slo")
		require.NoError(t, err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var wf, slo, sli string
			var objective float64
			var bad []string
			require.NoError(t, rows.Scan(&wf, &slo, &sli, &objective, &bad))
			out = append(out, fmt.Sprintf("%s %s %s %v %v", wf, slo, sli, objective, bad))
		}
		require.NoError(t, rows.Err())
		return out
	}
	assert.Equal(t, []string{"claims fresh fresh_context 0.95 [reopened disputed]", "claims good good_outcomes 0.9 [reopened disputed]"}, slos())
	require.NoError(t, s.WriteContracts(ctx, parseContract(t, claimsContract), v0.Add(time.Hour)))
	assert.Empty(t, slos())
}

// A producer whose clock runs hours ahead (its signals are accepted up to
// decision.MaxFutureSkew ahead) moved the workflow's watermarks into the
// future: every decision still waiting for its context turned missing at
// the next refresh, and stayed so until the future came. A signal now
// counts towards a watermark up to when it reached the store; a store
// whose watermarks a clock ahead already moved is brought back to the
// present by the migration. The times are the test's clock's, as the cap
// is the store's: what is tested is a signal ahead of its arrival.
func TestIntegrationSignalsAheadOfTheClockMoveNoWatermarkPastThePresent(t *testing.T) {
	for _, from := range []int{0, 12} {
		t.Run(fmt.Sprintf("from version %d", from), func(t *testing.T) {
			s := freshStore(t)
			s.hold = time.Second
			ctx := context.Background()
			if from > 0 {
				rebuildAt(t, s, from)
			}
			now := time.Now().UTC()
			require.NoError(t, s.WriteContracts(ctx, parseContract(t, claimsContract), now.Add(-time.Hour)))
			human := map[string]any{c.DecisionID: "ahead", c.DecisionWorkflow: "claims", c.DecisionLayer: c.LayerHuman,
				c.DecisionEvent: c.EventHumanAction, c.HumanAction: c.ActionAccepted}
			s.write(t, newLogs().add(output("waiting", now.Add(-30*time.Second), 0.9)).
				add(output("ahead", now.Add(23*time.Hour), 0.9)).add(now.Add(23*time.Hour), human))
			if from > 0 {
				var until time.Time
				require.NoError(t, s.conn.QueryRow(ctx, "SELECT max(until) FROM "+s.db+".watermarks").Scan(&until))
				require.True(t, until.After(now.Add(22*time.Hour)), "version %d's watermarks take a signal ahead as it is: %v", from, until)
				_, to, err := s.Migrate(ctx)
				require.NoError(t, err)
				require.Equal(t, Latest(), to)
			}
			var ahead uint64
			require.NoError(t, s.conn.QueryRow(ctx, "SELECT countIf(until > now64(9)) FROM "+s.db+".watermarks").Scan(&ahead))
			assert.Zero(t, ahead, "no watermark is past the present")
			s.refresh(t)
			time.Sleep(1100 * time.Millisecond) // the hold
			got := s.refresh(t)
			check(t, got, "waiting", want{context: c.ContextPending, behaviour: c.BehaviourProceed, pend: []string{"a", "b"}})
		})
	}
}

// An optional source counts for the behaviour, not the context: a decision
// with fresh required context and no read of an optional source was judged
// once, with the source still pending, and never again, so the stored
// behaviour said proceed where the contract says proceed_with_limits once
// the source's reads have passed it. The optional sources still awaited
// are kept with the verdict, and judged again as pending ones are.
func TestIntegrationAnOptionalSourceAwaitedIsJudgedAgain(t *testing.T) {
	s := freshStore(t)
	s.hold = time.Second
	// Only the first refresh judges all the contract's decisions again
	// (it was written since the last): "opt" is judged again after it by
	// what awaits, or not at all.
	s.margin = 0
	ctx := context.Background()
	require.NoError(t, s.WriteContracts(ctx, parseContract(t, claimsContract), v0))
	at := v0.Add(time.Minute)
	s.write(t, newLogs().add(output("opt", at, 0.9)).
		add(read("opt", "a", at, ago(at, time.Second), true)).add(read("opt", "b", at, ago(at, time.Second), true)))
	got := s.refresh(t)
	check(t, got, "opt", want{context: c.ContextFresh, behaviour: c.BehaviourProceed})
	awaiting := func() []string {
		var out []string
		require.NoError(t, s.conn.QueryRow(ctx, "SELECT awaiting_sources FROM "+s.db+".verdicts FINAL WHERE decision_id = 'opt'").Scan(&out))
		return out
	}
	assert.Equal(t, []string{"c"}, awaiting())

	// c's reads pass the decision (another decision's, a minute later).
	later := at.Add(time.Minute)
	s.write(t, newLogs().add(output("later", later, 0.9)).add(read("later", "a", later, ago(later, time.Second), true)).
		add(read("later", "b", later, ago(later, time.Second), true)).add(read("later", "c", later, ago(later, time.Second), true)))
	s.refresh(t)
	time.Sleep(1100 * time.Millisecond) // the hold
	got = s.refresh(t)
	check(t, got, "opt", want{context: c.ContextFresh, behaviour: c.BehaviourProceedWithLimits})
	assert.Empty(t, awaiting())
	check(t, got, "later", want{context: c.ContextFresh, behaviour: c.BehaviourProceed})
}
