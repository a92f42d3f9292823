package store

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
)

// The generator of the queue property tests (queueprop_test.go), and the
// catalogue of shapes each run must have put through the queue.

// pdataGen generates requests with the odd shapes a receiver may be sent.
type pdataGen struct {
	r *rand.Rand
	// budgets per request, so that a case stays small enough to run
	// hundreds of them
	nodes, deep, big int
	// many is a request with one scope of many records; manyDone once
	// that scope is made.
	many, manyDone bool
	// dups maps placeholder keys to the JSON text of the key each stands
	// for in the JSON request (see withDups).
	dups map[string]string
}

func newPDataGen(seed uint64) *pdataGen {
	return &pdataGen{
		r:     rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15)),
		nodes: 1500, deep: 3, big: 2,
		dups: map[string]string{},
	}
}

func (g *pdataGen) chance(n int) bool { return g.r.IntN(n) == 0 }

// typedKeys are the attribute keys the store reads into typed columns, and
// a few it reads otherwise.
var propTypedKeys = []string{
	c.DecisionID, c.DecisionWorkflow, c.DecisionLayer, c.DecisionEvent, c.DecisionEventID,
	c.DataSource, c.DataAsOf, c.DataComplete, c.DataAvailable, c.DataEntitySystem, c.DataEntityID,
	c.DataAgeS, c.DataError, c.DataEntityCanonicalID, c.DataEntityResolved,
	c.ModelName, c.ModelVersion, c.ModelConfidence, c.ModelRecommendation, c.ModelLatencyMS, c.ModelUnsafe,
	c.GenAIRequestModel, c.GenAIResponseModel, c.GenAIUsageInputTokens, c.GenAIUsageOutputTokens,
	c.WorkflowQueue, c.WorkflowRoute, c.WorkflowQueueDepth, c.WorkflowExceptionType,
	c.HumanAction, c.HumanActor, c.HumanReason,
	c.BusinessOutcome, c.BusinessCycleTimeS, c.BusinessCost, c.BusinessValue,
	"service.name", "decision.other",
}

func (g *pdataGen) key() string {
	switch g.r.IntN(24) {
	case 0:
		return ""
	case 1:
		return "bad\xff\xfe" + string(rune('a'+g.r.IntN(26))) + "\xc3\x28\xed\xa0\x80" // invalid UTF-8 (and a surrogate)
	case 2:
		return "nul\x00ctl\x01\x1f\x7f\t\n"
	case 3:
		return strings.Repeat("k", 1+g.r.IntN(4000))
	case 4:
		return "ключ🔑\u2028\ufeff"
	case 5, 6, 7, 8, 9:
		return propTypedKeys[g.r.IntN(len(propTypedKeys))]
	default:
		return "k" + strconv.Itoa(g.r.IntN(40))
	}
}

func (g *pdataGen) str() string {
	switch g.r.IntN(16) {
	case 0:
		return ""
	case 1:
		return "bad\xff\xc3\x28\xe2\x82\xed\xa0\x80\xf4\x90\x80\x80end" // invalid UTF-8, a surrogate, past U+10FFFF
	case 2:
		return "\x00nul\x00\x01\x02\x1b\x7f\t\r\n"
	case 3:
		if g.big > 0 {
			g.big--
			return strings.Repeat("long·", (1<<(10+g.r.IntN(10)))/6)
		}
		return "almost long"
	case 4:
		return "ünï©ødé 🎲 \u2028\u2029 \ufeff \U0010FFFF"
	case 5:
		return `{"looks":["like",{"json":1}]} "quoted" \backslash`
	case 6:
		b := make([]byte, g.r.IntN(48))
		for i := range b {
			b[i] = byte(g.r.UintN(256))
		}
		return string(b)
	case 7:
		return time.Unix(g.r.Int64N(1<<33), 0).UTC().Format(time.RFC3339Nano)
	case 8:
		return []string{"1e309", "NaN", " 42 ", "-0", "0x10", "true", "Infinity", "9223372036854775808"}[g.r.IntN(8)]
	case 9:
		return c.Layers[g.r.IntN(len(c.Layers))]
	default:
		return "v" + strconv.Itoa(g.r.IntN(1000))
	}
}

