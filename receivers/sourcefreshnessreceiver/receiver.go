package sourcefreshnessreceiver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/receivers/sourcefreshnessreceiver/internal/metadata"
)

// maxErrorLen keeps data.error a reason, not a driver's essay.
const maxErrorLen = 300

type signal int

const (
	freshness signal = iota
	queueDepth
)

type poller struct {
	signal    signal
	cfg       *SourceConfig
	workflows []string
	interval  time.Duration
	timeout   time.Duration
	secrets   []string
	probe     prober
	// failing is only touched by the poller's own goroutine; it turns
	// per-poll failures into one log line when a source goes down and one
	// when it comes back.
	failing bool
}

type freshnessReceiver struct {
	cfg        *Config
	set        receiver.Settings
	next       consumer.Logs
	obs        *receiverhelper.ObsReport
	polls      metric.Int64Counter
	queuePolls metric.Int64Counter
	now        func() time.Time

	mu      sync.Mutex
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	pollers []*poller
}

var _ receiver.Logs = (*freshnessReceiver)(nil)

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Logs) (*freshnessReceiver, error) {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "poll",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	// Its own metrics, as metadata.yaml declares them.
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	polls := tb.SourcefreshnessPolls
	queuePolls := tb.SourcefreshnessQueuePolls
	return &freshnessReceiver{cfg: cfg, set: set, next: next, obs: obs, polls: polls, queuePolls: queuePolls, now: time.Now}, nil
}

// Start builds every source's client without touching the network: an
// unreachable source is a signal to emit, not a reason to stop the collector.
func (r *freshnessReceiver) Start(ctx context.Context, _ component.Host) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var pollers []*poller
	add := func(sig signal, list []SourceConfig) error {
		for i := range list {
			s := &list[i]
			p := &poller{
				signal:    sig,
				cfg:       s,
				workflows: s.workflows(),
				interval:  pick(s.Interval, r.cfg.Interval),
				timeout:   pick(s.Timeout, r.cfg.Timeout),
				secrets:   secrets(s),
			}
			pr, err := newProber(ctx, s, p.timeout, r.set.Logger)
			if err != nil {
				return fmt.Errorf("%s: %s", s.Name, redact(err.Error(), p.secrets))
			}
			p.probe = pr
			pollers = append(pollers, p)
		}
		return nil
	}
	err := errors.Join(add(freshness, r.cfg.Sources), add(queueDepth, r.cfg.Queues))
	if err != nil {
		for _, p := range pollers {
			_ = p.probe.close()
		}
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.pollers = pollers
	for _, p := range pollers {
		r.wg.Go(func() { r.loop(runCtx, p) })
	}
	return nil
}

// Shutdown cancels every poll in flight (the drivers abort on context
// cancellation), waits for the pollers and closes their connections. Nothing
// is emitted once it returns.
func (r *freshnessReceiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	stopped := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		return fmt.Errorf("sourcefreshness: pollers still running at shutdown deadline: %w", ctx.Err())
	}
	var errs []error
	for _, p := range r.pollers {
		if err := p.probe.close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: close: %s", p.cfg.Name, redact(err.Error(), p.secrets)))
		}
	}
	r.cancel, r.pollers = nil, nil
	return errors.Join(errs...)
}

func pick(own, dflt time.Duration) time.Duration {
	if own > 0 {
		return own
	}
	return dflt
}

func (r *freshnessReceiver) loop(ctx context.Context, p *poller) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		r.poll(ctx, p)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *freshnessReceiver) poll(ctx context.Context, p *poller) {
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	raw, err := p.probe.read(pctx)
	timedOut := errors.Is(pctx.Err(), context.DeadlineExceeded)
	cancel()
	if ctx.Err() != nil {
		// Shutting down: the poll was cut short, and what it says is not
		// about the source.
		return
	}
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	sl.Scope().SetVersion(r.set.BuildInfo.Version)
	now := r.now()

	var result string
	if p.signal == freshness {
		var asOf time.Time
		if err == nil {
			asOf, err = asTime(raw)
		}
		reason := p.reason(err, timedOut)
		for _, wf := range p.recordWorkflows() {
			freshnessRecord(sl.LogRecords().AppendEmpty(), p.cfg.Name, wf, now, asOf, reason)
		}
		result = resultOf(err)
		r.polls.Add(ctx, 1, metric.WithAttributes(attribute.String("source", p.cfg.Name), attribute.String("result", result)))
	} else {
		var depth int64
		if err == nil {
			depth, err = asDepth(raw)
		}
		// A depth that could not be read is not emitted: no convention says
		// "unknown depth", and a made-up 0 would read as an empty queue.
		if err == nil {
			for _, wf := range p.recordWorkflows() {
				queueRecord(sl.LogRecords().AppendEmpty(), p.cfg.Name, wf, now, depth)
			}
		}
		result = resultOf(err)
		r.queuePolls.Add(ctx, 1, metric.WithAttributes(attribute.String("queue", p.cfg.Name), attribute.String("result", result)))
	}
	r.logTransition(p, err, timedOut)

	n := ld.LogRecordCount()
	if n == 0 {
		return
	}
	octx := r.obs.StartLogsOp(ctx)
	cerr := r.next.ConsumeLogs(octx, ld)
	r.obs.EndLogsOp(octx, metadata.Type.String(), n, cerr)
	if cerr != nil && ctx.Err() == nil {
		r.set.Logger.Warn("next consumer refused polled signals", zap.String("name", p.cfg.Name), zap.Error(cerr))
	}
}

