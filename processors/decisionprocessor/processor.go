package decisionprocessor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/decisiontrace/decisiontrace/internal/contract"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/decision"
	"github.com/decisiontrace/decisiontrace/processors/decisionprocessor/internal/metadata"
)

// decisionProcessor is shared by the logs and traces pipelines of one
// component ID: context reads and model outputs of a decision meet in one
// tracker whichever signal carried them.
type decisionProcessor struct {
	cfg     *Config
	logger  *zap.Logger
	now     func() time.Time
	tracker *tracker
	aliases *aliases
	// reconcile is whether any alias map is configured.
	reconcile bool

	mu       sync.Mutex
	nextLogs consumer.Logs // the logs pipeline's next consumer, where verdicts go
	// outbox holds verdicts completed by spans until the next tick sends
	// them as one request: one logs request per traces request would cost
	// a persistent-queue write each.
	outbox []verdict
	starts int
	stop   chan struct{}
	done   sync.WaitGroup

	verdicts       metric.Int64Counter
	verdictsLost   metric.Int64Counter
	unresolved     metric.Int64Counter
	evictions      metric.Int64Counter
	lateContext    metric.Int64Counter
	expired        metric.Int64Counter
	aliasReloadErr metric.Int64Counter
	pendingGauge   metric.Int64ObservableGauge
	registration   metric.Registration
}

func newDecisionProcessor(cfg *Config, set processor.Settings) (*decisionProcessor, error) {
	files, err := cfg.contractFiles()
	if err != nil {
		return nil, err
	}
	contracts, err := contract.Load(files)
	if err != nil {
		return nil, err
	}
	p := &decisionProcessor{
		cfg:       cfg,
		logger:    set.Logger,
		now:       time.Now,
		tracker:   newTracker(contracts, cfg.VerdictWindow, cfg.MaxPendingDecisions),
		aliases:   newAliases(cfg.Aliases),
		reconcile: len(cfg.Aliases.Files) > 0 || cfg.Aliases.ClickHouse.HasValue(),
	}
	// A broken alias file stops the start; an unreachable alias table does
	// not (it is retried at every reload), as ClickHouse may start later.
	if _, err := p.aliases.reloadFiles(); err != nil {
		return nil, err
	}
	fromFiles := maps.Clone(p.aliases.fromFiles)
	p.aliases.merged.Store(&fromFiles)
	meter := set.MeterProvider.Meter(metadata.ScopeName)
	var errs []error
	counter := func(name, desc, unit string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return c
	}
	p.verdicts = counter("otelcol_decision_verdicts", "Verdicts produced, by workflow, context (fresh, stale, missing) and whether the output was unsupported certainty.", "{verdict}")
	p.verdictsLost = counter("otelcol_decision_verdicts_lost", "Verdicts the logs pipeline refused, or that had no logs pipeline to go to.", "{verdict}")
	p.unresolved = counter("otelcol_decision_unresolved_identifiers", "Entity identifiers no alias map resolved, by source system.", "{identifier}")
	p.evictions = counter("otelcol_decision_evictions", "Pending decisions dropped without a verdict because max_pending_decisions was reached.", "{decision}")
	p.lateContext = counter("otelcol_decision_late_context", "Context reads that arrived after their decision's verdict.", "{read}")
	p.expired = counter("otelcol_decision_expired_without_output", "Decisions whose context was seen but whose model output never arrived.", "{decision}")
	p.aliasReloadErr = counter("otelcol_decision_alias_reload_errors", "Alias map reloads that failed; the previous map stays in force.", "{reload}")
	p.pendingGauge, err = meter.Int64ObservableGauge("otelcol_decision_pending", metric.WithDescription("Decisions waiting for their model output or context."), metric.WithUnit("{decision}"))
	errs = append(errs, err)
	if err == nil {
		p.registration, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			o.ObserveInt64(p.pendingGauge, int64(p.tracker.pendingCount()))
			return nil
		}, p.pendingGauge)
		errs = append(errs, err)
	}
	return p, errors.Join(errs...)
}

func (p *decisionProcessor) setNextLogs(next consumer.Logs) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextLogs = next
}

func (p *decisionProcessor) start(context.Context, component.Host) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starts++
	if p.starts > 1 {
		return nil
	}
	if p.nextLogs == nil {
		p.logger.Warn("the decision processor is in no logs pipeline: its verdicts have nowhere to go and are counted as lost")
	}
	p.stop = make(chan struct{})
	p.done.Add(1)
	go p.loop(p.stop)
	return nil
}

