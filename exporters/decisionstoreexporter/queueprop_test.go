package decisionstoreexporter

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/decisiontrace/decisiontrace/exporters/decisionstoreexporter/internal/metadata"
	"github.com/decisiontrace/decisiontrace/internal/store"
)

// Issue 12 item 1, through the real thing: every request a receiver
// accepts, handed to this exporter's wrapper (flatLogs/flatTraces, as
// createLogs/createTraces build it) over exporterhelper's persistent
// sending queue, comes out of the queue: exporterhelper v0.165.0's
// persistent queue writes each request to the storage extension with its
// encoding and reads it back from there before sending
// (internal/queue/persistent_queue.go putInternal/getNextItem), and a
// request it cannot decode is dropped with a debug log ("Failed to
// dispatch item"). The push function here stands in for ClickHouse; the
// rows the data makes are compared in internal/store's property tests
// (TestPropertyAccepted*ReadBackFromQueueSameRows), which also cover more
// shapes.

var queuePropCases = flag.Int("queueprop.cases", 200, "generated requests per signal for the persistent queue property tests")

const queuePropSeed = 1207

func TestPropertyAcceptedLogsLeaveThePersistentQueue(t *testing.T) {
	q := newQueueHarness(t)
	exp := q.logs(t)
	start := time.Now()
	var accepted, refused, flattened int
	for i := 0; i < *queuePropCases; i++ {
		g := &shapeGen{r: rand.New(rand.NewPCG(queuePropSeed, uint64(i))), deep: 2, big: 2}
		sent := g.logs()
		for path, ld := range acceptedLogs(sent) {
			if ld == nil {
				refused++
				continue
			}
			accepted++
			want, n := store.FlattenDeepLogs(*ld)
			flattened += n
			require.NoError(t, exp.ConsumeLogs(context.Background(), *ld), "case %d (%s)", i, path)
			got, ok := q.next(t)
			if !ok {
				t.Fatalf("case %d (%s): %d records accepted, the queue never sent them: %s", i, path, ld.LogRecordCount(), q.dropped())
			}
			gl := got.(plog.Logs)
			require.Equal(t, ld.LogRecordCount(), gl.LogRecordCount(), "case %d (%s)", i, path)
			wb, _ := (&plog.ProtoMarshaler{}).MarshalLogs(want)
			gb, _ := (&plog.ProtoMarshaler{}).MarshalLogs(gl)
			require.True(t, bytes.Equal(wb, gb), "case %d (%s): the queue sent other data than the exporter put in it", i, path)
		}
	}
	require.Positive(t, flattened, "no case needed flattening: the generator does not reach the queue's limit")
	t.Logf("%d cases in %v: %d accepted requests through the persistent queue, %d refused by the receiver, %d values flattened",
		*queuePropCases, time.Since(start).Round(time.Millisecond), accepted, refused, flattened)
}

func TestPropertyAcceptedTracesLeaveThePersistentQueue(t *testing.T) {
	q := newQueueHarness(t)
	exp := q.traces(t)
	start := time.Now()
	var accepted, refused, flattened int
	for i := 0; i < *queuePropCases; i++ {
		g := &shapeGen{r: rand.New(rand.NewPCG(queuePropSeed+1, uint64(i))), deep: 2, big: 2}
		sent := g.traces()
		for path, td := range acceptedTraces(sent) {
			if td == nil {
				refused++
				continue
			}
			accepted++
			want, n := store.FlattenDeepTraces(*td)
			flattened += n
			require.NoError(t, exp.ConsumeTraces(context.Background(), *td), "case %d (%s)", i, path)
			got, ok := q.next(t)
			if !ok {
				t.Fatalf("case %d (%s): %d spans accepted, the queue never sent them: %s", i, path, td.SpanCount(), q.dropped())
			}
			gt := got.(ptrace.Traces)
			require.Equal(t, td.SpanCount(), gt.SpanCount(), "case %d (%s)", i, path)
			wb, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(want)
			gb, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(gt)
			require.True(t, bytes.Equal(wb, gb), "case %d (%s): the queue sent other data than the exporter put in it", i, path)
		}
	}
	require.Positive(t, flattened, "no case needed flattening: the generator does not reach the queue's limit")
	t.Logf("%d cases in %v: %d accepted requests through the persistent queue, %d refused by the receiver, %d values flattened",
		*queuePropCases, time.Since(start).Round(time.Millisecond), accepted, refused, flattened)
}

