package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/decision"
)

// record is one generated event, log or span, with what the checks need.
type record struct {
	span  bool
	ts    time.Time
	attrs pcommon.Map
}

func collect(b batch) []record {
	var out []record
	rls := b.logs.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				out = append(out, record{ts: lrs.At(k).Timestamp().AsTime(), attrs: lrs.At(k).Attributes()})
			}
		}
	}
	rss := b.traces.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sps := sss.At(j).Spans()
			for k := 0; k < sps.Len(); k++ {
				out = append(out, record{span: true, ts: sps.At(k).EndTimestamp().AsTime(), attrs: sps.At(k).Attributes()})
			}
		}
	}
	return out
}

func generate(t *testing.T, cfg genConfig, n, per int) []record {
	t.Helper()
	g := newGenerator(newShared(cfg), 0)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var out []record
	for left := n; left > 0; left -= per {
		k := min(per, left)
		b := g.fill(k, now)
		if b.nLogs+b.nSpans != k || b.logs.LogRecordCount() != b.nLogs || b.traces.SpanCount() != b.nSpans {
			t.Fatalf("fill(%d) made %d logs + %d spans (counted %d + %d)", k, b.logs.LogRecordCount(), b.traces.SpanCount(), b.nLogs, b.nSpans)
		}
		out = append(out, collect(b)...)
		now = now.Add(time.Second)
	}
	return out
}

