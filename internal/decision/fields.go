package decision

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
)

// Field is one convention attribute with everything decisiontrace knows
// about it: the Event field it fills, how its value is parsed, the events
// column it is stored in, and whether producers may set it. Extract, the
// decision-events endpoint's accepted fields and the decision store's insert
// columns are all read from Fields, so a new attribute is one row there plus
// the migration that adds its column.
type Field struct {
	// Key is the attribute's name (a constant of internal/conventions).
	Key string
	// Column and Type are its column in the events table and that column's
	// ClickHouse type, as the store's migrations create it.
	Column, Type string
	// Derived marks attributes that the decision processor sets; a producer
	// that sent one could forge what the processor judged.
	Derived bool
	// Aliases are other names for the same value (the OpenTelemetry GenAI
	// conventions). One is read only while the attribute itself is absent,
	// and stays in the record's attributes under its own name.
	Aliases []string
	// AliasesClassify makes a record carrying an alias a decision signal, as
	// a decision.* attribute does: a GenAI span is a model output.
	AliasesClassify bool
	// Classifies makes a record carrying the attribute itself a decision
	// signal (decision.* attributes all do).
	Classifies bool
	// Resource marks a field that a record without it takes from its
	// resource (see Event.FromResource): a service that makes one
	// workflow's decisions says so once, in OTEL_RESOURCE_ATTRIBUTES.
	Resource bool

	extract   func(ev *Event, key string, v pcommon.Value, recordTime time.Time, alias bool)
	newColumn func(n int) Column
}

// Column collects one field's values, event by event, in the form the
// ClickHouse driver appends as a whole column.
type Column interface {
	// Append adds ev's value of the field.
	Append(ev *Event)
	// Values is the column's slice ([]string, []*float64, ...).
	Values() any
}

// NewColumn returns an empty column sized for n events.
func (f *Field) NewColumn(n int) Column { return f.newColumn(n) }

// parser reads one attribute value; a value that does not fit becomes a
// ParseError on ev and the zero value.
type parser[T any] func(ev *Event, key string, v pcommon.Value, recordTime time.Time) T

// field builds a row of Fields. get addresses the Event field it fills, so
// the parser, the alias rule and the column all act on the same one.
func field[T comparable](key, column, typ string, parse parser[T], get func(*Event) *T) Field {
	return Field{
		Key: key, Column: column, Type: typ,
		extract: func(ev *Event, key string, v pcommon.Value, recordTime time.Time, alias bool) {
			p := get(ev)
			var zero T
			if alias && *p != zero {
				return // the attribute itself, or an earlier alias, said it
			}
			*p = parse(ev, key, v, recordTime)
		},
		newColumn: func(n int) Column { return &typedColumn[T]{vals: make([]T, 0, n), get: get} },
	}
}

type typedColumn[T any] struct {
	vals []T
	get  func(*Event) *T
}

func (c *typedColumn[T]) Append(ev *Event) { c.vals = append(c.vals, *c.get(ev)) }
func (c *typedColumn[T]) Values() any      { return c.vals }

func (f Field) derived() Field { f.Derived = true; return f }

func (f Field) fromResource() Field { f.Resource = true; return f }

func (f Field) classifies() Field { f.Classifies = true; return f }

func (f Field) alias(classify bool, keys ...string) Field {
	f.Aliases, f.AliasesClassify = keys, classify
	return f
}

// ClickHouse types of the events table's convention columns.
const (
	tIdent = "String"
	tName  = "LowCardinality(String)"
	tText  = "String"
	tTime  = "Nullable(DateTime64(6))"
	tBool  = "Nullable(Bool)"
	tFloat = "Nullable(Float64)"
	tInt   = "Nullable(Int64)"
)