func (g *pdataGen) double() float64 {
	switch g.r.IntN(10) {
	case 0:
		return math.NaN()
	case 1:
		return math.Inf(1)
	case 2:
		return math.Inf(-1)
	case 3:
		return math.Copysign(0, -1)
	case 4:
		return math.MaxFloat64
	case 5:
		return math.SmallestNonzeroFloat64
	case 6:
		return 1 << 53
	default:
		return g.r.NormFloat64() * math.Pow(10, float64(g.r.IntN(20)-10))
	}
}

func (g *pdataGen) int64() int64 {
	switch g.r.IntN(8) {
	case 0:
		return math.MinInt64
	case 1:
		return math.MaxInt64
	case 2:
		return 0
	case 3:
		return -1
	case 4:
		return 1<<53 + 1
	default:
		return g.r.Int64N(1<<40) - 1<<39
	}
}

func (g *pdataGen) bytes() []byte {
	switch g.r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	case 2:
		if g.big > 0 {
			g.big--
			b := make([]byte, 1<<(12+g.r.IntN(7)))
			for i := range b {
				b[i] = byte(i * 7)
			}
			return b
		}
	}
	return []byte{0, 0xff, 0x80, 'x'}
}

// scalar sets v to a value that is not a map or a list.
func (g *pdataGen) scalar(v pcommon.Value) {
	switch g.r.IntN(7) {
	case 0:
		// left empty: an AnyValue with no value set
	case 1:
		v.SetInt(g.int64())
	case 2:
		v.SetDouble(g.double())
	case 3:
		v.SetBool(g.chance(2))
	case 4:
		v.SetEmptyBytes().FromRaw(g.bytes())
	default:
		v.SetStr(g.str())
	}
}

// chainDepths are the depths of deep values: around the flattening limit,
// around where protobuf stops reading lists (50) and maps (33), around its
// recursion limit (100), and far past it.
var chainDepths = []int{
	MaxNesting - 1, MaxNesting, MaxNesting + 1, MaxNesting + 2,
	31, 32, 33, 34, 35, 48, 49, 50, 51, 52, 98, 99, 100, 101, 102, 500, 2000, 10000,
}

// chain sets v to a value nested depth levels deep: maps, lists or both,
// some levels with siblings, the innermost a scalar or an empty map or list.
func (g *pdataGen) chain(v pcommon.Value, depth int) {
	mode := g.r.IntN(3) // maps, lists, mixed
	for i := 0; i < depth; i++ {
		asMap := mode == 0 || (mode == 2 && g.chance(2))
		if asMap {
			m := v.SetEmptyMap()
			if g.chance(6) {
				m.PutStr("sib", "x")
			}
			v = m.PutEmpty("k" + strconv.Itoa(i%3))
		} else {
			s := v.SetEmptySlice()
			if g.chance(6) {
				s.AppendEmpty().SetInt(int64(i))
			}
			v = s.AppendEmpty()
		}
	}
	switch g.r.IntN(4) {
	case 0:
		v.SetEmptyMap()
	case 1:
		v.SetEmptySlice()
	default:
		g.scalar(v)
	}
}

// value sets v to any value: a scalar, a map or list of other values, or
// a deep chain.
func (g *pdataGen) value(v pcommon.Value, depth int) {
	g.nodes--
	if g.deep > 0 && g.chance(12) {
		g.deep--
		d := chainDepths[g.r.IntN(len(chainDepths))]
		if g.chance(4) {
			d = 1 + g.r.IntN(10000)
		}
		g.chain(v, d)
		return
	}
	if g.nodes <= 0 || depth > 6 {
		g.scalar(v)
		return
	}
	switch g.r.IntN(8) {
	case 0:
		g.attrs(v.SetEmptyMap(), depth+1)
	case 1:
		s := v.SetEmptySlice()
		for n := g.r.IntN(5); n > 0; n-- {
			g.value(s.AppendEmpty(), depth+1)
		}
	default:
		g.scalar(v)
	}
}

