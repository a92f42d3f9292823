package decisionprocessor

import (
	"container/list"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/decisiontrace/decisiontrace/internal/contract"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/decision"
)

// verdict is what the processor concludes about one decision.
type verdict struct {
	decisionID, workflow string
	// at is the decision time: the model output's own timestamp.
	at                         time.Time
	modelName, modelVersion    string
	confidence                 *float64
	context                    string // fresh, stale, missing
	stale, missing             []string
	staleSource                string
	staleAge, staleBudget      time.Duration
	confidenceLow, unsupported bool
	confidenceFloor            float64
	behaviour                  string
	contextSource              string // reads, polled, reads+polled
}

type read struct {
	asOf      *time.Time
	available *bool
}

type output struct {
	at                      time.Time
	confidence              *float64
	modelName, modelVersion string
}

// pending is a decision whose verdict is not out yet.
type pending struct {
	id, workflow string
	reads        map[string]read
	out          *output
	// deadline is when the verdict goes out with whatever context arrived:
	// the output's arrival plus the window. Zero until the output arrives.
	deadline time.Time
	// expires drops a decision whose output never came.
	expires time.Time
	elem    *list.Element
}

type polled struct {
	asOf      *time.Time
	available bool
}

// trackerStats are counters the processor turns into its own metrics.
type trackerStats struct {
	evicted, late, expired int64
}

// tracker joins each decision's context reads and model output, in either
// order, and judges the decision against its workflow's contract once both
// are known or the window after the output has passed. Memory is bounded by
// maxPending: the oldest pending decision is evicted (and counted) first.
type tracker struct {
	contracts  map[string]*contract.Contract
	window     time.Duration
	maxPending int

	mu      sync.Mutex
	pending map[string]*pending
	order   *list.List // of *pending, oldest first
	// decided remembers recent verdicts, by a hash of the decision ID, so
	// that context arriving after one is counted as late instead of
	// starting a new decision. Hashes, not strings: a map of integers costs
	// the garbage collector nothing to scan, and keeps no request buffer
	// alive.
	decided      map[uint64]struct{}
	decidedOrder []uint64
	decidedNext  int
	sources      map[string]polled
	stats        trackerStats
}

func newTracker(contracts map[string]*contract.Contract, window time.Duration, maxPending int) *tracker {
	return &tracker{
		contracts:    contracts,
		window:       window,
		maxPending:   maxPending,
		pending:      make(map[string]*pending),
		order:        list.New(),
		decided:      make(map[uint64]struct{}, maxPending),
		decidedOrder: make([]uint64, maxPending),
		sources:      make(map[string]polled),
	}
}

// observe takes one decision event seen at now (wall clock) whose own time
// is at, and returns the verdicts it completes.
func (t *tracker) observe(ev *decision.Event, at, now time.Time) []verdict {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ev.Event == conventions.EventSourceFreshness && ev.Source != "" {
		// The latest poll wins; a poll without as_of keeps the last known one.
		p := t.sources[ev.Source]
		if _, known := t.sources[ev.Source]; !known {
			ev.Source = strings.Clone(ev.Source)
		}
		p.available = ev.Available == nil || *ev.Available
		if ev.AsOf != nil {
			p.asOf = ev.AsOf
		}
		t.sources[ev.Source] = p
		return nil
	}
	if ev.ID == "" || ev.Event == conventions.EventVerdict {
		return nil
	}
	isRead := ev.Source != "" && (ev.Event == conventions.EventContextRead || ev.Event == "" && ev.Layer == conventions.LayerData)
	isOutput := ev.Event == conventions.EventModelOutput
	if !isRead && !isOutput {
		return nil
	}
	if _, done := t.decided[xxhash.Sum64String(ev.ID)]; done {
		if isRead {
			t.stats.late++
		}
		return nil
	}
	p := t.pending[ev.ID]
	if p == nil {
		if ev.Workflow != "" && t.contracts[ev.Workflow] == nil {
			return nil // no contract, no verdict
		}
		// Strings from pdata may share the request's buffer: copies keep
		// only what is needed alive while the decision waits.
		p = &pending{id: strings.Clone(ev.ID), reads: map[string]read{}, expires: now.Add(2 * t.window)}
		p.elem = t.order.PushBack(p)
		t.pending[ev.ID] = p
		t.evictOverflow()
	}
	if p.workflow == "" {
		p.workflow = strings.Clone(ev.Workflow)
	}
	if isRead {
		p.reads[strings.Clone(ev.Source)] = read{asOf: ev.AsOf, available: ev.Available}
	}
	if isOutput && p.out == nil {
		p.out = &output{at: at, confidence: ev.Confidence, modelName: strings.Clone(ev.ModelName), modelVersion: strings.Clone(ev.ModelVersion)}
		p.deadline = now.Add(t.window)
	}
	if p.out != nil && t.complete(p) {
		return []verdict{t.decide(p)}
	}
	return nil
}

