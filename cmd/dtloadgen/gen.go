package main

import (
	"container/heap"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
)

// source is one context system a workflow reads before the model runs.
type source struct {
	name     string
	system   string // the system of record the entity ID belongs to
	idPrefix string
	required bool
	// optional sources are read with this probability; required ones always.
	readP float64
	// maxAge bounds how old a normal read is; a stale read is hours old.
	maxAge time.Duration
}

type modelVariant struct {
	name, version, genAIModel string
	spanName                  string  // GenAI span naming: "{operation} {model}"
	share                     float64 // of the workflow's traffic
	latencyMedianMS           float64
	// confidence is drawn from a two-component mixture: most outputs are
	// confident, a minority sit near the decision boundary.
	confHigh, confLow float64
	lowShare          float64
}

// provider is who serves the model, by its family, as GenAI
// instrumentation names it (gen_ai.provider.name).
func (m *modelVariant) provider() string {
	switch {
	case strings.HasPrefix(m.genAIModel, "gpt"):
		return "openai"
	case strings.HasPrefix(m.genAIModel, "claude"):
		return "anthropic"
	case strings.HasPrefix(m.genAIModel, "llama"):
		return "meta"
	}
	return "other"
}

type weighted struct {
	value  string
	weight float64
}

type workflow struct {
	name            string
	share           float64
	sources         []source
	queue           string
	queueBase       int64 // typical queue depth
	models          []modelVariant
	recommendations []string
	// confidenceFloor is the contract's floor: below it outputs go to people.
	confidenceFloor float64
	// evaluated workflows have an evaluator score every output.
	evaluated       bool
	outcomes        []weighted
	reviewers       []string
	inPrice         float64 // USD per input token
	outPrice        float64
	humanCostPerMin float64
}