func TestBatchCoversContractWithTypedAttributes(t *testing.T) {
	cfg := genConfig{runID: "r1", seed: 42, staleShare: 0.02, missingShare: 0.01, signalInterval: time.Hour}
	recs := generate(t, cfg, 30000, 500)

	layers := map[string]int{}
	events := map[string]int{}
	workflowsSeen := map[string]bool{}
	modelIDs := map[string]int{}
	var ev decision.Event
	for i, r := range recs {
		decision.Extract(r.attrs, r.ts, &ev)
		if len(ev.ParseErrors) > 0 {
			t.Fatalf("record %d: parse errors %v in %v", i, ev.ParseErrors, r.attrs.AsRaw())
		}
		if ev.Workflow == "" || ev.Layer == "" || ev.Event == "" {
			t.Fatalf("record %d lacks workflow/layer/event: %v", i, r.attrs.AsRaw())
		}
		layers[ev.Layer]++
		events[ev.Event]++
		workflowsSeen[ev.Workflow] = true
		scoped := ev.Event != c.EventSourceFreshness && ev.Event != c.EventQueueDepth
		if scoped != (ev.ID != "") {
			t.Fatalf("record %d (%s): decision.id %q", i, ev.Event, ev.ID)
		}
		if scoped && !strings.HasPrefix(ev.ID, "r1-") {
			t.Fatalf("decision ID %q lacks the run prefix", ev.ID)
		}
		if (ev.Event == c.EventModelOutput) != r.span {
			t.Fatalf("record %d: %s emitted as span=%v", i, ev.Event, r.span)
		}
		// Types on the wire, not only parseability: a string "0.9" would
		// parse too but is not what the generator promises.
		wantType := map[string]pcommon.ValueType{
			c.ModelConfidence: pcommon.ValueTypeDouble, c.ModelLatencyMS: pcommon.ValueTypeDouble,
			c.GenAIUsageInputTokens: pcommon.ValueTypeInt, c.GenAIUsageOutputTokens: pcommon.ValueTypeInt,
			c.DataComplete: pcommon.ValueTypeBool, c.DataAvailable: pcommon.ValueTypeBool, c.DataAsOf: pcommon.ValueTypeStr,
			c.WorkflowQueueDepth: pcommon.ValueTypeInt, c.BusinessCycleTimeS: pcommon.ValueTypeDouble,
			c.BusinessCost: pcommon.ValueTypeDouble, c.GenAIRequestModel: pcommon.ValueTypeStr,
		}
		for k, want := range wantType {
			if v, ok := r.attrs.Get(k); ok && v.Type() != want {
				t.Fatalf("record %d: %s is %s, want %s", i, k, v.Type(), want)
			}
		}
		switch ev.Event {
		case c.EventModelOutput:
			modelIDs[ev.ID]++
			if ev.Confidence == nil || ev.LatencyMS == nil || ev.InputTokens == nil || ev.OutputTokens == nil || ev.ModelVersion == "" || ev.Recommendation == "" {
				t.Fatalf("incomplete model output: %v", r.attrs.AsRaw())
			}
			if _, ok := r.attrs.Get(c.GenAIRequestModel); !ok {
				t.Fatalf("model span without %s", c.GenAIRequestModel)
			}
			if ev.ModelProvider == "" {
				t.Fatalf("model span without %s", c.GenAIProviderName)
			}
		case c.EventContextRead:
			if ev.Source == "" || ev.AsOf == nil || ev.Complete == nil || ev.EntitySystem == "" || ev.EntityID == "" {
				t.Fatalf("incomplete context read: %v", r.attrs.AsRaw())
			}
		case c.EventHumanAction:
			if ev.HumanAction == "" || ev.HumanActor == "" || ev.HumanReason == "" {
				t.Fatalf("incomplete human action: %v", r.attrs.AsRaw())
			}
		case c.EventModelEvaluation:
			if ev.EvalName == "" || ev.EvalScore == nil || ev.EvalLabel == "" {
				t.Fatalf("incomplete evaluation: %v", r.attrs.AsRaw())
			}
		case c.EventBusinessOutcome:
			if ev.Outcome == "" || ev.CycleTimeS == nil || ev.Cost == nil {
				t.Fatalf("incomplete outcome: %v", r.attrs.AsRaw())
			}
		case c.EventQueueDepth:
			if ev.Queue == "" || ev.QueueDepth == nil {
				t.Fatalf("incomplete queue depth: %v", r.attrs.AsRaw())
			}
		case c.EventSourceFreshness:
			if ev.Source == "" || ev.AsOf == nil || ev.Available == nil {
				t.Fatalf("incomplete freshness: %v", r.attrs.AsRaw())
			}
		}
	}
	for _, l := range c.Layers {
		if layers[l] == 0 {
			t.Errorf("no %s-layer events (layers: %v)", l, layers)
		}
	}
	for _, e := range []string{c.EventContextRead, c.EventModelOutput, c.EventWorkflowRouted, c.EventHumanAction, c.EventBusinessOutcome, c.EventSourceFreshness, c.EventQueueDepth,
		c.EventWorkflowRework, c.EventWorkflowException, c.EventModelEvaluation} {
		if events[e] == 0 {
			t.Errorf("no %s events (%v)", e, events)
		}
	}
	// The hidden work stays under the shipped contracts' limits (10% of
	// decisions), so that the demo pages on its incidents only.
	outputs := float64(events[c.EventModelOutput])
	for e, max := range map[string]float64{c.EventWorkflowRework: 0.05, c.EventWorkflowException: 0.04} {
		if share := float64(events[e]) / outputs; share > max {
			t.Errorf("%s in %.1f%% of decisions, over %.0f%%", e, share*100, max*100)
		}
	}
	for _, wf := range workflows {
		if !workflowsSeen[wf.name] {
			t.Errorf("workflow %s missing", wf.name)
		}
	}
	for id, n := range modelIDs {
		if n != 1 {
			t.Fatalf("decision %s has %d model outputs; IDs must be unique per decision", id, n)
		}
	}
	if len(modelIDs) < 4000 {
		t.Fatalf("only %d decisions in 30000 events", len(modelIDs))
	}
}

// byDecision groups the decision-scoped records by decision ID: fresh
// makes a decision's entry from its first record, add folds in each record.
func byDecision[T any](recs []record, fresh func(ev *decision.Event) *T, add func(d *T, ev *decision.Event, ts time.Time)) map[string]*T {
	out := map[string]*T{}
	var ev decision.Event
	for _, r := range recs {
		decision.Extract(r.attrs, r.ts, &ev)
		if ev.ID == "" {
			continue
		}
		d := out[ev.ID]
		if d == nil {
			d = fresh(&ev)
			out[ev.ID] = d
		}
		add(d, &ev, r.ts)
	}
	return out
}