// typedValue sets v to a value that fits key's convention, or nearly.
func (g *pdataGen) typedValue(key string, v pcommon.Value) {
	switch key {
	case c.DecisionLayer:
		v.SetStr(c.Layers[g.r.IntN(len(c.Layers))])
	case c.ModelConfidence:
		v.SetDouble(g.r.Float64())
	case c.DataAsOf:
		if g.chance(2) {
			v.SetInt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix() + g.r.Int64N(1e6))
		} else {
			v.SetStr(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(g.r.Int64N(1e15))).Format(time.RFC3339Nano))
		}
	case c.DataComplete, c.DataAvailable, c.ModelUnsafe, c.DataEntityResolved:
		v.SetBool(g.chance(2))
	case c.DataAgeS, c.ModelLatencyMS, c.BusinessCycleTimeS, c.BusinessCost, c.BusinessValue:
		v.SetDouble(g.r.Float64() * 100)
	case c.GenAIUsageInputTokens, c.GenAIUsageOutputTokens, c.WorkflowQueueDepth:
		v.SetInt(g.r.Int64N(1e6))
	default:
		v.SetStr("id-" + strconv.Itoa(g.r.IntN(100)))
	}
}

// attrs fills m: often nothing, else a few entries of any key and value,
// sometimes a key twice (in the JSON request).
func (g *pdataGen) attrs(m pcommon.Map, depth int) {
	n := g.r.IntN(7)
	if g.chance(4) {
		n = 0
	}
	for i := 0; i < n && g.nodes > 0; i++ {
		k := g.key()
		v := m.PutEmpty(k)
		if depth == 0 && g.chance(2) {
			g.typedValue(k, v)
		} else {
			g.value(v, depth)
		}
	}
	if m.Len() > 0 && g.chance(5) {
		// A second entry with the key of one already there.
		var target string
		skip := g.r.IntN(m.Len())
		for k := range m.All() {
			if skip == 0 {
				target = k
				break
			}
			skip--
		}
		ph := fmt.Sprintf("zzdupzz%dzz", len(g.dups))
		js, _ := json.Marshal(target)
		g.dups[ph] = string(js)
		g.value(m.PutEmpty(ph), depth)
	}
}

func (g *pdataGen) timestamp() pcommon.Timestamp {
	switch g.r.IntN(8) {
	case 0:
		return 0
	case 1:
		return pcommon.Timestamp(math.MaxUint64)
	case 2:
		return pcommon.Timestamp(math.MaxInt64)
	case 3:
		return pcommon.Timestamp(math.MaxInt64 + 1)
	case 4:
		return 1
	default:
		return pcommon.Timestamp(fixedNow.Add(-time.Duration(g.r.Int64N(int64(48 * time.Hour)))).UnixNano())
	}
}

func (g *pdataGen) traceID() pcommon.TraceID {
	var id pcommon.TraceID
	if !g.chance(4) {
		for i := range id {
			id[i] = byte(g.r.UintN(256))
		}
	}
	return id
}

func (g *pdataGen) spanID() pcommon.SpanID {
	var id pcommon.SpanID
	if !g.chance(4) {
		for i := range id {
			id[i] = byte(g.r.UintN(256))
		}
	}
	return id
}

// count is how many of something: often 0 or 1, sometimes a few.
func (g *pdataGen) count(max int) int {
	switch g.r.IntN(6) {
	case 0:
		return 0
	case 1, 2:
		return 1
	default:
		return g.r.IntN(max + 1)
	}
}