var workflows = []*workflow{
	{
		name:  "claims-triage",
		share: 0.35,
		sources: []source{
			{name: "policy-db", system: "policy-admin", idPrefix: "POL-", required: true, readP: 1, maxAge: 90 * time.Second},
			{name: "claims-history", system: "claims-dw", idPrefix: "CLM-", required: true, readP: 1, maxAge: 10 * time.Minute},
			{name: "fraud-signals", system: "fraud-hub", idPrefix: "FRD-", readP: 0.4, maxAge: 5 * time.Minute},
		},
		queue:     "manual-review",
		queueBase: 120,
		models: []modelVariant{
			{name: "claims-triage-llm", version: "2025.09.1", genAIModel: "gpt-4.1-mini", share: 0.8, latencyMedianMS: 650, confHigh: 0.88, confLow: 0.58, lowShare: 0.18},
			{name: "claims-triage-llm", version: "2025.11.0", genAIModel: "gpt-4.1-mini", share: 0.2, latencyMedianMS: 720, confHigh: 0.9, confLow: 0.6, lowShare: 0.15},
		},
		recommendations: []string{"fast-track", "standard-review", "refer-siu", "deny"},
		confidenceFloor: 0.7,
		evaluated:       true,
		outcomes:        []weighted{{"paid", 70}, {"denied", 14}, {"pended", 11}, {"reopened", 5}},
		reviewers:       actors("adjuster", 24),
		inPrice:         0.4e-6, outPrice: 1.6e-6, humanCostPerMin: 0.85,
	},
	{
		name:  "loan-underwriting",
		share: 0.15,
		sources: []source{
			{name: "credit-bureau", system: "bureau", idPrefix: "CB-", required: true, readP: 1, maxAge: 15 * time.Minute},
			{name: "document-store", system: "docstore", idPrefix: "DOC-", required: true, readP: 1, maxAge: 3 * time.Minute},
			{name: "income-verification", system: "payroll-api", idPrefix: "INC-", readP: 0.5, maxAge: 30 * time.Minute},
		},
		queue:     "underwriter-review",
		queueBase: 60,
		models: []modelVariant{
			{name: "underwriting-assist", version: "3.4.2", genAIModel: "claude-sonnet-4", share: 0.7, latencyMedianMS: 1400, confHigh: 0.84, confLow: 0.55, lowShare: 0.25},
			{name: "underwriting-assist", version: "3.5.0", genAIModel: "claude-sonnet-4-5", share: 0.3, latencyMedianMS: 1250, confHigh: 0.86, confLow: 0.57, lowShare: 0.22},
		},
		recommendations: []string{"approve", "approve-with-conditions", "refer", "decline"},
		confidenceFloor: 0.75,
		outcomes:        []weighted{{"funded", 58}, {"declined", 22}, {"withdrawn", 12}, {"conditions-pending", 8}},
		reviewers:       actors("underwriter", 12),
		inPrice:         3e-6, outPrice: 15e-6, humanCostPerMin: 1.4,
	},
	{
		name:  "support-assist",
		share: 0.35,
		sources: []source{
			{name: "knowledge-base", system: "kb", idPrefix: "KB-", required: true, readP: 1, maxAge: 30 * time.Minute},
			{name: "crm-profile", system: "crm", idPrefix: "CUST-", readP: 0.6, maxAge: 2 * time.Minute},
			{name: "order-history", system: "oms", idPrefix: "ORD-", readP: 0.3, maxAge: 5 * time.Minute},
		},
		queue:     "tier2-support",
		queueBase: 300,
		models: []modelVariant{
			{name: "support-reply", version: "v14", genAIModel: "llama-3.1-70b-instruct", share: 0.9, latencyMedianMS: 900, confHigh: 0.82, confLow: 0.5, lowShare: 0.2},
			{name: "support-reply", version: "v15-canary", genAIModel: "llama-3.3-70b-instruct", share: 0.1, latencyMedianMS: 850, confHigh: 0.84, confLow: 0.52, lowShare: 0.18},
		},
		recommendations: []string{"suggest-article", "draft-reply", "refund", "escalate-to-tier2"},
		confidenceFloor: 0.65,
		evaluated:       true,
		outcomes:        []weighted{{"resolved", 78}, {"reopened", 9}, {"escalated", 8}, {"abandoned", 5}},
		reviewers:       actors("agent", 40),
		inPrice:         0.6e-6, outPrice: 0.6e-6, humanCostPerMin: 0.55,
	},
	{
		name:  "maintenance-planning",
		share: 0.15,
		sources: []source{
			{name: "asset-registry", system: "eam", idPrefix: "AST-", required: true, readP: 1, maxAge: 20 * time.Minute},
			{name: "sensor-telemetry", system: "historian", idPrefix: "TAG-", required: true, readP: 1, maxAge: 30 * time.Second},
			{name: "parts-inventory", system: "erp", idPrefix: "PRT-", readP: 0.45, maxAge: 10 * time.Minute},
		},
		queue:     "planner-review",
		queueBase: 35,
		models: []modelVariant{
			{name: "maintenance-planner", version: "1.8.0", genAIModel: "gpt-4.1", share: 0.75, latencyMedianMS: 1800, confHigh: 0.8, confLow: 0.52, lowShare: 0.25},
			{name: "maintenance-planner", version: "1.9.0-rc1", genAIModel: "gpt-4.1", share: 0.25, latencyMedianMS: 1700, confHigh: 0.82, confLow: 0.55, lowShare: 0.22},
		},
		recommendations: []string{"schedule-now", "defer", "inspect", "replace-part"},
		confidenceFloor: 0.7,
		outcomes:        []weighted{{"completed", 74}, {"deferred", 14}, {"failed-inspection", 7}, {"emergency-repair", 5}},
		reviewers:       actors("planner", 8),
		inPrice:         2e-6, outPrice: 8e-6, humanCostPerMin: 1.1,
	},
}

func init() {
	for _, wf := range workflows {
		for i := range wf.models {
			wf.models[i].spanName = "chat " + wf.models[i].genAIModel
		}
	}
}

func actors(role string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = role + "-" + strconv.Itoa(101+i)
	}
	return out
}