// The harness sees the failure the wrapper prevents: without it, a request
// OTLP/JSON accepts never leaves the persistent queue.
func TestPersistentQueueHarnessSeesADroppedRequest(t *testing.T) {
	q := newQueueHarness(t)
	q.wait = 2 * time.Second
	ld := plog.NewLogs()
	v := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Attributes().PutEmpty("deep")
	for range 200 {
		v = v.SetEmptyMap().PutEmpty("k")
	}
	v.SetStr("bottom")
	accepted := acceptedLogs(ld)["OTLP/JSON"]
	require.NotNil(t, accepted, "OTLP/JSON takes a value nested 200 levels deep")

	inner := q.logs(t).(*flatLogs).Logs // the exporterhelper exporter, without the wrapper
	require.NoError(t, inner.ConsumeLogs(context.Background(), *accepted), "acknowledged...")
	_, ok := q.next(t)
	require.False(t, ok, "...and never sent")
	require.Contains(t, q.dropped(), "Failed to dispatch item")
}

// acceptedLogs is what OTLP receivers make of sent, by path, nil where the
// receiver refuses it: OTLP/HTTP JSON and protobuf (HTTP and gRPC) decode
// with plogotlp.ExportRequest UnmarshalJSON and UnmarshalProto
// (otlpreceiver v0.165.0 encoder.go).
func acceptedLogs(sent plog.Logs) map[string]*plog.Logs {
	out := map[string]*plog.Logs{}
	js, err := plogotlp.NewExportRequestFromLogs(sent).MarshalJSON()
	if err != nil {
		panic(err)
	}
	req := plogotlp.NewExportRequest()
	if req.UnmarshalJSON(js) == nil {
		ld := req.Logs()
		out["OTLP/JSON"] = &ld
	} else {
		out["OTLP/JSON"] = nil
	}
	pb, err := plogotlp.NewExportRequestFromLogs(sent).MarshalProto()
	if err != nil {
		panic(err)
	}
	req = plogotlp.NewExportRequest()
	if req.UnmarshalProto(pb) == nil {
		ld := req.Logs()
		out["protobuf"] = &ld
	} else {
		out["protobuf"] = nil
	}
	return out
}

func acceptedTraces(sent ptrace.Traces) map[string]*ptrace.Traces {
	out := map[string]*ptrace.Traces{}
	js, err := ptraceotlp.NewExportRequestFromTraces(sent).MarshalJSON()
	if err != nil {
		panic(err)
	}
	req := ptraceotlp.NewExportRequest()
	if req.UnmarshalJSON(js) == nil {
		td := req.Traces()
		out["OTLP/JSON"] = &td
	} else {
		out["OTLP/JSON"] = nil
	}
	pb, err := ptraceotlp.NewExportRequestFromTraces(sent).MarshalProto()
	if err != nil {
		panic(err)
	}
	req = ptraceotlp.NewExportRequest()
	if req.UnmarshalProto(pb) == nil {
		td := req.Traces()
		out["protobuf"] = &td
	} else {
		out["protobuf"] = nil
	}
	return out
}

// queueHarness is this exporter's wrapper over an exporterhelper exporter
// with a persistent queue on an in-memory storage extension; what leaves
// the queue goes to sent.
type queueHarness struct {
	sent chan any
	logs func(*testing.T) exporter.Logs
	// traces likewise
	traces func(*testing.T) exporter.Traces
	seen   *observer.ObservedLogs
	wait   time.Duration
}

