package decisionprocessor

import (
	"context"
	"encoding/hex"
	"maps"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/decision"
	"github.com/decisiontrace/decisiontrace/processors/decisionprocessor/internal/metadata"
)

// decisionProcessor is shared by the pipelines of one component ID (see
// instances). It keeps no decision state: each record is classified and
// reconciled on its own, so any number of collectors, restarted at any
// moment, store the same events.
type decisionProcessor struct {
	cfg     *Config
	logger  *zap.Logger
	aliases *aliases
	// reconcile is whether any alias map is configured.
	reconcile bool
	// known are the known workflows (nil: unknown_workflows is store).
	known map[string]bool

	mu     sync.Mutex
	starts int
	// cancel stops the alias reload loop (nil: none runs).
	cancel context.CancelFunc
	done   sync.WaitGroup

	unresolved      metric.Int64Counter
	aliasReloadErr  metric.Int64Counter
	unknownWorkflow metric.Int64Counter
}

func newDecisionProcessor(cfg *Config, set processor.Settings) (*decisionProcessor, error) {
	p := &decisionProcessor{
		cfg:       cfg,
		logger:    set.Logger,
		aliases:   newAliases(cfg.Aliases),
		reconcile: cfg.reconciles(),
	}
	// A broken alias file stops the start; an unreachable alias table does
	// not (it is retried at every reload), as ClickHouse may start later.
	if _, err := p.aliases.reloadFiles(); err != nil {
		return nil, err
	}
	if cfg.UnknownWorkflows != UnknownWorkflowsStore {
		known, err := cfg.KnownWorkflows.known()
		if err != nil {
			return nil, err
		}
		p.known = known
	}
	fromFiles := maps.Clone(p.aliases.fromFiles)
	p.aliases.merged.Store(&fromFiles)
	// Its own metrics, as metadata.yaml declares them.
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	p.unresolved = tb.DecisionUnresolvedIdentifiers
	p.unknownWorkflow = tb.DecisionUnknownWorkflowRecords
	p.aliasReloadErr = tb.DecisionAliasReloadErrors
	return p, nil
}

func (p *decisionProcessor) start(context.Context, component.Host) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starts++
	if p.starts > 1 {
		return nil
	}
	if !p.reconcile {
		return nil // no alias map to reload: no goroutine
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.done.Add(1)
	go p.loop(ctx)
	return nil
}

func (p *decisionProcessor) shutdown(context.Context) error {
	p.mu.Lock()
	if p.starts == 0 {
		p.mu.Unlock()
		return nil
	}
	p.starts--
	last := p.starts == 0
	cancel := p.cancel
	if last {
		p.cancel = nil
	}
	p.mu.Unlock()
	if !last {
		return nil
	}
	if cancel != nil {
		cancel() // also cuts a slow alias table read short
		p.done.Wait()
	}
	return p.aliases.close()
}

// loop reloads the alias maps until ctx is cancelled.
func (p *decisionProcessor) loop(ctx context.Context) {
	defer p.done.Done()
	tick := time.NewTicker(p.cfg.Aliases.ReloadInterval)
	defer tick.Stop()
	if p.cfg.Aliases.ClickHouse.HasValue() {
		p.reloadAliases(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			p.reloadAliases(ctx)
		}
	}
}

func (p *decisionProcessor) reloadAliases(ctx context.Context) {
	changed, err := p.aliases.reload(ctx)
	switch {
	case err != nil && ctx.Err() != nil:
		// shutting down
	case err != nil:
		p.aliasReloadErr.Add(ctx, 1)
		p.logger.Warn("alias map reload failed", zap.Error(err))
	case changed:
		p.logger.Info("alias maps reloaded", zap.Int("aliases", p.aliases.size()))
	}
}

func (p *decisionProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	var ev decision.Event
	var unknown unknownWorkflows
	for where, lr := range decision.LogRecords(ld) {
		at := lr.Timestamp()
		if at == 0 {
			at = lr.ObservedTimestamp()
		}
		res := ld.ResourceLogs().At(where.Resource).Resource().Attributes()
		p.classify(ctx, lr.Attributes(), res, at, lr.TraceID(), false, &ev)
		unknown.check(p, lr.Attributes(), &ev, where)
	}
	return ld, unknown.result(ctx, p)
}

func (p *decisionProcessor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	var ev decision.Event
	var unknown unknownWorkflows
	for where, sp := range decision.Spans(td) {
		res := td.ResourceSpans().At(where.Resource).Resource().Attributes()
		p.classify(ctx, sp.Attributes(), res, sp.StartTimestamp(), sp.TraceID(), true, &ev)
		unknown.check(p, sp.Attributes(), &ev, where)
	}
	return td, unknown.result(ctx, p)
}

// unknownWorkflows applies the unknown_workflows policy over one request.
type unknownWorkflows struct {
	tagged  int64
	refused decision.Refusals
}

func (u *unknownWorkflows) check(p *decisionProcessor, attrs pcommon.Map, ev *decision.Event, where decision.Where) {
	if p.known == nil || !ev.Classified || ev.Workflow == "" || p.known[ev.Workflow] {
		return
	}
	switch p.cfg.UnknownWorkflows {
	case UnknownWorkflowsTag:
		attrs.PutBool(conventions.DecisionWorkflowUnknown, true)
		u.tagged++
	case UnknownWorkflowsRefuse:
		u.refused.Add(where, "%s \"%s\"", conventions.DecisionWorkflow, ev.Workflow)
	}
}

func (u *unknownWorkflows) result(ctx context.Context, p *decisionProcessor) error {
	if u.tagged > 0 {
		p.unknownWorkflow.Add(ctx, u.tagged, metric.WithAttributes(attribute.String("action", "tagged")))
	}
	err := u.refused.Err("no contract or known_workflows entry names this workflow (unknown_workflows: refuse); nothing of this request was stored")
	if err == nil {
		return nil
	}
	p.unknownWorkflow.Add(ctx, int64(u.refused.Len()), metric.WithAttributes(attribute.String("action", "refused")))
	return err
}

// classify completes one record in place: its layer, its event (a model
// span's output, a retrieval's context read), its decision ID (its trace's,
// with decision_id_from_trace_id) and the canonical ID of its entity. The
// record's own time only bounds how far in its future a data.as_of may lie.
func (p *decisionProcessor) classify(ctx context.Context, attrs, resource pcommon.Map, at pcommon.Timestamp, trace pcommon.TraceID,
	span bool, ev *decision.Event) {
	decision.Extract(attrs, at.AsTime(), ev)
	if !ev.Classified {
		return
	}
	ev.FromResource(resource, at.AsTime())
	if p.cfg.DecisionIDFromTraceID && ev.ID == "" && !trace.IsEmpty() && !decision.SharedEvent(ev.Event) {
		// One traced request is one decision: every span and log of it
		// carries the trace ID, which no other request has.
		ev.ID = hex.EncodeToString(trace[:])
		attrs.PutStr(conventions.DecisionID, ev.ID)
	}
	if _, ok := attrs.Get(conventions.DecisionLayer); !ok && ev.Layer != "" {
		attrs.PutStr(conventions.DecisionLayer, ev.Layer)
	}
	if e := ev.ImpliedEvent(span); e != "" {
		attrs.PutStr(conventions.DecisionEvent, e)
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
}