var humanActions = []weighted{
	{c.ActionAccepted, 62}, {c.ActionModified, 15}, {c.ActionOverridden, 13}, {c.ActionIgnored, 5}, {c.ActionEscalated, 5},
}

// Reviewers who saw stale or incomplete context disagree with the model more.
var humanActionsBadContext = []weighted{
	{c.ActionAccepted, 38}, {c.ActionModified, 17}, {c.ActionOverridden, 33}, {c.ActionIgnored, 4}, {c.ActionEscalated, 8},
}

var humanReasons = map[string][]string{
	c.ActionAccepted:   {"agrees-with-recommendation", "verified-against-source"},
	c.ActionModified:   {"adjusted-amount", "added-conditions", "edited-wording"},
	c.ActionOverridden: {"context-outdated", "policy-exception", "missing-information", "judgement-call"},
	c.ActionIgnored:    {"queue-backlog", "sla-expired"},
	c.ActionEscalated:  {"needs-senior-review", "regulatory-concern"},
}

const (
	routeAuto      = "auto"
	routeManual    = "manual"
	routeEscalated = "escalated"
)

type step uint8

const (
	stepRead step = iota
	stepModel
	stepRouted
	stepHuman
	stepOutcome
	stepRework
	stepException
	stepEvaluation
)

type readPlan struct {
	src      *source
	age      time.Duration
	complete bool
}

// plan is one decision, drawn up front so that its events can be spread over
// consecutive batches without the generator losing track of it.
type plan struct {
	wf        *workflow
	id        string
	traceID   pcommon.TraceID
	spanID    pcommon.SpanID
	entityNum string
	reads     [4]readPlan
	nReads    int
	stale     bool
	missing   bool

	model      *modelVariant
	confidence float64
	rec        string
	latencyMS  float64
	inTok      int64
	outTok     int64

	route  string
	action string
	actor  string
	reason string

	outcome string
	cycleS  float64
	cost    float64

	// The hidden work and quality signals: rework, an exception, an
	// evaluator's score (evaluated workflows only), an unsafe output.
	rework    bool
	exception string
	evalScore float64 // < 0: not evaluated
	unsafe    bool

	steps [12]step
	n     int
	next  int
	// actDelay is how long after the recommendation its human action
	// comes (its outcome actAfter later), with genConfig.actAfter.
	actDelay time.Duration
}

func (p *plan) done() bool { return p.next >= p.n }

// genConfig is what every worker's generator shares.
type genConfig struct {
	runID        string
	seed         uint64
	staleShare   float64
	missingShare float64
	// entities is how many distinct entities (customers, assets, ...) the
	// decisions are about; an alias map written by --write-aliases covers
	// most of them.
	entities uint64
	// incident makes one source stop updating between two instants: its
	// data.as_of stays at the incident's start, in reads and freshness
	// signals alike, as when a sync job dies while the answers stay fluent.
	incident incident
	// signalInterval is how often the periodic source.freshness and
	// queue.depth signals go out; 0 disables them.
	signalInterval time.Duration
	// actAfter: when set, a decision's human action comes a quarter to
	// one and three quarters of it after the recommendation, and its
	// outcome actAfter after the action, each sent when it happens (as a
	// review tool and a claims system would), not with the decision.
	actAfter time.Duration
}

type incident struct {
	source     string
	start, end time.Time
}

// asOf is when the data read at now was current, age earlier, unless the
// source is in its incident.
func (in incident) asOf(src string, now time.Time, age time.Duration) time.Time {
	t := now.Add(-age)
	if src == in.source && !now.Before(in.start) && now.Before(in.end) && t.After(in.start) {
		return in.start
	}
	return t
}

const (
	entityBase      = 1_000_000
	defaultEntities = 500
)

func (c genConfig) entityPool() uint64 {
	if c.entities == 0 {
		return defaultEntities
	}
	return c.entities
}