func newQueueHarness(t *testing.T) *queueHarness {
	core, seen := observer.New(zapcore.DebugLevel)
	set := exportertest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	storageID := component.MustNewID("memstorage")
	host := extHost{storageID: &memStorage{data: map[string][]byte{}}}

	cfg := createDefaultConfig().(*Config)
	queue := exporterhelper.NewDefaultQueueConfig()
	queue.StorageID = &storageID
	queue.NumConsumers = 1
	cfg.QueueConfig = configoptional.Some(queue) // no batching: one request in, one out
	// Retention is not what this harness is about (see store.Retention's
	// tests): no TTL, and a clock at the last instant a record can name,
	// so no generated time is refused, whatever today's date.
	cfg.TTL = 0
	lastInstant := func() time.Time { return time.Unix(0, math.MaxInt64) }

	h := &queueHarness{sent: make(chan any, 1), seen: seen, wait: 10 * time.Second}
	opts := []exporterhelper.Option{
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithQueue(cfg.QueueConfig),
	}
	start := func(t *testing.T, c component.Component) {
		require.NoError(t, c.Start(context.Background(), host))
		t.Cleanup(func() { require.NoError(t, c.Shutdown(context.Background())) })
	}
	h.logs = func(t *testing.T) exporter.Logs {
		e, err := newExporter(cfg, set)
		require.NoError(t, err)
		e.now = lastInstant
		inner, err := exporterhelper.NewLogs(context.Background(), set, cfg,
			func(_ context.Context, ld plog.Logs) error { h.sent <- ld; return nil }, opts...)
		require.NoError(t, err)
		exp := &flatLogs{Logs: inner, e: e} // as createLogs builds it
		start(t, exp)
		return exp
	}
	h.traces = func(t *testing.T) exporter.Traces {
		e, err := newExporter(cfg, set)
		require.NoError(t, err)
		e.now = lastInstant
		inner, err := exporterhelper.NewTraces(context.Background(), set, cfg,
			func(_ context.Context, td ptrace.Traces) error { h.sent <- td; return nil }, opts...)
		require.NoError(t, err)
		exp := &flatTraces{Traces: inner, e: e} // as createTraces builds it
		start(t, exp)
		return exp
	}
	return h
}

// next is the next request the queue sent, false if none came: the queue
// could not read it back.
func (h *queueHarness) next(t *testing.T) (any, bool) {
	t.Helper()
	deadline := time.After(h.wait)
	for {
		select {
		case v := <-h.sent:
			return v, true
		case <-deadline:
			return nil, false
		case <-time.After(5 * time.Millisecond):
			if h.seen.FilterMessage("Failed to dispatch item").Len() > 0 {
				return nil, false
			}
		}
	}
}

func (h *queueHarness) dropped() string {
	var msgs []string
	for _, e := range h.seen.All() {
		msgs = append(msgs, fmt.Sprintf("%s %v", e.Message, e.ContextMap()))
	}
	return strings.Join(msgs, "; ")
}

type extHost map[component.ID]component.Component

func (h extHost) GetExtensions() map[component.ID]component.Component { return h }

// memStorage is a storage extension and client that keeps everything in
// memory, copying values in and out as a real store does.
type memStorage struct {
	component.StartFunc
	component.ShutdownFunc
	mu   sync.Mutex
	data map[string][]byte
}

var _ storage.Extension = (*memStorage)(nil)

func (s *memStorage) GetClient(context.Context, component.Kind, component.ID, string) (storage.Client, error) {
	return s, nil
}

func (s *memStorage) Get(ctx context.Context, key string) ([]byte, error) {
	op := storage.GetOperation(key)
	err := s.Batch(ctx, op)
	return op.Value, err
}

func (s *memStorage) Set(ctx context.Context, key string, value []byte) error {
	return s.Batch(ctx, storage.SetOperation(key, value))
}

func (s *memStorage) Delete(ctx context.Context, key string) error {
	return s.Batch(ctx, storage.DeleteOperation(key))
}

func (s *memStorage) Batch(_ context.Context, ops ...*storage.Operation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range ops {
		switch op.Type {
		case storage.Get:
			if v, ok := s.data[op.Key]; ok {
				op.Value = bytes.Clone(v)
			} else {
				op.Value = nil
			}
		case storage.Set:
			s.data[op.Key] = bytes.Clone(op.Value)
		case storage.Delete:
			delete(s.data, op.Key)
		}
	}
	return nil
}

func (s *memStorage) Close(context.Context) error { return nil }

// shapeGen generates requests with values of the shapes that matter to the
// queue: nested maps and lists, mixed, at depths around the flattening
// limit, around protobuf's (33 levels of maps, 50 of lists, 100 in all) and
// far past it (10000), in every place a value can be; with odd scalars
// besides. internal/store's generator covers more of the catalogue.
type shapeGen struct {
	r         *rand.Rand
	deep, big int // deep and big values left in this request
}

var shapeDepths = []int{
	store.MaxNesting - 1, store.MaxNesting, store.MaxNesting + 1,
	32, 33, 34, 49, 50, 51, 99, 100, 101, 1000, 10000,
}