// shared makes the attributes records share (their resource's and
// scope's): in a request of many records only small ones, as the row
// builder renders a resource's attributes once per record (so a deep one
// times 2000 records would take seconds to build rows of).
func (g *pdataGen) shared(f func()) {
	if !g.many {
		f()
		return
	}
	nodes, deep, big := g.nodes, g.deep, g.big
	g.nodes, g.deep, g.big = 10, 0, 0
	f()
	g.nodes, g.deep, g.big = nodes, deep, big
}

func (g *pdataGen) resource(res pcommon.Resource) {
	g.shared(func() {
		if g.chance(3) {
			res.Attributes().PutStr("service.name", g.str())
		}
		g.attrs(res.Attributes(), 0)
	})
	res.SetDroppedAttributesCount(uint32(g.r.IntN(2)) * math.MaxUint32)
}

func (g *pdataGen) scope(sc pcommon.InstrumentationScope) {
	if g.chance(2) {
		sc.SetName(g.str())
		sc.SetVersion(g.str())
	}
	g.shared(func() { g.attrs(sc.Attributes(), 0) })
}

// records is how many records or spans a scope holds: in one scope of a
// request of many, many.
func (g *pdataGen) records() int {
	if g.many && !g.manyDone {
		g.manyDone = true
		return 500 + g.r.IntN(1500)
	}
	return g.count(4)
}

func (g *pdataGen) logs() plog.Logs {
	ld := plog.NewLogs()
	g.many = g.chance(25)
	for range g.count(3) {
		rl := ld.ResourceLogs().AppendEmpty()
		g.resource(rl.Resource())
		if g.chance(4) {
			rl.SetSchemaUrl(g.str())
		}
		for range g.count(3) {
			sl := rl.ScopeLogs().AppendEmpty()
			g.scope(sl.Scope())
			n := g.records()
			for k := range n {
				lr := sl.LogRecords().AppendEmpty()
				lr.SetTimestamp(g.timestamp())
				lr.SetObservedTimestamp(g.timestamp())
				lr.SetTraceID(g.traceID())
				lr.SetSpanID(g.spanID())
				if n > 100 && k > 0 {
					// many records: small ones
					lr.Attributes().PutStr(c.DecisionID, "d"+strconv.Itoa(k))
					lr.Body().SetStr(g.str())
					continue
				}
				lr.SetSeverityNumber(plog.SeverityNumber(g.r.IntN(26)))
				if g.chance(2) {
					lr.SetSeverityText(g.str())
				}
				if g.chance(3) {
					lr.SetEventName(g.str())
				}
				lr.SetFlags(plog.LogRecordFlags(g.r.Uint32()))
				lr.SetDroppedAttributesCount(g.r.Uint32())
				if !g.chance(4) {
					g.value(lr.Body(), 0)
				}
				g.attrs(lr.Attributes(), 0)
			}
		}
	}
	return ld
}

func (g *pdataGen) traces() ptrace.Traces {
	td := ptrace.NewTraces()
	g.many = g.chance(25)
	for range g.count(3) {
		rs := td.ResourceSpans().AppendEmpty()
		g.resource(rs.Resource())
		for range g.count(3) {
			ss := rs.ScopeSpans().AppendEmpty()
			g.scope(ss.Scope())
			n := g.records()
			for k := range n {
				sp := ss.Spans().AppendEmpty()
				sp.SetTraceID(g.traceID())
				sp.SetSpanID(g.spanID())
				sp.SetStartTimestamp(g.timestamp())
				sp.SetEndTimestamp(g.timestamp())
				sp.SetName(g.str())
				if n > 100 && k > 0 {
					sp.Attributes().PutStr(c.DecisionID, "d"+strconv.Itoa(k))
					continue
				}
				sp.SetParentSpanID(g.spanID())
				sp.SetKind(ptrace.SpanKind(g.r.IntN(6)))
				sp.Status().SetCode(ptrace.StatusCode(g.r.IntN(3)))
				if g.chance(2) {
					sp.Status().SetMessage(g.str())
				}
				if g.chance(3) {
					sp.TraceState().FromRaw(g.str())
				}
				sp.SetFlags(g.r.Uint32())
				g.attrs(sp.Attributes(), 0)
				for range g.count(3) {
					ev := sp.Events().AppendEmpty()
					ev.SetName(g.str())
					ev.SetTimestamp(g.timestamp())
					g.attrs(ev.Attributes(), 0)
				}
				for range g.count(2) {
					l := sp.Links().AppendEmpty()
					l.SetTraceID(g.traceID())
					l.SetSpanID(g.spanID())
					g.attrs(l.Attributes(), 0)
				}
			}
		}
	}
	return td
}