// shares groups decision-scoped records and reports, per decision, the
// workflow, whether any read was hours old and whether a required source
// went unread.
func shares(t *testing.T, recs []record) (n int, stale, missing float64) {
	t.Helper()
	type dec struct {
		wf      string
		read    map[string]bool
		stale   bool
		outcome bool
	}
	byID := byDecision(recs, func(ev *decision.Event) *dec { return &dec{wf: ev.Workflow, read: map[string]bool{}} },
		func(d *dec, ev *decision.Event, ts time.Time) {
			switch ev.Event {
			case c.EventContextRead:
				d.read[ev.Source] = true
				if ts.Sub(*ev.AsOf) > time.Hour {
					d.stale = true
				}
			case c.EventBusinessOutcome:
				d.outcome = true
			}
		})
	var ns, nm int
	for _, d := range byID {
		if !d.outcome { // cut off by the end of generation
			continue
		}
		n++
		if d.stale {
			ns++
		}
		for _, wf := range workflows {
			if wf.name != d.wf {
				continue
			}
			for _, s := range wf.sources {
				if s.required && !d.read[s.name] {
					nm++
					break
				}
			}
		}
	}
	return n, float64(ns) / float64(n), float64(nm) / float64(n)
}

func TestStaleAndMissingShares(t *testing.T) {
	for _, tc := range []struct{ stale, missing float64 }{{0.02, 0.01}, {0.1, 0.05}, {0, 0}} {
		cfg := genConfig{runID: "r", seed: 7, staleShare: tc.stale, missingShare: tc.missing}
		n, stale, missing := shares(t, generate(t, cfg, 200000, 1000))
		tol := func(p float64) float64 { return 4*math.Sqrt(p*(1-p)/float64(n)) + 1e-9 }
		if math.Abs(stale-tc.stale) > tol(tc.stale) {
			t.Errorf("stale share %.4f over %d decisions, want %.3f ± %.4f", stale, n, tc.stale, tol(tc.stale))
		}
		if math.Abs(missing-tc.missing) > tol(tc.missing) {
			t.Errorf("missing share %.4f over %d decisions, want %.3f ± %.4f", missing, n, tc.missing, tol(tc.missing))
		}
	}
}

func TestSeedIsDeterministic(t *testing.T) {
	cfg := genConfig{runID: "r", seed: 99, staleShare: 0.02, missingShare: 0.01, signalInterval: time.Hour}
	a, b := generate(t, cfg, 3000, 250), generate(t, cfg, 3000, 250)
	for i := range a {
		if !a[i].attrs.Equal(b[i].attrs) {
			t.Fatalf("record %d differs for the same seed:\n%v\n%v", i, a[i].attrs.AsRaw(), b[i].attrs.AsRaw())
		}
	}
	cfg.seed = 100
	c := generate(t, cfg, 3000, 250)
	same := 0
	for i := range a {
		if a[i].attrs.Equal(c[i].attrs) {
			same++
		}
	}
	if same > len(a)/2 {
		t.Fatalf("%d of %d records equal across different seeds", same, len(a))
	}
}

// Decisions cut by a batch boundary continue in the next batch, so every
// decision but the last is whole.
func TestDecisionsSpanBatches(t *testing.T) {
	cfg := genConfig{runID: "r", seed: 3}
	recs := generate(t, cfg, 5000, 7)
	steps := map[string]map[string]int{}
	var order []string
	var ev decision.Event
	for _, r := range recs {
		decision.Extract(r.attrs, r.ts, &ev)
		if steps[ev.ID] == nil {
			steps[ev.ID] = map[string]int{}
			order = append(order, ev.ID)
		}
		steps[ev.ID][ev.Event]++
	}
	for _, id := range order[:len(order)-1] {
		s := steps[id]
		if s[c.EventModelOutput] != 1 || s[c.EventWorkflowRouted] != 1 || s[c.EventBusinessOutcome] != 1 {
			t.Fatalf("decision %s is not whole: %v", id, s)
		}
	}
}

func BenchmarkFill(b *testing.B) {
	g := newGenerator(newShared(genConfig{runID: "bench", seed: 1, staleShare: 0.02, missingShare: 0.01}), 0)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		g.fill(500, now)
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "events/s")
}