func (g *shapeGen) scalar(v pcommon.Value) {
	switch g.r.IntN(9) {
	case 0: // empty
	case 1:
		v.SetDouble([]float64{math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64, 0}[g.r.IntN(5)])
	case 2:
		v.SetInt([]int64{math.MinInt64, math.MaxInt64, 0, -1}[g.r.IntN(4)])
	case 3:
		n := 0
		if g.big > 0 {
			g.big--
			n = g.r.IntN(3) * 20000
		}
		v.SetEmptyBytes().FromRaw(bytes.Repeat([]byte{0, 0xff}, n))
	case 4:
		v.SetStr("bad\xff\xfe\x00\x01\x7f\xed\xa0\x80")
	case 5:
		n := 2
		if g.big > 0 {
			g.big--
			n = g.r.IntN(40000)
		}
		v.SetStr(strings.Repeat("long ", n))
	case 6:
		v.SetBool(true)
	default:
		v.SetStr("v" + strconv.Itoa(g.r.IntN(100)))
	}
}

func (g *shapeGen) value(v pcommon.Value) {
	if g.deep > 0 && g.r.IntN(3) == 0 {
		g.deep--
		depth := shapeDepths[g.r.IntN(len(shapeDepths))]
		if g.r.IntN(4) == 0 {
			depth = 1 + g.r.IntN(10000)
		}
		mode := g.r.IntN(3)
		for i := 0; i < depth; i++ {
			if mode == 0 || (mode == 2 && g.r.IntN(2) == 0) {
				m := v.SetEmptyMap()
				if g.r.IntN(5) == 0 {
					g.scalar(m.PutEmpty("sib"))
				}
				v = m.PutEmpty("k")
			} else {
				s := v.SetEmptySlice()
				if g.r.IntN(5) == 0 {
					g.scalar(s.AppendEmpty())
				}
				v = s.AppendEmpty()
			}
		}
		switch g.r.IntN(3) {
		case 0:
			v.SetEmptyMap()
		case 1:
			v.SetEmptySlice()
		default:
			g.scalar(v)
		}
		return
	}
	switch g.r.IntN(6) {
	case 0:
		m := v.SetEmptyMap()
		for range g.r.IntN(3) {
			g.scalar(m.PutEmpty("m" + strconv.Itoa(g.r.IntN(5))))
		}
	case 1:
		s := v.SetEmptySlice()
		for range g.r.IntN(3) {
			g.scalar(s.AppendEmpty())
		}
	default:
		g.scalar(v)
	}
}

func (g *shapeGen) attrs(m pcommon.Map) {
	for range g.r.IntN(4) {
		keys := []string{"", "k\x00\xff", "decision.id", "data.source", "a", "b", strings.Repeat("k", 3000)}
		g.value(m.PutEmpty(keys[g.r.IntN(len(keys))]))
	}
}

func (g *shapeGen) ts() pcommon.Timestamp {
	return []pcommon.Timestamp{0, math.MaxUint64, math.MaxInt64, 1_778_000_000_000_000_000}[g.r.IntN(4)]
}

func (g *shapeGen) logs() plog.Logs {
	ld := plog.NewLogs()
	for range 1 + g.r.IntN(2) {
		rl := ld.ResourceLogs().AppendEmpty()
		g.attrs(rl.Resource().Attributes())
		for range g.r.IntN(3) {
			sl := rl.ScopeLogs().AppendEmpty()
			g.attrs(sl.Scope().Attributes())
			n := g.r.IntN(4)
			if g.r.IntN(30) == 0 {
				n = 1000
			}
			for range n {
				lr := sl.LogRecords().AppendEmpty()
				lr.SetTimestamp(g.ts())
				lr.SetObservedTimestamp(g.ts())
				g.value(lr.Body())
				g.attrs(lr.Attributes())
			}
		}
	}
	return ld
}

func (g *shapeGen) traces() ptrace.Traces {
	td := ptrace.NewTraces()
	for range 1 + g.r.IntN(2) {
		rs := td.ResourceSpans().AppendEmpty()
		g.attrs(rs.Resource().Attributes())
		for range g.r.IntN(3) {
			ss := rs.ScopeSpans().AppendEmpty()
			g.attrs(ss.Scope().Attributes())
			n := g.r.IntN(4)
			if g.r.IntN(30) == 0 {
				n = 1000
			}
			for range n {
				sp := ss.Spans().AppendEmpty()
				sp.SetStartTimestamp(g.ts())
				sp.SetEndTimestamp(g.ts())
				sp.SetName("span\x00\xff")
				g.attrs(sp.Attributes())
				for range g.r.IntN(3) {
					g.attrs(sp.Events().AppendEmpty().Attributes())
				}
				for range g.r.IntN(2) {
					g.attrs(sp.Links().AppendEmpty().Attributes())
				}
			}
		}
	}
	return td
}
