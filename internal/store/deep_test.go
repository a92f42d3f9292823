package store

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// putNested puts under key a value of depth levels: maps, or lists when
// lists is set, the innermost holding a string.
func putNested(m pcommon.Map, key string, depth int, lists bool) {
	v := m.PutEmpty(key)
	for i := 0; i < depth; i++ {
		if lists {
			v = v.SetEmptySlice().AppendEmpty()
		} else {
			v = v.SetEmptyMap().PutEmpty("k")
		}
	}
	v.SetStr("bottom")
}

func TestFlattenDeepLogs(t *testing.T) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	putNested(rl.Resource().Attributes(), "res", MaxNesting+1, false)
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	putNested(lr.Attributes(), "at.limit", MaxNesting, false)
	putNested(lr.Attributes(), "maps", MaxNesting+1, false)
	putNested(lr.Attributes(), "lists", 60, true)
	lr.Attributes().PutStr("plain", "x")
	putNested(lr.Body().SetEmptyMap(), "body", MaxNesting, false) // the body map adds a level
	want, _ := lr.Attributes().Get("maps")
	wantJSON := want.AsString()
	before := plog.NewLogs()
	ld.CopyTo(before)

	out, n := FlattenDeepLogs(ld)
	assert.Equal(t, 4, n, "the resource's, two record attributes and the body")
	assert.Equal(t, before, ld, "the input is not modified: other consumers may share it")
	got := out.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	for key, typ := range map[string]pcommon.ValueType{"at.limit": pcommon.ValueTypeMap, "maps": pcommon.ValueTypeStr, "lists": pcommon.ValueTypeStr, "plain": pcommon.ValueTypeStr} {
		v, ok := got.Attributes().Get(key)
		require.True(t, ok, key)
		assert.Equal(t, typ, v.Type(), key)
	}
	maps, _ := got.Attributes().Get("maps")
	assert.Equal(t, wantJSON, maps.Str(), "a flattened value is the JSON text the store keeps of it")
	assert.Equal(t, pcommon.ValueTypeStr, got.Body().Type())
	res, _ := out.ResourceLogs().At(0).Resource().Attributes().Get("res")
	assert.Equal(t, pcommon.ValueTypeStr, res.Type())

	// Every value within the limit: the same request, not a copy.
	shallow := plog.NewLogs()
	putNested(shallow.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Attributes(), "m", MaxNesting, false)
	same, n := FlattenDeepLogs(shallow)
	assert.Zero(t, n)
	assert.Equal(t, shallow, same)
}

func TestFlattenDeepTraces(t *testing.T) {
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	putNested(sp.Attributes(), "span", 40, false)
	putNested(sp.Events().AppendEmpty().Attributes(), "event", 40, false)
	putNested(sp.Links().AppendEmpty().Attributes(), "link", 40, true)
	putNested(sp.Attributes(), "ok", 3, false)
	out, n := FlattenDeepTraces(td)
	assert.Equal(t, 3, n)
	got := out.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	v, _ := got.Attributes().Get("span")
	assert.Equal(t, pcommon.ValueTypeStr, v.Type())
	v, _ = got.Attributes().Get("ok")
	assert.Equal(t, pcommon.ValueTypeMap, v.Type())
	v, _ = got.Events().At(0).Attributes().Get("event")
	assert.Equal(t, pcommon.ValueTypeStr, v.Type())
	v, _ = got.Links().At(0).Attributes().Get("link")
	assert.Equal(t, pcommon.ValueTypeStr, v.Type())
}

// What MaxNesting protects: a value within it survives the protobuf round
// trip of a persistent queue; one nested 40 levels deep does not.
func TestMaxNestingIsWhatProtobufReadsBack(t *testing.T) {
	roundTrip := func(depth int) error {
		ld := plog.NewLogs()
		putNested(ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Attributes(), "v", depth, false)
		b, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
		require.NoError(t, err)
		_, err = (&plog.ProtoUnmarshaler{}).UnmarshalLogs(b)
		return err
	}
	assert.NoError(t, roundTrip(MaxNesting))
	assert.Error(t, roundTrip(40))
	flat, _ := FlattenDeepLogs(func() plog.Logs {
		ld := plog.NewLogs()
		putNested(ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Attributes(), "v", 40, false)
		return ld
	}())
	b, err := (&plog.ProtoMarshaler{}).MarshalLogs(flat)
	require.NoError(t, err)
	_, err = (&plog.ProtoUnmarshaler{}).UnmarshalLogs(b)
	assert.NoError(t, err, "flattened, it does")
}

// pdata renders a map or list holding NaN or ±Inf as "", which would store
// the whole value as nothing: those numbers are written as OTLP/JSON
// writes them, and the rest of the value is kept.
func TestNonFiniteNumbersInsideAValueAreKept(t *testing.T) {
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Attributes().PutStr("decision.workflow", "claims-triage")
	m := lr.Attributes().PutEmptyMap("scores")
	m.PutStr("a", "keep me")
	m.PutDouble("x", math.NaN())
	l := m.PutEmptySlice("l")
	l.AppendEmpty().SetDouble(math.Inf(1))
	l.AppendEmpty().SetDouble(math.Inf(-1))
	l.AppendEmpty().SetDouble(1.5)
	lr.Body().SetEmptyMap().PutDouble("nan", math.NaN())
	r := LogEvents(ld, true)
	require.Equal(t, 1, r.Len())
	assert.JSONEq(t, `{"a":"keep me","x":"NaN","l":["Infinity","-Infinity",1.5]}`, r.attributes[0]["scores"])
	assert.JSONEq(t, `{"nan":"NaN"}`, r.body[0])
	v, ok := lr.Attributes().Get("scores")
	require.True(t, ok)
	assert.True(t, math.IsNaN(v.Map().AsRaw()["x"].(float64)), "the record itself is left as it was")
}