func (p *decisionProcessor) shutdown(ctx context.Context) error {
	p.mu.Lock()
	if p.starts == 0 {
		p.mu.Unlock()
		return nil
	}
	p.starts--
	last := p.starts == 0
	p.mu.Unlock()
	if !last {
		return nil
	}
	close(p.stop)
	p.done.Wait()
	// Decisions with an output get their verdict from what is known rather
	// than being forgotten with the process.
	p.emit(ctx, append(p.takeOutbox(), p.tracker.flush()...))
	if p.registration != nil {
		_ = p.registration.Unregister()
	}
	return p.aliases.close()
}

func tickInterval(window time.Duration) time.Duration {
	return min(max(window/10, 10*time.Millisecond), time.Second)
}

func (p *decisionProcessor) loop(stop <-chan struct{}) {
	defer p.done.Done()
	tick := time.NewTicker(tickInterval(p.cfg.VerdictWindow))
	defer tick.Stop()
	var reload <-chan time.Time
	if len(p.cfg.Aliases.Files) > 0 || p.cfg.Aliases.ClickHouse.HasValue() {
		r := time.NewTicker(p.cfg.Aliases.ReloadInterval)
		defer r.Stop()
		reload = r.C
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if p.cfg.Aliases.ClickHouse.HasValue() {
		p.reloadAliases(ctx)
	}
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			p.emit(ctx, append(p.takeOutbox(), p.tracker.tick(p.now())...))
			p.recordStats(ctx)
		case <-reload:
			p.reloadAliases(ctx)
		}
	}
}

func (p *decisionProcessor) reloadAliases(ctx context.Context) {
	changed, err := p.aliases.reload(ctx)
	switch {
	case err != nil:
		p.aliasReloadErr.Add(ctx, 1)
		p.logger.Warn("alias map reload failed", zap.Error(err))
	case changed:
		p.logger.Info("alias maps reloaded", zap.Int("aliases", p.aliases.size()))
	}
}

func (p *decisionProcessor) recordStats(ctx context.Context) {
	s := p.tracker.takeStats()
	if s.evicted > 0 {
		p.evictions.Add(ctx, s.evicted)
	}
	if s.late > 0 {
		p.lateContext.Add(ctx, s.late)
	}
	if s.expired > 0 {
		p.expired.Add(ctx, s.expired)
	}
}

func (p *decisionProcessor) takeOutbox() []verdict {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.outbox
	p.outbox = nil
	return out
}

// emit sends verdicts completed outside the logs pipeline's own calls (by
// a span, the window timer or shutdown) down the logs pipeline.
func (p *decisionProcessor) emit(ctx context.Context, vs []verdict) {
	if len(vs) == 0 {
		return
	}
	p.mu.Lock()
	next := p.nextLogs
	p.mu.Unlock()
	if next == nil {
		p.verdictsLost.Add(ctx, int64(len(vs)))
		return
	}
	ld := plog.NewLogs()
	p.appendVerdicts(ctx, ld, vs)
	if err := next.ConsumeLogs(ctx, ld); err != nil {
		p.verdictsLost.Add(ctx, int64(len(vs)))
		p.logger.Warn("verdicts refused by the logs pipeline", zap.Int("verdicts", len(vs)), zap.Error(err))
	}
}

func (p *decisionProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	now := p.now()
	var ev decision.Event
	var ready []verdict
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				at := lr.Timestamp().AsTime()
				if lr.Timestamp() == 0 {
					at = lr.ObservedTimestamp().AsTime()
				}
				ready = append(ready, p.observe(ctx, lr.Attributes(), at, now, false, &ev)...)
			}
		}
	}
	p.appendVerdicts(ctx, ld, ready)
	return ld, nil
}

func (p *decisionProcessor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	now := p.now()
	var ev decision.Event
	var ready []verdict
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				ready = append(ready, p.observe(ctx, sp.Attributes(), sp.StartTimestamp().AsTime(), now, true, &ev)...)
			}
		}
	}
	if len(ready) > 0 {
		p.mu.Lock()
		p.outbox = append(p.outbox, ready...)
		p.mu.Unlock()
	}
	return td, nil
}