func resultOf(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

func (r *freshnessReceiver) logTransition(p *poller, err error, timedOut bool) {
	what := "source"
	if p.signal == queueDepth {
		what = "queue"
	}
	switch {
	case err != nil && !p.failing:
		p.failing = true
		r.set.Logger.Warn(what+" unavailable", zap.String("name", p.cfg.Name), zap.String("kind", string(p.cfg.Kind)), zap.String("reason", p.reason(err, timedOut)))
	case err == nil && p.failing:
		p.failing = false
		r.set.Logger.Info(what+" available again", zap.String("name", p.cfg.Name), zap.String("kind", string(p.cfg.Kind)))
	}
}

// recordWorkflows is one record per workflow, or a single record without
// decision.workflow for a source no workflow is named for.
func (p *poller) recordWorkflows() []string {
	if len(p.workflows) == 0 {
		return []string{""}
	}
	return p.workflows
}

// reason is data.error: short, one line, and free of the DSN, passwords and
// header values.
func (p *poller) reason(err error, timedOut bool) string {
	if err == nil {
		return ""
	}
	if timedOut {
		return fmt.Sprintf("timeout after %s", p.timeout)
	}
	msg := strings.Join(strings.Fields(redact(err.Error(), p.secrets)), " ")
	return clip(msg, maxErrorLen)
}

func freshnessRecord(lr plog.LogRecord, source, workflow string, now, asOf time.Time, reason string) {
	ts := pcommon.NewTimestampFromTime(now)
	lr.SetTimestamp(ts)
	lr.SetObservedTimestamp(ts)
	lr.Body().SetStr(c.EventSourceFreshness)
	a := lr.Attributes()
	a.EnsureCapacity(8)
	a.PutStr(c.DecisionLayer, c.LayerData)
	a.PutStr(c.DecisionEvent, c.EventSourceFreshness)
	a.PutStr(c.DataSource, source)
	if workflow != "" {
		a.PutStr(c.DecisionWorkflow, workflow)
	}
	if reason != "" {
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
		lr.SetSeverityText("WARN")
		a.PutBool(c.DataAvailable, false)
		a.PutStr(c.DataError, reason)
		return
	}
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	lr.SetSeverityText("INFO")
	a.PutStr(c.DataAsOf, asOf.UTC().Format(time.RFC3339Nano))
	// A source whose clock runs ahead of ours would give a negative age,
	// which consumers reject; it is as fresh as can be.
	a.PutDouble(c.DataAgeS, max(0, now.Sub(asOf).Seconds()))
	a.PutBool(c.DataAvailable, true)
}

func queueRecord(lr plog.LogRecord, queue, workflow string, now time.Time, depth int64) {
	ts := pcommon.NewTimestampFromTime(now)
	lr.SetTimestamp(ts)
	lr.SetObservedTimestamp(ts)
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	lr.SetSeverityText("INFO")
	lr.Body().SetStr(c.EventQueueDepth)
	a := lr.Attributes()
	a.EnsureCapacity(5)
	a.PutStr(c.DecisionLayer, c.LayerWorkflow)
	a.PutStr(c.DecisionEvent, c.EventQueueDepth)
	a.PutStr(c.WorkflowQueue, queue)
	a.PutInt(c.WorkflowQueueDepth, depth)
	if workflow != "" {
		a.PutStr(c.DecisionWorkflow, workflow)
	}
}
