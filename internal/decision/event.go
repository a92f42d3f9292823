// Package decision turns the decision.* attributes of an OTLP record into the
// typed fields of one decision event. It is shared by every component that
// reads the conventions, so a value is parsed the same way wherever it enters.
package decision

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
)

// Event holds the hot attributes of a decision signal in typed form. Pointer
// fields are nil when the attribute was absent or could not be parsed; in the
// second case the raw value stays in the record's attribute map and a
// ParseError says what was wrong.
type Event struct {
	ID       string
	Workflow string
	Layer    string
	Event    string
	EventID  string

	Source       string
	AsOf         *time.Time
	Complete     *bool
	Available    *bool
	EntitySystem string
	EntityID     string
	// AgeS and Error come with source.freshness signals; CanonicalID and
	// Resolved are set by the decision processor's identity reconciliation.
	AgeS        *float64
	Error       string
	CanonicalID string
	Resolved    *bool

	ModelName      string
	ModelProvider  string
	ModelVersion   string
	Confidence     *float64
	Recommendation string
	LatencyMS      *float64
	Unsafe         *bool
	InputTokens    *int64
	OutputTokens   *int64
	// EvalName, EvalScore and EvalLabel come with a gen_ai.evaluation.result.
	EvalName  string
	EvalScore *float64
	EvalLabel string

	Queue         string
	Route         string
	QueueDepth    *int64
	ExceptionType string

	HumanAction string
	HumanActor  string
	HumanReason string

	Outcome    string
	CycleTimeS *float64
	Cost       *float64
	Value      *float64

	// Classified is true when the record carried at least one decision.*
	// attribute, or a GenAI model attribute that makes it a model signal.
	Classified bool
	// Retrieval is true for a GenAI retrieval (gen_ai.operation.name
	// retrieval, or an OpenInference RETRIEVER span): what the model is
	// given to read, so a context read of the data layer.
	Retrieval bool
	// ParseErrors lists the attributes whose values did not fit their
	// convention; their raw values are to be kept by the caller.
	ParseErrors []ParseError

	// aliasHits are the aliases a record carried, read after its own
	// attributes in the order Fields lists them, so that which one fills a
	// field does not depend on the order the producer sent them in.
	aliasHits []aliasHit
}

type aliasHit struct {
	ref fieldRef
	key string
	v   pcommon.Value
}

// ParseError names an attribute whose value does not fit its convention.
type ParseError struct {
	Key    string
	Reason string
}

func (e ParseError) Error() string { return e.Key + ": " + e.Reason }

// MaxFutureSkew bounds how far a time may lie ahead of the one it is judged
// against (an as_of of its record's time, a record's time of the receiving
// clock) before it is treated as a clock or unit error rather than data.
const MaxFutureSkew = 24 * time.Hour

// Typed reports whether key is one of the attributes that Extract moves into
// a typed field, i.e. that a store need not repeat in its generic map when
// the value parsed. Aliases are not: they stay under their own names.
func Typed(key string) bool {
	r, ok := byName[key]
	return ok && !r.alias
}

// Extract fills ev from attrs, as Fields says. recordTime is the record's
// own timestamp, used to judge whether an as_of lies implausibly far in the
// future. Extract never fails: every problem becomes a ParseError and the
// pipeline carries on.
func Extract(attrs pcommon.Map, recordTime time.Time, ev *Event) {
	*ev = Event{ParseErrors: ev.ParseErrors[:0], aliasHits: ev.aliasHits[:0]}
	attrs.Range(func(k string, v pcommon.Value) bool {
		if strings.HasPrefix(k, "decision.") {
			ev.Classified = true
		}
		if r, ok := byName[k]; ok {
			if r.alias && r.f.AliasesClassify || !r.alias && r.f.Classifies {
				ev.Classified = true
			}
			if r.alias {
				ev.aliasHits = append(ev.aliasHits, aliasHit{r, k, v})
			} else {
				r.f.extract(ev, k, v, recordTime, false)
			}
		} else if retrieval(k, v) {
			ev.Retrieval, ev.Classified = true, true
		}
		return true
	})
	// By rank; then the first of each field wins. One field's aliases
	// never share a rank, so the order between equal ranks is moot.
	slices.SortFunc(ev.aliasHits, func(a, b aliasHit) int { return a.ref.rank - b.ref.rank })
	for _, h := range ev.aliasHits {
		h.ref.f.extract(ev, h.key, h.v, recordTime, true)
	}
	if ev.Layer == "" && ev.Classified {
		ev.Layer = inferLayer(ev)
	}
}

