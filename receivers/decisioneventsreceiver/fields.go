package decisioneventsreceiver

import (
	"strings"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
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

var eventFields = map[string]eventField{}

func init() {
	for _, k := range []string{
		c.DecisionID, c.DecisionWorkflow, c.DecisionLayer, c.DecisionEvent, c.DecisionEventID,
		c.DataSource, c.DataAsOf, c.DataComplete, c.DataAvailable, c.DataEntitySystem, c.DataEntityID,
		c.DataAgeS, c.DataError,
		c.ModelName, c.ModelVersion, c.ModelConfidence, c.ModelRecommendation, c.ModelLatencyMS, c.ModelUnsafe,
		c.GenAIRequestModel, c.GenAIResponseModel, c.GenAIUsageInputTokens, c.GenAIUsageOutputTokens,
		c.WorkflowQueue, c.WorkflowRoute, c.WorkflowQueueDepth, c.WorkflowExceptionType,
		c.HumanAction, c.HumanActor, c.HumanReason,
		c.BusinessOutcome, c.BusinessCycleTimeS, c.BusinessCost, c.BusinessValue,
	} {
		eventFields[k] = eventField{name: k, kind: fieldConvention}
	}
	for _, k := range []string{c.DataEntityCanonicalID, c.DataEntityResolved} {
		eventFields[k] = eventField{name: k, kind: fieldProcessor}
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

// decisionScoped reports whether an event describes one decision and so
// needs its ID; source freshness and queue depth describe a source or a
// queue shared by many decisions.
func decisionScoped(event string) bool {
	return event != c.EventSourceFreshness && event != c.EventQueueDepth
}