// shared is the state every worker's generator draws from: decision numbers
// must be unique across workers and the periodic signals must go out once per
// interval, not once per worker.
type shared struct {
	cfg       genConfig
	decisions atomic.Uint64

	mu         sync.Mutex
	nextSignal time.Time
	depth      []int64 // per workflow; a random walk so the graph looks like a queue
	signalRNG  *rand.Rand
}

func newShared(cfg genConfig) *shared {
	s := &shared{cfg: cfg, depth: make([]int64, len(workflows)), signalRNG: rand.New(rand.NewPCG(cfg.seed, 0x5157))}
	for i, wf := range workflows {
		s.depth[i] = wf.queueBase
	}
	return s
}

// dueSignals reports whether the caller should emit this round of periodic
// signals; only one caller per interval gets true.
func (s *shared) dueSignals(now time.Time) bool {
	if s.cfg.signalInterval <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Before(s.nextSignal) {
		return false
	}
	s.nextSignal = now.Add(s.cfg.signalInterval)
	return true
}

// pending periodic signal, queued so it fits into the event budget like any
// other event.
type periodic struct {
	wf    *workflow
	src   *source // nil for queue depth
	age   time.Duration
	avail bool
	depth int64
}

func (s *shared) drawSignals(out []periodic) []periodic {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.signalRNG
	for i, wf := range workflows {
		for j := range wf.sources {
			src := &wf.sources[j]
			age := time.Duration(r.Float64() * float64(src.maxAge))
			if r.Float64() < s.cfg.staleShare {
				age = staleAge(r)
			}
			out = append(out, periodic{wf: wf, src: src, age: age, avail: r.Float64() >= 0.005})
		}
		// Mean-reverting walk: drifts, spikes now and then, never negative.
		d := s.depth[i]
		d += int64(r.NormFloat64()*float64(wf.queueBase)*0.05) + (wf.queueBase-d)/20
		if r.Float64() < 0.01 {
			d += wf.queueBase * 2
		}
		d = max(d, 0)
		s.depth[i] = d
		out = append(out, periodic{wf: wf, depth: d})
	}
	return out
}

func staleAge(r *rand.Rand) time.Duration {
	return 2*time.Hour + time.Duration(r.Float64()*float64(28*time.Hour))
}

// generator builds OTLP batches for one worker. It is not safe for concurrent
// use; each worker owns one.
type generator struct {
	sh      *shared
	r       *rand.Rand
	cur     plan
	signals []periodic
	sigNext int
	buf     []byte
	wfCum   []float64
	later   laterSteps // with actAfter: actions and outcomes not yet due
}

// laterStep is a decision's step that happens after its other signals.
type laterStep struct {
	due time.Time
	p   plan
	st  step
}

// laterSteps is a min-heap of laterStep by due time.
type laterSteps []laterStep

func (h laterSteps) Len() int           { return len(h) }
func (h laterSteps) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h laterSteps) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *laterSteps) Push(x any)        { *h = append(*h, x.(laterStep)) }
func (h *laterSteps) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func newGenerator(sh *shared, worker int) *generator {
	g := &generator{
		sh:  sh,
		r:   rand.New(rand.NewPCG(sh.cfg.seed, uint64(worker)+1)),
		buf: make([]byte, 0, 64),
	}
	var sum float64
	for _, wf := range workflows {
		sum += wf.share
		g.wfCum = append(g.wfCum, sum)
	}
	return g
}

// batch is one generated request pair; the pdata belongs to whoever sends it.
type batch struct {
	logs      plog.Logs
	traces    ptrace.Traces
	nLogs     int
	nSpans    int
	decisions int // decisions started in this batch
}

// resource fills the attributes that identify the run: the verifier finds
// the run's rows by service.instance.id.
func (g *generator) resource(attrs pcommon.Map) {
	attrs.EnsureCapacity(3)
	attrs.PutStr("service.name", "dtloadgen")
	attrs.PutStr("service.instance.id", g.sh.cfg.runID)
	attrs.PutStr("deployment.environment.name", "demo")
}