// Fields is the table of conventions, in the order of the store's insert
// columns.
var Fields = []Field{
	field(c.DecisionID, "decision_id", tIdent, ident, func(e *Event) *string { return &e.ID }),
	// OpenLLMetry names the workflow its spans belong to.
	field(c.DecisionWorkflow, "workflow", tName, ident, func(e *Event) *string { return &e.Workflow }).
		alias(true, c.TraceloopWorkflowName).fromResource(),
	field(c.DecisionLayer, "layer", tName, layer, func(e *Event) *string { return &e.Layer }),
	field(c.DecisionEvent, "event", tName, ident, func(e *Event) *string { return &e.Event }),
	// decision.event_id becomes the row's event_id (a hash), not a column.
	{Key: c.DecisionEventID, extract: func(ev *Event, k string, v pcommon.Value, t time.Time, _ bool) {
		ev.EventID = ident(ev, k, v, t)
	}},

	// A GenAI retrieval names the store it read from.
	field(c.DataSource, "source", tName, ident, func(e *Event) *string { return &e.Source }).
		alias(false, c.GenAIDataSourceID),
	field(c.DataAsOf, "as_of", tTime, timestamp, func(e *Event) **time.Time { return &e.AsOf }),
	field(c.DataComplete, "data_complete", tBool, boolean, func(e *Event) **bool { return &e.Complete }),
	field(c.DataAvailable, "data_available", tBool, boolean, func(e *Event) **bool { return &e.Available }),
	field(c.DataEntitySystem, "entity_system", tName, ident, func(e *Event) *string { return &e.EntitySystem }),
	field(c.DataEntityID, "entity_id", tIdent, ident, func(e *Event) *string { return &e.EntityID }),
	field(c.DataEntityCanonicalID, "entity_canonical_id", tIdent, ident, func(e *Event) *string { return &e.CanonicalID }).derived(),
	field(c.DataEntityResolved, "entity_resolved", tBool, boolean, func(e *Event) **bool { return &e.Resolved }).derived(),
	field(c.DataAgeS, "data_age_s", tFloat, nonNegative, func(e *Event) **float64 { return &e.AgeS }),
	field(c.DataError, "data_error", tText, str, func(e *Event) *string { return &e.Error }),

	field(c.ModelName, "model_name", tName, ident, func(e *Event) *string { return &e.ModelName }).
		alias(true, c.GenAIRequestModel, c.GenAIResponseModel, c.OpenInferenceModelName),
	field(c.ModelProvider, "model_provider", tName, ident, func(e *Event) *string { return &e.ModelProvider }).
		alias(true, c.GenAIProviderName, c.GenAISystem, c.OpenInferenceProvider, c.OpenInferenceSystem),
	field(c.ModelVersion, "model_version", tName, ident, func(e *Event) *string { return &e.ModelVersion }),
	field(c.ModelConfidence, "confidence", tFloat, probability, func(e *Event) **float64 { return &e.Confidence }),
	field(c.ModelRecommendation, "recommendation", tName, str, func(e *Event) *string { return &e.Recommendation }),
	field(c.ModelLatencyMS, "model_latency_ms", tFloat, nonNegative, func(e *Event) **float64 { return &e.LatencyMS }),
	field(c.ModelUnsafe, "model_unsafe", tBool, boolean, func(e *Event) **bool { return &e.Unsafe }),
	field(c.GenAIUsageInputTokens, "input_tokens", tInt, integer, func(e *Event) **int64 { return &e.InputTokens }).
		alias(false, c.GenAIUsagePromptTokens, c.OpenInferencePromptTokens),
	field(c.GenAIUsageOutputTokens, "output_tokens", tInt, integer, func(e *Event) **int64 { return &e.OutputTokens }).
		alias(false, c.GenAIUsageCompletionTokens, c.OpenInferenceCompletionTokens),
	field(c.GenAIEvaluationName, "evaluation_name", tName, ident, func(e *Event) *string { return &e.EvalName }).classifies(),
	field(c.GenAIEvaluationScoreValue, "evaluation_score", tFloat, number, func(e *Event) **float64 { return &e.EvalScore }).classifies(),
	field(c.GenAIEvaluationScoreLabel, "evaluation_label", tName, ident, func(e *Event) *string { return &e.EvalLabel }).classifies(),

	field(c.WorkflowQueue, "queue", tName, ident, func(e *Event) *string { return &e.Queue }),
	field(c.WorkflowRoute, "route", tName, ident, func(e *Event) *string { return &e.Route }),
	field(c.WorkflowQueueDepth, "queue_depth", tInt, integer, func(e *Event) **int64 { return &e.QueueDepth }),
	field(c.WorkflowExceptionType, "exception_type", tName, ident, func(e *Event) *string { return &e.ExceptionType }),

	field(c.HumanAction, "human_action", tName, ident, func(e *Event) *string { return &e.HumanAction }),
	field(c.HumanActor, "human_actor", tName, ident, func(e *Event) *string { return &e.HumanActor }),
	field(c.HumanReason, "human_reason", tText, str, func(e *Event) *string { return &e.HumanReason }),

	field(c.BusinessOutcome, "outcome", tName, ident, func(e *Event) *string { return &e.Outcome }),
	field(c.BusinessCycleTimeS, "cycle_time_s", tFloat, nonNegative, func(e *Event) **float64 { return &e.CycleTimeS }),
	field(c.BusinessCost, "business_cost", tFloat, number, func(e *Event) **float64 { return &e.Cost }),
	field(c.BusinessValue, "business_value", tFloat, number, func(e *Event) **float64 { return &e.Value }),
}

// fieldRef is a name Extract reads: a field's key or one of its aliases.
type fieldRef struct {
	f     *Field
	alias bool
	rank  int // the alias's place in f.Aliases: the earlier wins
}

var byName = map[string]fieldRef{}

// StoredFields are the Fields with a column of their own, in Fields order.
var StoredFields []*Field

func init() {
	for i := range Fields {
		f := &Fields[i]
		if _, dup := byName[f.Key]; dup {
			panic("decision.Fields: " + f.Key + " twice")
		}
		byName[f.Key] = fieldRef{f: f}
		for j, a := range f.Aliases {
			if _, dup := byName[a]; dup {
				panic("decision.Fields: " + a + " twice")
			}
			byName[a] = fieldRef{f: f, alias: true, rank: j}
		}
		if f.Column != "" {
			StoredFields = append(StoredFields, f)
		}
		if f.Resource {
			resourceFields = append(resourceFields, resourceField{f, append([]string{f.Key}, f.Aliases...)})
		}
	}
}

// FromResource fills the Resource fields that the record left empty from
// its resource's attributes (the field's name, then its aliases), after
// Extract. It classifies nothing: a service's other records stay what
// they are.
func (ev *Event) FromResource(resource pcommon.Map, recordTime time.Time) {
	if resource.Len() == 0 {
		return
	}
	for _, rf := range resourceFields {
		for _, k := range rf.names {
			if v, ok := resource.Get(k); ok {
				rf.f.extract(ev, k, v, recordTime, true)
			}
		}
	}
}

// resourceFields are the Resource fields, each with the names it is read
// by: its key, then its aliases.
var resourceFields []resourceField

type resourceField struct {
	f     *Field
	names []string
}

// Lookup returns the field that attribute name fills, with alias true when
// name is one of its aliases.
func Lookup(name string) (f *Field, alias bool, ok bool) {
	r, ok := byName[name]
	return r.f, r.alias, ok
}