// catalogue is the odd shapes every run must put through the queue.
var catalogue = []string{
	"value nested past MaxNesting", "value nested past protobuf's 100 (OTLP/JSON only)", "value nested 10000 levels or deeper",
	"mixed maps and lists", "empty map", "empty list", "empty value",
	"invalid UTF-8 in a key", "invalid UTF-8 in a value", "NUL or control character", "empty key", "duplicate key",
	"string of 64 KiB or more", "NaN", "+Inf or -Inf", "min or max int64", "empty bytes", "bytes of 4 KiB or more",
	"record without attributes", "resource without attributes", "scope without attributes or name",
	"timestamp 0", "timestamp 2^64-1", "500 records or more", "resource without records",
	"typed attribute", "typed attribute nested past MaxNesting",
}

// coverage counts shapes; one request counts once for each shape it holds.
type coverage map[string]int

func (cv coverage) add(shapes map[string]bool) {
	for k := range shapes {
		cv[k]++
	}
}

type shapeWalk map[string]bool

func (sw shapeWalk) str(s string) {
	if !utf8.ValidString(s) {
		sw["invalid UTF-8 in a value"] = true
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		sw["NUL or control character"] = true
	}
	if len(s) >= 64<<10 {
		sw["string of 64 KiB or more"] = true
	}
}

func (sw shapeWalk) attrs(m pcommon.Map, top bool) {
	seen := map[string]bool{}
	for k, v := range m.All() {
		if seen[k] {
			sw["duplicate key"] = true
		}
		seen[k] = true
		if k == "" {
			sw["empty key"] = true
		}
		if !utf8.ValidString(k) {
			sw["invalid UTF-8 in a key"] = true
		}
		if top && slices.Contains(propTypedKeys, k) {
			sw["typed attribute"] = true
			if nesting(v, MaxNesting) > MaxNesting {
				sw["typed attribute nested past MaxNesting"] = true
			}
		}
		sw.value(v)
	}
}

func (sw shapeWalk) value(v pcommon.Value) {
	switch v.Type() {
	case pcommon.ValueTypeMap, pcommon.ValueTypeSlice:
		d := nesting(v, math.MaxInt32)
		if d > MaxNesting {
			sw["value nested past MaxNesting"] = true
		}
		if d > 100 {
			sw["value nested past protobuf's 100 (OTLP/JSON only)"] = true
		}
		if d >= 10000 {
			sw["value nested 10000 levels or deeper"] = true
		}
		sw.container(v)
	default:
		sw.scalar(v)
	}
}

// container walks a map or list without recursing once per level (values
// are up to 10000 levels deep).
func (sw shapeWalk) container(v pcommon.Value) {
	maps, lists := false, false
	stack := []pcommon.Value{v}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch v.Type() {
		case pcommon.ValueTypeMap:
			maps = true
			if v.Map().Len() == 0 {
				sw["empty map"] = true
			}
			seen := map[string]bool{}
			for k, child := range v.Map().All() {
				if seen[k] {
					sw["duplicate key"] = true
				}
				seen[k] = true
				if !utf8.ValidString(k) {
					sw["invalid UTF-8 in a key"] = true
				}
				stack = append(stack, child)
			}
		case pcommon.ValueTypeSlice:
			lists = true
			if v.Slice().Len() == 0 {
				sw["empty list"] = true
			}
			for _, child := range v.Slice().All() {
				stack = append(stack, child)
			}
		default:
			sw.scalar(v)
		}
	}
	if maps && lists {
		sw["mixed maps and lists"] = true
	}
}