// fill generates exactly n events stamped around now. Decisions that do not
// fit carry over into the next call so every decision stays whole.
func (g *generator) fill(n int, now time.Time) batch {
	b := batch{logs: plog.NewLogs(), traces: ptrace.NewTraces()}
	rl := b.logs.ResourceLogs().AppendEmpty()
	g.resource(rl.Resource().Attributes())
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("dtloadgen")
	lrs := sl.LogRecords()
	lrs.EnsureCapacity(n)
	rs := b.traces.ResourceSpans().AppendEmpty()
	g.resource(rs.Resource().Attributes())
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("dtloadgen")
	spans := ss.Spans()
	spans.EnsureCapacity(n/5 + 1)

	if g.sh.dueSignals(now) {
		g.signals = g.sh.drawSignals(g.signals)
	}
	base := pcommon.NewTimestampFromTime(now)
	for i := 0; i < n; i++ {
		// Distinct nanoseconds keep the events of a batch in generation order.
		ts := base + pcommon.Timestamp(i)
		if len(g.later) > 0 && !g.later[0].due.After(now) {
			l := heap.Pop(&g.later).(laterStep)
			g.emitLog(lrs.AppendEmpty(), &l.p, l.st, now, ts)
			b.nLogs++
			continue
		}
		if g.sigNext < len(g.signals) {
			g.emitSignal(lrs.AppendEmpty(), &g.signals[g.sigNext], now, ts)
			g.sigNext++
			if g.sigNext == len(g.signals) {
				g.signals, g.sigNext = g.signals[:0], 0
			}
			b.nLogs++
			continue
		}
		if g.cur.done() {
			g.plan(&g.cur)
			b.decisions++
		}
		p := &g.cur
		st := p.steps[p.next]
		for g.sh.cfg.actAfter > 0 && (st == stepHuman || st == stepOutcome) {
			due := now.Add(p.actDelay)
			if st == stepOutcome {
				due = due.Add(g.sh.cfg.actAfter)
			}
			heap.Push(&g.later, laterStep{due: due, p: *p, st: st})
			if p.next++; p.done() {
				g.plan(&g.cur)
				b.decisions++
			}
			st = p.steps[p.next]
		}
		if st == stepModel {
			g.emitModel(spans.AppendEmpty(), p, ts)
			b.nSpans++
		} else {
			g.emitLog(lrs.AppendEmpty(), p, st, now, ts)
			b.nLogs++
		}
		p.next++
	}
	return b
}

func (g *generator) pick(ws []weighted) string {
	var total float64
	for _, w := range ws {
		total += w.weight
	}
	x := g.r.Float64() * total
	for _, w := range ws {
		if x < w.weight {
			return w.value
		}
		x -= w.weight
	}
	return ws[len(ws)-1].value
}

// lognormal draws around a median with a multiplicative spread, the usual
// shape of latencies and handling times.
func (g *generator) lognormal(median, sigma float64) float64 {
	return median * math.Exp(g.r.NormFloat64()*sigma)
}

func clamp(x, lo, hi float64) float64 { return math.Min(math.Max(x, lo), hi) }

