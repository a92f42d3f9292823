package store

import (
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// MaxNesting is how deeply maps and lists may nest in one attribute value
// (or a log body) for it to travel as it came. OTLP/JSON takes any depth,
// but protobuf, and with it a persistent sending queue, reads back about
// 33 levels of maps (and 50 of lists): a deeper value would be
// acknowledged and then fail to leave the queue. A deeper value travels
// as its JSON text, which is what the store keeps of a nested value
// anyway (attributes are stored as text), so the stored row is the same;
// except under a key read into a typed column (decision.id, model.name,
// ...), where the text is read as the string it now is, not refused as a
// map: malformed either way, and stored the same on every path and
// redelivery (the property tests in queueprop_test.go).
const MaxNesting = 16

// nesting is how many levels of maps and lists v holds, counted up to
// just past limit.
func nesting(v pcommon.Value, limit int) int {
	deepest := 0
	switch v.Type() {
	case pcommon.ValueTypeMap:
		for _, child := range v.Map().All() {
			if d := nesting(child, limit-1); d > deepest {
				deepest = d
			}
			if deepest > limit {
				break
			}
		}
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		for i := 0; i < s.Len() && deepest <= limit; i++ {
			if d := nesting(s.At(i), limit-1); d > deepest {
				deepest = d
			}
		}
	default:
		return 0
	}
	return deepest + 1
}

// flattenDeep turns each value of m nested deeper than MaxNesting into its
// JSON text, counting them; with dryRun it only counts.
func flattenDeep(m pcommon.Map, dryRun bool) int {
	n := 0
	for _, v := range m.All() {
		n += flattenValue(v, dryRun)
	}
	return n
}

func flattenValue(v pcommon.Value, dryRun bool) int {
	if nesting(v, MaxNesting) <= MaxNesting {
		return 0
	}
	if !dryRun {
		v.SetStr(text(v))
	}
	return 1
}

func flattenLogs(ld plog.Logs, dryRun bool) int {
	n := 0
	for _, rl := range ld.ResourceLogs().All() {
		n += flattenDeep(rl.Resource().Attributes(), dryRun)
		for _, sl := range rl.ScopeLogs().All() {
			n += flattenDeep(sl.Scope().Attributes(), dryRun)
			for _, lr := range sl.LogRecords().All() {
				n += flattenDeep(lr.Attributes(), dryRun) + flattenValue(lr.Body(), dryRun)
			}
		}
	}
	return n
}

func flattenTraces(td ptrace.Traces, dryRun bool) int {
	n := 0
	for _, rs := range td.ResourceSpans().All() {
		n += flattenDeep(rs.Resource().Attributes(), dryRun)
		for _, ss := range rs.ScopeSpans().All() {
			n += flattenDeep(ss.Scope().Attributes(), dryRun)
			for _, sp := range ss.Spans().All() {
				n += flattenDeep(sp.Attributes(), dryRun)
				for _, ev := range sp.Events().All() {
					n += flattenDeep(ev.Attributes(), dryRun)
				}
				for _, l := range sp.Links().All() {
					n += flattenDeep(l.Attributes(), dryRun)
				}
			}
		}
	}
	return n
}

// FlattenDeepLogs returns ld unchanged when no value in it nests deeper
// than MaxNesting, else a copy in which each such value is its JSON text
// (ld may be shared with other consumers: it is never modified), and how
// many values were flattened.
func FlattenDeepLogs(ld plog.Logs) (plog.Logs, int) {
	if flattenLogs(ld, true) == 0 {
		return ld, 0
	}
	out := plog.NewLogs()
	ld.CopyTo(out)
	return out, flattenLogs(out, false)
}

// FlattenDeepTraces is FlattenDeepLogs for spans: their attributes, those
// of their events and links, of their scopes and resources.
func FlattenDeepTraces(td ptrace.Traces) (ptrace.Traces, int) {
	if flattenTraces(td, true) == 0 {
		return td, 0
	}
	out := ptrace.NewTraces()
	td.CopyTo(out)
	return out, flattenTraces(out, false)
}

// text is a value as the store keeps it: a map or list as its JSON text.
// pdata renders one that holds NaN or ±Inf anywhere as "" (encoding/json
// refuses them), which would lose the whole value: those numbers are
// written as OTLP/JSON writes them ("NaN", "Infinity", "-Infinity").
func text(v pcommon.Value) string {
	s := v.AsString()
	if s != "" || !(v.Type() == pcommon.ValueTypeMap && v.Map().Len() > 0 || v.Type() == pcommon.ValueTypeSlice && v.Slice().Len() > 0) {
		return s
	}
	c := pcommon.NewValueEmpty()
	v.CopyTo(c)
	finite(c)
	return c.AsString()
}

func finite(v pcommon.Value) {
	switch v.Type() {
	case pcommon.ValueTypeDouble:
		switch f := v.Double(); {
		case math.IsNaN(f):
			v.SetStr("NaN")
		case math.IsInf(f, 1):
			v.SetStr("Infinity")
		case math.IsInf(f, -1):
			v.SetStr("-Infinity")
		}
	case pcommon.ValueTypeMap:
		v.Map().Range(func(_ string, e pcommon.Value) bool {
			finite(e)
			return true
		})
	case pcommon.ValueTypeSlice:
		for i := 0; i < v.Slice().Len(); i++ {
			finite(v.Slice().At(i))
		}
	}
}