// Failed reports whether key is among ev's parse errors.
func (ev *Event) Failed(key string) bool {
	for _, pe := range ev.ParseErrors {
		if pe.Key == key {
			return true
		}
	}
	return false
}

// inferLayer places a record that names no layer by the attributes it
// carries, so GenAI spans and partial instrumentation still land in a layer.
func inferLayer(ev *Event) string {
	switch {
	case ev.Retrieval:
		// Before the model: an embedding-based retrieval names its model.
		return conventions.LayerData
	case ev.EvalName != "" || ev.EvalScore != nil || ev.EvalLabel != "":
		return conventions.LayerModel
	case ev.ModelName != "" || ev.Confidence != nil || ev.Recommendation != "":
		return conventions.LayerModel
	case ev.HumanAction != "":
		return conventions.LayerHuman
	case ev.Outcome != "" || ev.CycleTimeS != nil:
		return conventions.LayerBusiness
	case ev.Route != "" || ev.Queue != "" || ev.QueueDepth != nil || ev.ExceptionType != "":
		return conventions.LayerWorkflow
	case ev.Source != "" || ev.AsOf != nil:
		return conventions.LayerData
	}
	return ""
}

// ImpliedEvent is the event of a record that names none, "" when it
// implies none: a GenAI span or a model-layer span is the model's output,
// which is what GenAI instrumentation records; a GenAI retrieval is a
// context read.
func (ev *Event) ImpliedEvent(span bool) string {
	switch {
	case ev.Event != "":
		return ""
	case ev.Retrieval && ev.Layer == conventions.LayerData:
		return conventions.EventContextRead
	case ev.EvalName != "" || ev.EvalScore != nil || ev.EvalLabel != "":
		// Before the model output: the evaluation event sits on the span it
		// scores, whose model it may name.
		return conventions.EventModelEvaluation
	case span && ev.Layer == conventions.LayerModel:
		return conventions.EventModelOutput
	}
	return ""
}

// SharedEvent reports whether an event describes something many decisions
// share (a source's freshness, a queue's depth) rather than one decision,
// and so carries no decision ID.
func SharedEvent(event string) bool {
	return event == conventions.EventSourceFreshness || event == conventions.EventQueueDepth
}

// retrieval reports whether attribute k = v marks a GenAI retrieval.
func retrieval(k string, v pcommon.Value) bool {
	switch k {
	case conventions.GenAIOperationName:
		return v.Type() == pcommon.ValueTypeStr && v.Str() == conventions.GenAIOperationRetrieval
	case conventions.OpenInferenceSpanKind:
		return v.Type() == pcommon.ValueTypeStr && v.Str() == conventions.OpenInferenceSpanKindRetriever
	}
	return false
}

func (ev *Event) fail(key, format string, args ...any) {
	ev.ParseErrors = append(ev.ParseErrors, ParseError{Key: key, Reason: fmt.Sprintf(format, args...)})
}

// quote renders a raw value for an error message without letting a huge or
// binary value flood logs.
func quote(v pcommon.Value) string {
	s := v.AsString()
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	if !utf8.ValidString(s) {
		return strconv.QuoteToASCII(s)
	}
	return strconv.Quote(s)
}

func str(ev *Event, k string, v pcommon.Value, _ time.Time) string {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str()
	case pcommon.ValueTypeInt, pcommon.ValueTypeDouble, pcommon.ValueTypeBool:
		return v.AsString()
	}
	ev.fail(k, "expected a string, got %s", v.Type())
	return ""
}

// ident reads an identifier: a workflow, decision or entity ID, a source,
// queue or model version. Whatever path it came by, one with control
// characters or invalid UTF-8 is stored escaped (EscapeIdentifier), so the
// same bytes are the same stored name on OTLP and the decision-events
// endpoint alike, and none can drive a terminal.
func ident(ev *Event, k string, v pcommon.Value, t time.Time) string {
	s, _ := EscapeIdentifier(str(ev, k, v, t))
	return s
}

func layer(ev *Event, k string, v pcommon.Value, t time.Time) string {
	s := str(ev, k, v, t)
	if s == "" || conventions.LayerBit(s) != 0 {
		return s
	}
	ev.fail(k, "%s is not a layer (want one of %s)", quote(v), strings.Join(conventions.Layers, ", "))
	return ""
}