func (g *generator) plan(p *plan) {
	r := g.r
	x := r.Float64() * g.wfCum[len(g.wfCum)-1]
	wf := workflows[len(workflows)-1]
	for i, cum := range g.wfCum {
		if x < cum {
			wf = workflows[i]
			break
		}
	}
	num := g.sh.decisions.Add(1)
	g.buf = append(g.buf[:0], g.sh.cfg.runID...)
	g.buf = append(g.buf, '-')
	g.buf = strconv.AppendUint(g.buf, num, 10)
	*p = plan{wf: wf, id: string(g.buf)}
	hi, lo := r.Uint64(), r.Uint64()
	for i := 0; i < 8; i++ {
		p.traceID[i] = byte(hi >> (8 * i))
		p.traceID[8+i] = byte(lo >> (8 * i))
		p.spanID[i] = byte(r.Uint64())
	}
	p.entityNum = strconv.FormatUint(entityBase+r.Uint64N(g.sh.cfg.entityPool()), 10)

	u := r.Float64()
	p.stale = u < g.sh.cfg.staleShare
	p.missing = !p.stale && u < g.sh.cfg.staleShare+g.sh.cfg.missingShare

	var required []int
	var reqBuf [4]int
	required = reqBuf[:0]
	for i := range wf.sources {
		if wf.sources[i].required {
			required = append(required, i)
		}
	}
	skip := -1
	if p.missing {
		skip = required[r.IntN(len(required))]
	}
	for i := range wf.sources {
		src := &wf.sources[i]
		if i == skip || (!src.required && r.Float64() >= src.readP) {
			continue
		}
		// Most reads are seconds old; a tail is near the source's usual lag.
		age := time.Second + time.Duration(math.Pow(r.Float64(), 2)*float64(src.maxAge))
		p.reads[p.nReads] = readPlan{src: src, age: age, complete: r.Float64() >= 0.03}
		p.nReads++
	}
	if p.stale && p.nReads > 0 {
		p.reads[r.IntN(p.nReads)].age = staleAge(r)
	}

	mi := 0
	if r.Float64() >= wf.models[0].share {
		mi = 1 % len(wf.models)
	}
	m := &wf.models[mi]
	p.model = m
	if r.Float64() < m.lowShare {
		p.confidence = clamp(m.confLow+r.NormFloat64()*0.12, 0.02, 0.99)
	} else {
		p.confidence = clamp(m.confHigh+r.NormFloat64()*0.07, 0.02, 0.999)
	}
	// Round to 4 places as a real model client would report it.
	p.confidence = math.Round(p.confidence*1e4) / 1e4
	p.rec = wf.recommendations[min(int(math.Pow(r.Float64(), 1.6)*float64(len(wf.recommendations))), len(wf.recommendations)-1)]
	p.latencyMS = math.Round(g.lognormal(m.latencyMedianMS, 0.45)*10) / 10
	p.inTok = int64(g.lognormal(1800, 0.5)) + 200
	p.outTok = int64(g.lognormal(180, 0.6)) + 10

	switch {
	case p.confidence < wf.confidenceFloor:
		p.route = routeManual
		if r.Float64() < 0.12 {
			p.route = routeEscalated
		}
	default:
		switch x := r.Float64(); {
		case x < 0.03:
			p.route = routeEscalated
		case x < 0.15:
			p.route = routeManual
		default:
			p.route = routeAuto
		}
	}

	cost := float64(p.inTok)*wf.inPrice + float64(p.outTok)*wf.outPrice
	switch p.route {
	case routeAuto:
		p.cycleS = g.lognormal(40, 0.6) + p.latencyMS/1000
	case routeManual:
		p.cycleS = g.lognormal(3*3600, 0.8)
	case routeEscalated:
		p.cycleS = g.lognormal(20*3600, 0.7)
	}
	if p.route != routeAuto {
		table := humanActions
		if p.stale || p.missing {
			table = humanActionsBadContext
		}
		p.action = g.pick(table)
		p.actor = wf.reviewers[r.IntN(len(wf.reviewers))]
		reasons := humanReasons[p.action]
		p.reason = reasons[r.IntN(len(reasons))]
		handlingMin := g.lognormal(6, 0.5)
		if p.route == routeEscalated {
			handlingMin *= 3
		}
		cost += handlingMin * wf.humanCostPerMin
	}
	p.cost = math.Round(cost*1e4) / 1e4
	p.cycleS = math.Round(p.cycleS*1000) / 1000
	p.outcome = g.pick(wf.outcomes)
	p.rework = r.Float64() < reworkShare
	p.exception = ""
	if r.Float64() < exceptionShare {
		p.exception = exceptionTypes[r.IntN(len(exceptionTypes))]
	}
	p.evalScore = -1
	if wf.evaluated {
		p.evalScore = 0.5 + 0.5*r.Float64()
		if r.Float64() < lowScoreShare {
			p.evalScore = 0.5 * r.Float64()
		}
	}
	p.unsafe = r.Float64() < unsafeShare

	for i := 0; i < p.nReads; i++ {
		p.steps[p.n] = stepRead
		p.n++
	}
	p.steps[p.n] = stepModel
	p.steps[p.n+1] = stepRouted
	p.n += 2
	if p.action != "" {
		p.steps[p.n] = stepHuman
		p.n++
	}
	if p.evalScore >= 0 {
		p.steps[p.n] = stepEvaluation
		p.n++
	}
	if p.exception != "" {
		p.steps[p.n] = stepException
		p.n++
	}
	if p.rework {
		p.steps[p.n] = stepRework
		p.n++
	}
	p.steps[p.n] = stepOutcome
	p.n++
	p.actDelay = 0
	if g.sh.cfg.actAfter > 0 {
		p.actDelay = time.Duration((0.25 + 1.5*r.Float64()) * float64(g.sh.cfg.actAfter))
	}
}