func (sw shapeWalk) scalar(v pcommon.Value) {
	switch v.Type() {
	case pcommon.ValueTypeEmpty:
		sw["empty value"] = true
	case pcommon.ValueTypeStr:
		sw.str(v.Str())
	case pcommon.ValueTypeDouble:
		switch f := v.Double(); {
		case math.IsNaN(f):
			sw["NaN"] = true
		case math.IsInf(f, 0):
			sw["+Inf or -Inf"] = true
		}
	case pcommon.ValueTypeInt:
		if n := v.Int(); n == math.MinInt64 || n == math.MaxInt64 {
			sw["min or max int64"] = true
		}
	case pcommon.ValueTypeBytes:
		switch n := v.Bytes().Len(); {
		case n == 0:
			sw["empty bytes"] = true
		case n >= 4<<10:
			sw["bytes of 4 KiB or more"] = true
		}
	}
}

func (sw shapeWalk) timestamp(ts pcommon.Timestamp) {
	switch uint64(ts) {
	case 0:
		sw["timestamp 0"] = true
	case math.MaxUint64:
		sw["timestamp 2^64-1"] = true
	}
}

func (sw shapeWalk) resourceScope(res pcommon.Resource, sc pcommon.InstrumentationScope, records int) {
	if res.Attributes().Len() == 0 {
		sw["resource without attributes"] = true
	}
	if sc.Attributes().Len() == 0 && sc.Name() == "" {
		sw["scope without attributes or name"] = true
	}
	if records >= 500 {
		sw["500 records or more"] = true
	}
}

func logShapes(ld plog.Logs) shapeWalk {
	sw := shapeWalk{}
	for _, rl := range ld.ResourceLogs().All() {
		sw.attrs(rl.Resource().Attributes(), false)
		n := 0
		for _, sl := range rl.ScopeLogs().All() {
			n += sl.LogRecords().Len()
			sw.attrs(sl.Scope().Attributes(), false)
			sw.str(sl.Scope().Name())
			sw.resourceScope(rl.Resource(), sl.Scope(), sl.LogRecords().Len())
			for _, lr := range sl.LogRecords().All() {
				if lr.Attributes().Len() == 0 {
					sw["record without attributes"] = true
				}
				sw.attrs(lr.Attributes(), true)
				sw.value(lr.Body())
				sw.timestamp(lr.Timestamp())
				sw.timestamp(lr.ObservedTimestamp())
			}
		}
		if n == 0 {
			sw["resource without records"] = true
		}
	}
	return sw
}

func spanShapes(td ptrace.Traces) shapeWalk {
	sw := shapeWalk{}
	for _, rs := range td.ResourceSpans().All() {
		sw.attrs(rs.Resource().Attributes(), false)
		n := 0
		for _, ss := range rs.ScopeSpans().All() {
			n += ss.Spans().Len()
			sw.attrs(ss.Scope().Attributes(), false)
			sw.str(ss.Scope().Name())
			sw.resourceScope(rs.Resource(), ss.Scope(), ss.Spans().Len())
			for _, sp := range ss.Spans().All() {
				if sp.Attributes().Len() == 0 {
					sw["record without attributes"] = true
				}
				sw.attrs(sp.Attributes(), true)
				sw.str(sp.Name())
				sw.timestamp(sp.StartTimestamp())
				sw.timestamp(sp.EndTimestamp())
				for _, ev := range sp.Events().All() {
					sw.attrs(ev.Attributes(), false)
				}
				for _, l := range sp.Links().All() {
					sw.attrs(l.Attributes(), false)
				}
			}
		}
		if n == 0 {
			sw["resource without records"] = true
		}
	}
	return sw
}