// complete: every required source has been read, so waiting longer cannot
// change the verdict.
func (t *tracker) complete(p *pending) bool {
	c := t.contracts[p.workflow]
	if c == nil {
		return false
	}
	for _, s := range c.Sources.Required {
		if _, ok := p.reads[s.Name]; !ok {
			return false
		}
	}
	return true
}

// tick returns the verdicts whose window has passed and drops decisions
// whose output never came.
func (t *tracker) tick(now time.Time) []verdict {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []verdict
	for e := t.order.Front(); e != nil; {
		next := e.Next()
		p := e.Value.(*pending)
		switch {
		case p.out != nil && !now.Before(p.deadline):
			if t.contracts[p.workflow] != nil {
				out = append(out, t.decide(p))
			} else {
				t.remove(p)
			}
		case p.out == nil && !now.Before(p.expires):
			t.stats.expired++
			t.remove(p)
		}
		e = next
	}
	return out
}

// flush decides every decision that has its output, whatever context has
// arrived: used at shutdown.
func (t *tracker) flush() []verdict {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []verdict
	for e := t.order.Front(); e != nil; {
		next := e.Next()
		if p := e.Value.(*pending); p.out != nil && t.contracts[p.workflow] != nil {
			out = append(out, t.decide(p))
		}
		e = next
	}
	return out
}

func (t *tracker) evictOverflow() {
	for len(t.pending) > t.maxPending {
		oldest := t.order.Front().Value.(*pending)
		t.stats.evicted++
		t.remove(oldest)
	}
}

func (t *tracker) remove(p *pending) {
	t.order.Remove(p.elem)
	delete(t.pending, p.id)
}

func (t *tracker) markDecided(id string) {
	h := xxhash.Sum64String(id)
	if old := t.decidedOrder[t.decidedNext]; old != 0 {
		delete(t.decided, old)
	}
	t.decidedOrder[t.decidedNext] = h
	t.decidedNext = (t.decidedNext + 1) % len(t.decidedOrder)
	t.decided[h] = struct{}{}
}

func (t *tracker) pendingCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

func (t *tracker) takeStats() trackerStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stats
	t.stats = trackerStats{}
	return s
}

// decide judges a decision against its contract and forgets it. Freshness
// comes from the decision's own reads (as_of against the output's time);
// a read without as_of falls back to the source's latest polled freshness.
// A required source the decision did not read, or read as unavailable, is
// missing.
func (t *tracker) decide(p *pending) verdict {
	t.remove(p)
	t.markDecided(p.id)
	c := t.contracts[p.workflow]
	v := verdict{
		decisionID: p.id, workflow: p.workflow, at: p.out.at,
		modelName: p.out.modelName, modelVersion: p.out.modelVersion, confidence: p.out.confidence,
		confidenceFloor: c.ConfidenceFloor, behaviour: conventions.BehaviourProceed,
	}
	var fromReads, fromPolls bool
	worst := -1.0
	judge := func(s contract.Source, required bool) {
		r, ok := p.reads[s.Name]
		if !ok || (r.available != nil && !*r.available) {
			if required {
				v.missing = append(v.missing, s.Name)
				v.behaviour = contract.MostSevere(v.behaviour, s.OnMissing)
			}
			return
		}
		asOf := r.asOf
		if asOf != nil {
			fromReads = true
		} else if pl, ok := t.sources[s.Name]; ok && pl.available && pl.asOf != nil {
			asOf = pl.asOf
			fromPolls = true
		}
		if asOf == nil {
			// Read, but nobody can say how old it was: as good as missing.
			if required {
				v.missing = append(v.missing, s.Name)
				v.behaviour = contract.MostSevere(v.behaviour, s.OnMissing)
			}
			return
		}
		age := v.at.Sub(*asOf)
		if age <= s.MaxAge.D() {
			return
		}
		v.behaviour = contract.MostSevere(v.behaviour, s.OnStale)
		if !required {
			return
		}
		v.stale = append(v.stale, s.Name)
		if ratio := float64(age) / float64(s.MaxAge.D()); ratio > worst {
			worst = ratio
			v.staleSource, v.staleAge, v.staleBudget = s.Name, age, s.MaxAge.D()
		}
	}
	for _, s := range c.Sources.Required {
		judge(s, true)
	}
	for _, s := range c.Sources.Optional {
		judge(s, false)
	}
	sort.Strings(v.stale)
	sort.Strings(v.missing)
	switch {
	case len(v.missing) > 0:
		v.context = conventions.ContextMissing
	case len(v.stale) > 0:
		v.context = conventions.ContextStale
	default:
		v.context = conventions.ContextFresh
	}
	switch {
	case fromReads && fromPolls:
		v.contextSource = "reads+polled"
	case fromPolls:
		v.contextSource = "polled"
	default:
		v.contextSource = "reads"
	}
	if v.confidence != nil {
		v.confidenceLow = *v.confidence < c.ConfidenceFloor
		v.unsupported = !v.confidenceLow && v.context != conventions.ContextFresh
		if v.confidenceLow {
			v.behaviour = contract.MostSevere(v.behaviour, c.OnLowConfidence)
		}
	}
	return v
}