func number(ev *Event, k string, v pcommon.Value, _ time.Time) *float64 {
	var f float64
	switch v.Type() {
	case pcommon.ValueTypeDouble:
		f = v.Double()
	case pcommon.ValueTypeInt:
		f = float64(v.Int())
	case pcommon.ValueTypeStr:
		p, err := strconv.ParseFloat(strings.TrimSpace(v.Str()), 64)
		if err != nil {
			ev.fail(k, "%s is not a number", quote(v))
			return nil
		}
		f = p
	default:
		ev.fail(k, "expected a number, got %s", v.Type())
		return nil
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		ev.fail(k, "%v is not a finite number", f)
		return nil
	}
	return &f
}

func nonNegative(ev *Event, k string, v pcommon.Value, t time.Time) *float64 {
	f := number(ev, k, v, t)
	if f != nil && *f < 0 {
		ev.fail(k, "%v is negative", *f)
		return nil
	}
	return f
}

func probability(ev *Event, k string, v pcommon.Value, t time.Time) *float64 {
	f := number(ev, k, v, t)
	if f != nil && (*f < 0 || *f > 1) {
		ev.fail(k, "%v is outside [0,1]", *f)
		return nil
	}
	return f
}

func integer(ev *Event, k string, v pcommon.Value, _ time.Time) *int64 {
	var n int64
	switch v.Type() {
	case pcommon.ValueTypeInt:
		n = v.Int()
	case pcommon.ValueTypeDouble:
		d := v.Double()
		if d != math.Trunc(d) || math.IsInf(d, 0) || math.Abs(d) > 1<<53 {
			ev.fail(k, "%v is not a whole number", d)
			return nil
		}
		n = int64(d)
	case pcommon.ValueTypeStr:
		p, err := strconv.ParseInt(strings.TrimSpace(v.Str()), 10, 64)
		if err != nil {
			ev.fail(k, "%s is not a whole number", quote(v))
			return nil
		}
		n = p
	default:
		ev.fail(k, "expected a whole number, got %s", v.Type())
		return nil
	}
	return &n
}

func boolean(ev *Event, k string, v pcommon.Value, _ time.Time) *bool {
	switch v.Type() {
	case pcommon.ValueTypeBool:
		b := v.Bool()
		return &b
	case pcommon.ValueTypeStr:
		b, err := strconv.ParseBool(strings.TrimSpace(v.Str()))
		if err == nil {
			return &b
		}
	case pcommon.ValueTypeInt:
		switch v.Int() {
		case 0, 1:
			b := v.Int() == 1
			return &b
		}
	}
	ev.fail(k, "%s is not a boolean", quote(v))
	return nil
}

// timestamp accepts RFC 3339 strings and Unix epoch numbers; the epoch unit
// (s, ms, µs, ns) is read from the magnitude, as most producers send one of
// those without saying which.
func timestamp(ev *Event, k string, v pcommon.Value, recordTime time.Time) *time.Time {
	var t time.Time
	switch v.Type() {
	case pcommon.ValueTypeStr:
		p, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v.Str()))
		if err != nil {
			ev.fail(k, "%s is not an RFC 3339 timestamp", quote(v))
			return nil
		}
		t = p
	case pcommon.ValueTypeInt:
		t = Epoch(v.Int())
	case pcommon.ValueTypeDouble:
		d := v.Double()
		if math.IsNaN(d) || math.IsInf(d, 0) || d < 0 || d > math.MaxInt64 {
			ev.fail(k, "%v is not a Unix time", d)
			return nil
		}
		t = Epoch(int64(d))
	default:
		ev.fail(k, "expected an RFC 3339 string or Unix time, got %s", v.Type())
		return nil
	}
	if t.Year() < 1970 || t.Year() > 2262 {
		ev.fail(k, "%s is out of range", quote(v))
		return nil
	}
	if !recordTime.IsZero() && t.After(recordTime.Add(MaxFutureSkew)) {
		ev.fail(k, "%s is more than %s after the record's time", quote(v), MaxFutureSkew)
		return nil
	}
	t = t.UTC()
	return &t
}

// Epoch reads a Unix time whose unit producers leave implicit from its
// magnitude: seconds, milliseconds, microseconds or nanoseconds, each
// read as such up to 10^11 seconds (the year 5138). The decision-events
// endpoint's time and every as_of read the same.
func Epoch(n int64) time.Time {
	switch a := n; {
	case a < 1e11:
		return time.Unix(n, 0)
	case a < 1e14:
		return time.UnixMilli(n)
	case a < 1e17:
		return time.UnixMicro(n)
	}
	return time.Unix(0, n)
}