func TestIncidentFreezesOneSourceForItsDuration(t *testing.T) {
	start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	in := incident{source: "policy-db", start: start, end: start.Add(10 * time.Minute)}
	during := start.Add(5 * time.Minute)
	if got := in.asOf("policy-db", during, 20*time.Second); !got.Equal(start) {
		t.Fatalf("during the incident as_of = %s, want the incident's start", got)
	}
	if got := in.asOf("claims-history", during, 20*time.Second); !got.Equal(during.Add(-20 * time.Second)) {
		t.Fatalf("another source is unaffected, got %s", got)
	}
	if got := in.asOf("policy-db", during, 2*time.Hour); !got.Equal(during.Add(-2 * time.Hour)) {
		t.Fatalf("a read older than the incident keeps its own as_of, got %s", got)
	}
	after := start.Add(11 * time.Minute)
	if got := in.asOf("policy-db", after, 20*time.Second); !got.Equal(after.Add(-20 * time.Second)) {
		t.Fatalf("after the incident the source recovers, got %s", got)
	}
	if got := (incident{}).asOf("policy-db", during, time.Second); !got.Equal(during.Add(-time.Second)) {
		t.Fatalf("no incident configured, got %s", got)
	}
}

// With --act-after, a decision's human action is sent a quarter to 1.75
// times it after the recommendation, its outcome that much more after the
// action, each once and never before it is due; every other signal still
// goes out with the decision.
func TestActionsAndOutcomesComeLater(t *testing.T) {
	const actAfter = 2 * time.Minute
	recs := generate(t, genConfig{runID: "late", seed: 5, actAfter: actAfter, signalInterval: time.Hour}, 60*20*50, 50) // 20 minutes at 50/s
	type times struct{ output, routed, action, outcome []time.Time }
	byID := byDecision(recs, func(*decision.Event) *times { return &times{} }, func(d *times, ev *decision.Event, ts time.Time) {
		switch ev.Event {
		case c.EventModelOutput:
			d.output = append(d.output, ts)
		case c.EventWorkflowRouted:
			d.routed = append(d.routed, ts)
		case c.EventHumanAction:
			d.action = append(d.action, ts)
		case c.EventBusinessOutcome:
			d.outcome = append(d.outcome, ts)
		}
	})
	acted, ended, partial := 0, 0, 0
	for id, d := range byID {
		if len(d.output) == 0 && len(d.action) == 0 && len(d.outcome) == 0 {
			partial++ // the run's last decision, cut after its reads
			continue
		}
		if len(d.output) != 1 || len(d.action) > 1 || len(d.outcome) > 1 {
			t.Fatalf("%s: %d outputs, %d actions, %d outcomes", id, len(d.output), len(d.action), len(d.outcome))
		}
		// The decision's own signals go out together, within a second.
		if len(d.routed) != 1 || d.routed[0].Sub(d.output[0]).Abs() > time.Second {
			t.Fatalf("%s: routed %v, output %v", id, d.routed, d.output[0])
		}
		if len(d.action) == 1 {
			acted++
			// Sent at the first second it is due (the batches are a
			// second apart).
			wait := d.action[0].Sub(d.output[0])
			if wait < actAfter/4 || wait > actAfter*7/4+time.Second {
				t.Fatalf("%s: action %v after its output", id, wait)
			}
			if len(d.outcome) == 1 && d.outcome[0].Sub(d.action[0]) < actAfter-time.Second {
				t.Fatalf("%s: outcome %v after its action", id, d.outcome[0].Sub(d.action[0]))
			}
		}
		if len(d.outcome) == 1 {
			ended++
			if d.outcome[0].Sub(d.output[0]) < actAfter*5/4 {
				t.Fatalf("%s: outcome %v after its output", id, d.outcome[0].Sub(d.output[0]))
			}
		}
	}
	if partial > 1 {
		t.Fatalf("%d decisions cut short", partial)
	}
	// 20 minutes of decisions, a third routed to a person; the last 2 to
	// 5.5 minutes of them still waiting for their actions and outcomes.
	if acted < len(byID)/5 || ended < len(byID)*3/4 || ended >= len(byID) {
		t.Fatalf("%d decisions, %d acted on, %d with an outcome", len(byID), acted, ended)
	}
}
