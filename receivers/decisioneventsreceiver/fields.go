package decisioneventsreceiver

import (
	"strings"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/decision"
)

// Keys of an event object that are not decision.* conventions.
const (
	keyTime       = "time"
	keyAttributes = "attributes"
	keyResource   = "resource"
)

type fieldKind uint8

const (
	fieldConvention fieldKind = iota
	// fieldProcessor marks names the decision processor derives; taking them
	// from producers would let a producer forge a resolution.
	fieldProcessor
)

// verdictPrefix starts the names of a decision's verdict (verdict.context,
// verdict.unsupported_certainty, ...). The decision store derives verdicts
// from the stored events; version 1's decision processor sent them as
// verdict.* attributes. A producer's verdict.* field, at the top level or
// under attributes, would claim a verdict nobody judged, so it is refused
// with verdictReason.
const verdictPrefix = "verdict."

const verdictReason = "verdict.* is derived by the decision store from the stored events; producers do not set it"

func isVerdict(k string) bool { return strings.HasPrefix(k, verdictPrefix) }

type eventField struct {
	// name is the convention's constant, so a record's key strings are
	// shared instead of copied from each request.
	name string
	kind fieldKind
}

// eventFields are the conventions a producer's event may carry as fields,
// as decision.Fields lists them (aliases included).
var eventFields = map[string]eventField{}

func init() {
	for _, f := range decision.Fields {
		kind := fieldConvention
		if f.Derived {
			kind = fieldProcessor
		}
		eventFields[f.Key] = eventField{name: f.Key, kind: kind}
		for _, a := range f.Aliases {
			eventFields[a] = eventField{name: a, kind: kind}
		}
	}
}

// reservedAttribute reports whether a free-form attribute key would shadow a
// convention: such a value would skip the checks its top-level form gets.
func reservedAttribute(k string) bool {
	_, known := eventFields[k]
	return known || strings.HasPrefix(k, "decision.") || isVerdict(k)
}

// humanFields maps the human-actions webhook's field names to conventions.
var humanFields = map[string]string{
	"decision_id": c.DecisionID,
	"workflow":    c.DecisionWorkflow,
	"action":      c.HumanAction,
	"actor":       c.HumanActor,
	"reason":      c.HumanReason,
	"event_id":    c.DecisionEventID,
}

// humanNames is humanFields reversed, so errors found on the converted
// attributes name the field the client sent.
var humanNames = map[string]string{}

func init() {
	for k, v := range humanFields {
		humanNames[v] = k
	}
}

var humanActions = map[string]struct{}{
	c.ActionAccepted: {}, c.ActionOverridden: {}, c.ActionModified: {}, c.ActionIgnored: {}, c.ActionEscalated: {},
}