// observe classifies one record in place (layer, event, canonical entity
// ID) and feeds it to the tracker.
func (p *decisionProcessor) observe(ctx context.Context, attrs pcommon.Map, at, now time.Time, span bool, ev *decision.Event) []verdict {
	decision.Extract(attrs, at, ev)
	if !ev.Classified {
		return nil
	}
	if _, ok := attrs.Get(conventions.DecisionLayer); !ok && ev.Layer != "" {
		attrs.PutStr(conventions.DecisionLayer, ev.Layer)
	}
	// A GenAI span or a model-layer span that names no event is the model's
	// output: that is what GenAI instrumentation records.
	if ev.Event == "" && ev.Layer == conventions.LayerModel && span {
		ev.Event = conventions.EventModelOutput
		attrs.PutStr(conventions.DecisionEvent, ev.Event)
	}
	// Without any alias map there is nothing to reconcile against, and
	// marking every identifier unresolved would only be noise.
	if p.reconcile && ev.EntitySystem != "" && ev.EntityID != "" {
		if canonical, ok := p.aliases.lookup(ev.EntitySystem, ev.EntityID); ok {
			attrs.PutStr(conventions.DataEntityCanonicalID, canonical)
			attrs.PutBool(conventions.DataEntityResolved, true)
		} else {
			attrs.PutBool(conventions.DataEntityResolved, false)
			p.unresolved.Add(ctx, 1, metric.WithAttributes(attribute.String("system", ev.EntitySystem)))
		}
	}
	return p.tracker.observe(ev, at, now)
}

// appendVerdicts adds verdicts to ld as decision.verdict log records of a
// decisiontrace resource.
func (p *decisionProcessor) appendVerdicts(ctx context.Context, ld plog.Logs, vs []verdict) {
	if len(vs) == 0 {
		return
	}
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "decisiontrace")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	now := pcommon.NewTimestampFromTime(p.now())
	for i := range vs {
		v := &vs[i]
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(v.at))
		lr.SetObservedTimestamp(now)
		lr.SetEventName(conventions.EventVerdict)
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		if v.unsupported || v.context != conventions.ContextFresh {
			lr.SetSeverityNumber(plog.SeverityNumberWarn)
		}
		lr.Body().SetStr(v.summary())
		a := lr.Attributes()
		a.PutStr(conventions.DecisionID, v.decisionID)
		a.PutStr(conventions.DecisionWorkflow, v.workflow)
		a.PutStr(conventions.DecisionLayer, conventions.LayerModel)
		a.PutStr(conventions.DecisionEvent, conventions.EventVerdict)
		// One verdict per decision: a re-emitted one is the same event.
		a.PutStr(conventions.DecisionEventID, "verdict/"+v.decisionID)
		if v.modelName != "" {
			a.PutStr(conventions.ModelName, v.modelName)
		}
		if v.modelVersion != "" {
			a.PutStr(conventions.ModelVersion, v.modelVersion)
		}
		if v.confidence != nil {
			a.PutDouble(conventions.ModelConfidence, *v.confidence)
		}
		a.PutStr(conventions.VerdictContext, v.context)
		a.PutStr(conventions.VerdictContextSource, v.contextSource)
		putStrings(a, conventions.VerdictStaleSources, v.stale)
		putStrings(a, conventions.VerdictMissingSources, v.missing)
		if v.staleSource != "" {
			a.PutStr(conventions.VerdictStaleSource, v.staleSource)
			a.PutDouble(conventions.VerdictStaleAgeS, v.staleAge.Seconds())
			a.PutDouble(conventions.VerdictStaleBudgetS, v.staleBudget.Seconds())
		}
		a.PutBool(conventions.VerdictConfidenceLow, v.confidenceLow)
		a.PutDouble(conventions.VerdictConfidenceFloor, v.confidenceFloor)
		a.PutBool(conventions.VerdictUnsupportedCertainty, v.unsupported)
		a.PutStr(conventions.VerdictBehaviour, v.behaviour)
		p.verdicts.Add(ctx, 1, metric.WithAttributes(
			attribute.String("workflow", v.workflow),
			attribute.String("context", v.context),
			attribute.Bool("unsupported_certainty", v.unsupported)))
	}
}

func putStrings(m pcommon.Map, key string, vals []string) {
	s := m.PutEmptySlice(key)
	s.EnsureCapacity(len(vals))
	for _, v := range vals {
		s.AppendEmpty().SetStr(v)
	}
}

// summary is the verdict in words, for people reading raw records.
func (v *verdict) summary() string {
	s := fmt.Sprintf("context %s", v.context)
	if len(v.stale) > 0 {
		s += fmt.Sprintf(" (stale: %v; %s %.0fs old, budget %.0fs)", v.stale, v.staleSource, v.staleAge.Seconds(), v.staleBudget.Seconds())
	}
	if len(v.missing) > 0 {
		s += fmt.Sprintf(" (missing: %v)", v.missing)
	}
	if v.unsupported {
		s += "; unsupported certainty"
	}
	if v.confidenceLow {
		s += "; confidence below floor"
	}
	return s + "; behaviour " + v.behaviour
}
