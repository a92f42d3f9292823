package decisionprocessor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/decisiontrace/decisiontrace/internal/contract"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/decision"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func testContracts(t testing.TB) map[string]*contract.Contract {
	t.Helper()
	cs, err := contract.Load([]string{"testdata/contracts/claims-triage.yaml"})
	require.NoError(t, err)
	return cs
}

func readEv(id, source string, asOf time.Time) *decision.Event {
	a := asOf
	return &decision.Event{ID: id, Workflow: "claims-triage", Layer: conventions.LayerData, Event: conventions.EventContextRead, Source: source, AsOf: &a}
}

func outputEv(id string, conf float64) *decision.Event {
	c := conf
	return &decision.Event{ID: id, Workflow: "claims-triage", Layer: conventions.LayerModel, Event: conventions.EventModelOutput,
		Confidence: &c, ModelName: "m", ModelVersion: "2"}
}

func TestVerdictFreshWhenAllRequiredReadInBudget(t *testing.T) {
	tr := newTracker(testContracts(t), time.Minute, 100)
	assert.Empty(t, tr.observe(readEv("d1", "policy-db", t0.Add(-30*time.Second)), t0, t0))
	vs := tr.observe(readEv("d1", "claims-history", t0.Add(-5*time.Minute)), t0, t0)
	assert.Empty(t, vs, "no output yet")
	vs = tr.observe(outputEv("d1", 0.9), t0, t0)
	require.Len(t, vs, 1, "all required context known: the verdict goes out at once")
	v := vs[0]
	assert.Equal(t, conventions.ContextFresh, v.context)
	assert.False(t, v.unsupported)
	assert.False(t, v.confidenceLow)
	assert.Equal(t, conventions.BehaviourProceed, v.behaviour)
	assert.Equal(t, "reads", v.contextSource)
	assert.Zero(t, tr.pendingCount())
}

func TestUnsupportedCertaintyOnStaleRequiredSource(t *testing.T) {
	tr := newTracker(testContracts(t), time.Minute, 100)
	tr.observe(outputEv("d2", 0.95), t0, t0)
	tr.observe(readEv("d2", "claims-history", t0.Add(-time.Minute)), t0, t0)
	// The stale read arrives after the output, still within the window.
	vs := tr.observe(readEv("d2", "policy-db", t0.Add(-10*time.Minute)), t0, t0.Add(10*time.Second))
	require.Len(t, vs, 1)
	v := vs[0]
	assert.Equal(t, conventions.ContextStale, v.context)
	assert.Equal(t, []string{"policy-db"}, v.stale)
	assert.Equal(t, "policy-db", v.staleSource)
	assert.Equal(t, 10*time.Minute, v.staleAge)
	assert.Equal(t, 90*time.Second, v.staleBudget)
	assert.True(t, v.unsupported)
	assert.Equal(t, conventions.BehaviourEscalate, v.behaviour, "policy-db's on_stale")
}

func TestLowConfidenceOnStaleContextIsNotUnsupportedCertainty(t *testing.T) {
	tr := newTracker(testContracts(t), time.Minute, 100)
	tr.observe(readEv("d3", "policy-db", t0.Add(-time.Hour)), t0, t0)
	tr.observe(readEv("d3", "claims-history", t0), t0, t0)
	vs := tr.observe(outputEv("d3", 0.5), t0, t0)
	require.Len(t, vs, 1)
	assert.True(t, vs[0].confidenceLow)
	assert.False(t, vs[0].unsupported, "an output under the floor claims no certainty")
	assert.Equal(t, conventions.BehaviourEscalate, vs[0].behaviour)
}

func TestMissingContextAfterWindow(t *testing.T) {
	tr := newTracker(testContracts(t), time.Minute, 100)
	tr.observe(readEv("d4", "policy-db", t0), t0, t0)
	assert.Empty(t, tr.observe(outputEv("d4", 0.8), t0, t0), "claims-history may still come")
	assert.Empty(t, tr.tick(t0.Add(59*time.Second)))
	vs := tr.tick(t0.Add(time.Minute))
	require.Len(t, vs, 1)
	v := vs[0]
	assert.Equal(t, conventions.ContextMissing, v.context)
	assert.Equal(t, []string{"claims-history"}, v.missing)
	assert.True(t, v.unsupported)
	assert.Equal(t, conventions.BehaviourEscalate, v.behaviour, "claims-history's on_missing")

	// Context arriving after the verdict is late, not a new decision.
	assert.Empty(t, tr.observe(readEv("d4", "claims-history", t0), t0, t0.Add(61*time.Second)))
	assert.Equal(t, int64(1), tr.takeStats().late)
	assert.Zero(t, tr.pendingCount())
}