// The demo's shares of hidden work and quality signals: under the shipped
// contracts' limits (cleanup 10%, a 99% safe-output SLO), so that they
// page on an incident, not on an ordinary day.
const (
	reworkShare    = 0.03
	exceptionShare = 0.02
	lowScoreShare  = 0.05
	unsafeShare    = 0.002
)

var exceptionTypes = []string{"manual-validation", "timeout", "schema-mismatch"}

func (g *generator) asOf(src string, now time.Time, age time.Duration) string {
	g.buf = g.sh.cfg.incident.asOf(src, now, age).UTC().AppendFormat(g.buf[:0], time.RFC3339Nano)
	return string(g.buf)
}

func (g *generator) emitLog(lr plog.LogRecord, p *plan, st step, now time.Time, ts pcommon.Timestamp) {
	lr.SetTimestamp(ts)
	lr.SetObservedTimestamp(ts)
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	lr.SetSeverityText("INFO")
	lr.SetTraceID(p.traceID)
	a := lr.Attributes()
	wf := p.wf
	switch st {
	case stepRead:
		rd := &p.reads[p.next] // reads are the first steps, in order
		lr.Body().SetStr(c.EventContextRead)
		a.EnsureCapacity(9)
		decisionAttrs(a, p, c.LayerData, c.EventContextRead)
		a.PutStr(c.DataSource, rd.src.name)
		a.PutStr(c.DataAsOf, g.asOf(rd.src.name, now, rd.age))
		a.PutBool(c.DataComplete, rd.complete)
		a.PutStr(c.DataEntitySystem, rd.src.system)
		a.PutStr(c.DataEntityID, rd.src.idPrefix+p.entityNum)
	case stepRouted:
		lr.Body().SetStr(c.EventWorkflowRouted)
		a.EnsureCapacity(6)
		decisionAttrs(a, p, c.LayerWorkflow, c.EventWorkflowRouted)
		a.PutStr(c.WorkflowRoute, p.route)
		if p.route != routeAuto {
			a.PutStr(c.WorkflowQueue, wf.queue)
		}
	case stepHuman:
		lr.Body().SetStr(c.EventHumanAction)
		a.EnsureCapacity(7)
		decisionAttrs(a, p, c.LayerHuman, c.EventHumanAction)
		a.PutStr(c.HumanAction, p.action)
		a.PutStr(c.HumanActor, p.actor)
		a.PutStr(c.HumanReason, p.reason)
	case stepRework:
		lr.Body().SetStr(c.EventWorkflowRework)
		a.EnsureCapacity(4)
		decisionAttrs(a, p, c.LayerWorkflow, c.EventWorkflowRework)
	case stepException:
		lr.Body().SetStr(c.EventWorkflowException)
		a.EnsureCapacity(5)
		decisionAttrs(a, p, c.LayerWorkflow, c.EventWorkflowException)
		a.PutStr(c.WorkflowExceptionType, p.exception)
	case stepEvaluation:
		// As GenAI instrumentation records an evaluator's verdict.
		lr.SetEventName(c.GenAIEvaluationResult)
		a.EnsureCapacity(7)
		decisionAttrs(a, p, c.LayerModel, c.EventModelEvaluation)
		a.PutStr(c.GenAIEvaluationName, "groundedness")
		a.PutDouble(c.GenAIEvaluationScoreValue, math.Round(p.evalScore*1000)/1000)
		label := "grounded"
		if p.evalScore < 0.5 {
			label = "ungrounded"
		}
		a.PutStr(c.GenAIEvaluationScoreLabel, label)
	case stepOutcome:
		lr.Body().SetStr(c.EventBusinessOutcome)
		a.EnsureCapacity(7)
		decisionAttrs(a, p, c.LayerBusiness, c.EventBusinessOutcome)
		a.PutStr(c.BusinessOutcome, p.outcome)
		a.PutDouble(c.BusinessCycleTimeS, p.cycleS)
		a.PutDouble(c.BusinessCost, p.cost)
	}
}