func TestUnavailableReadIsMissingAndOptionalSourcesOnlyShapeBehaviour(t *testing.T) {
	tr := newTracker(testContracts(t), time.Minute, 100)
	no := false
	r := readEv("d5", "claims-history", t0)
	r.Available = &no
	tr.observe(r, t0, t0)
	tr.observe(readEv("d5", "policy-db", t0), t0, t0)
	tr.observe(readEv("d5", "fraud-signals", t0.Add(-time.Hour)), t0, t0)
	vs := tr.observe(outputEv("d5", 0.9), t0, t0)
	require.Len(t, vs, 1)
	assert.Equal(t, []string{"claims-history"}, vs[0].missing)
	assert.Empty(t, vs[0].stale, "a stale optional source does not make the context stale")
	assert.Equal(t, conventions.BehaviourEscalate, vs[0].behaviour)
}

func TestReadWithoutAsOfFallsBackToPolledFreshness(t *testing.T) {
	tr := newTracker(testContracts(t), time.Minute, 100)
	polledAsOf := t0.Add(-20 * time.Minute)
	yes := true
	tr.observe(&decision.Event{Layer: conventions.LayerData, Event: conventions.EventSourceFreshness, Source: "policy-db", AsOf: &polledAsOf, Available: &yes}, t0, t0)
	tr.observe(&decision.Event{ID: "d6", Workflow: "claims-triage", Layer: conventions.LayerData, Event: conventions.EventContextRead, Source: "policy-db"}, t0, t0)
	tr.observe(readEv("d6", "claims-history", t0), t0, t0)
	vs := tr.observe(outputEv("d6", 0.9), t0, t0)
	require.Len(t, vs, 1)
	assert.Equal(t, conventions.ContextStale, vs[0].context)
	assert.Equal(t, "reads+polled", vs[0].contextSource)
	assert.Equal(t, 20*time.Minute, vs[0].staleAge)
}

func TestMemoryIsBoundedAndEvictionsCounted(t *testing.T) {
	tr := newTracker(testContracts(t), time.Minute, 3)
	for i, id := range []string{"a", "b", "c", "d", "e"} {
		tr.observe(readEv(id, "policy-db", t0), t0, t0.Add(time.Duration(i)*time.Second))
	}
	assert.Equal(t, 3, tr.pendingCount())
	assert.Equal(t, int64(2), tr.takeStats().evicted)
	// The oldest went first: a, b are gone, c stays.
	_, ok := tr.pending["c"]
	assert.True(t, ok)
	_, ok = tr.pending["a"]
	assert.False(t, ok)
}

func TestDecisionsWithoutOutputExpire(t *testing.T) {
	tr := newTracker(testContracts(t), time.Minute, 10)
	tr.observe(readEv("x", "policy-db", t0), t0, t0)
	assert.Empty(t, tr.tick(t0.Add(3*time.Minute)))
	assert.Zero(t, tr.pendingCount())
	assert.Equal(t, int64(1), tr.takeStats().expired)
}

func TestWorkflowWithoutContractIsIgnored(t *testing.T) {
	tr := newTracker(testContracts(t), time.Minute, 10)
	ev := outputEv("y", 0.9)
	ev.Workflow = "no-contract"
	assert.Empty(t, tr.observe(ev, t0, t0))
	assert.Zero(t, tr.pendingCount())
}

func TestFlushDecidesWhatHasAnOutput(t *testing.T) {
	tr := newTracker(testContracts(t), time.Hour, 10)
	tr.observe(outputEv("f1", 0.9), t0, t0)
	tr.observe(readEv("f2", "policy-db", t0), t0, t0)
	vs := tr.flush()
	require.Len(t, vs, 1)
	assert.Equal(t, "f1", vs[0].decisionID)
	assert.Equal(t, []string{"claims-history", "policy-db"}, vs[0].missing)
}