func decisionAttrs(a pcommon.Map, p *plan, layer, event string) {
	a.PutStr(c.DecisionID, p.id)
	a.PutStr(c.DecisionWorkflow, p.wf.name)
	a.PutStr(c.DecisionLayer, layer)
	a.PutStr(c.DecisionEvent, event)
}

// emitModel writes the model output as a GenAI client span, the way an
// instrumented model call arrives from an application.
func (g *generator) emitModel(sp ptrace.Span, p *plan, end pcommon.Timestamp) {
	m := p.model
	sp.SetTraceID(p.traceID)
	sp.SetSpanID(p.spanID)
	sp.SetName(m.spanName)
	sp.SetKind(ptrace.SpanKindClient)
	sp.SetStartTimestamp(end - pcommon.Timestamp(p.latencyMS*1e6))
	sp.SetEndTimestamp(end)
	a := sp.Attributes()
	a.EnsureCapacity(14)
	decisionAttrs(a, p, c.LayerModel, c.EventModelOutput)
	a.PutStr(c.ModelName, m.name)
	a.PutStr(c.ModelVersion, m.version)
	a.PutDouble(c.ModelConfidence, p.confidence)
	a.PutStr(c.ModelRecommendation, p.rec)
	a.PutDouble(c.ModelLatencyMS, p.latencyMS)
	a.PutStr(c.GenAIRequestModel, m.genAIModel)
	a.PutStr(c.GenAIProviderName, m.provider())
	if p.unsafe {
		a.PutBool(c.ModelUnsafe, true)
	}
	a.PutInt(c.GenAIUsageInputTokens, p.inTok)
	a.PutInt(c.GenAIUsageOutputTokens, p.outTok)
}

func (g *generator) emitSignal(lr plog.LogRecord, s *periodic, now time.Time, ts pcommon.Timestamp) {
	lr.SetTimestamp(ts)
	lr.SetObservedTimestamp(ts)
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	lr.SetSeverityText("INFO")
	a := lr.Attributes()
	a.EnsureCapacity(6)
	a.PutStr(c.DecisionWorkflow, s.wf.name)
	if s.src != nil {
		lr.Body().SetStr(c.EventSourceFreshness)
		a.PutStr(c.DecisionLayer, c.LayerData)
		a.PutStr(c.DecisionEvent, c.EventSourceFreshness)
		a.PutStr(c.DataSource, s.src.name)
		a.PutStr(c.DataAsOf, g.asOf(s.src.name, now, s.age))
		a.PutBool(c.DataAvailable, s.avail)
		return
	}
	lr.Body().SetStr(c.EventQueueDepth)
	a.PutStr(c.DecisionLayer, c.LayerWorkflow)
	a.PutStr(c.DecisionEvent, c.EventQueueDepth)
	a.PutStr(c.WorkflowQueue, s.wf.queue)
	a.PutInt(c.WorkflowQueueDepth, s.depth)
}
