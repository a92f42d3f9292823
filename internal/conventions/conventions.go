// Package conventions holds the decision.* attribute names: the public OTLP
// contract that applications, the load generator and every decisiontrace
// component agree on. Renaming one is a breaking change that needs a
// migration note in the README.
package conventions

// Correlation and classification.
const (
	DecisionID       = "decision.id"
	DecisionWorkflow = "decision.workflow"
	DecisionLayer    = "decision.layer"
	DecisionEvent    = "decision.event"
	// DecisionEventID is an optional idempotency key set by the producer; when
	// absent the exporter derives one from the record's content.
	DecisionEventID = "decision.event_id"
	// DecisionWorkflowUnknown is set (true) by the decision processor on a
	// record whose workflow has no contract and is not listed as known,
	// under unknown_workflows: tag. Producers do not set it.
	DecisionWorkflowUnknown = "decision.workflow.unknown"
)

// Data layer.
const (
	DataSource       = "data.source"
	DataAsOf         = "data.as_of"
	DataComplete     = "data.complete"
	DataAvailable    = "data.available"
	DataEntitySystem = "data.entity.system"
	DataEntityID     = "data.entity.id"

	// DataAgeS is a source's age in seconds when it was observed (now -
	// as_of), set on source.freshness signals.
	DataAgeS = "data.age_s"
	// DataError says why a source could not be read (with available=false).
	DataError = "data.error"
	// DataEntityCanonicalID is the canonical entity ID the decision
	// processor resolved data.entity.system + data.entity.id to;
	// DataEntityResolved is false when no alias map knew the pair.
	DataEntityCanonicalID = "data.entity.canonical_id"
	DataEntityResolved    = "data.entity.resolved"
)

// Model layer, plus the OpenTelemetry GenAI names understood as aliases.
const (
	ModelName           = "model.name"
	ModelVersion        = "model.version"
	ModelConfidence     = "model.confidence"
	ModelRecommendation = "model.recommendation"
	ModelLatencyMS      = "model.latency_ms"
	ModelUnsafe         = "model.unsafe"

	// ModelProvider is who serves the model (openai, anthropic, ...); the
	// GenAI conventions' gen_ai.provider.name and its forerunner
	// gen_ai.system are read as it.
	ModelProvider = "model.provider"

	GenAIRequestModel      = "gen_ai.request.model"
	GenAIResponseModel     = "gen_ai.response.model"
	GenAIUsageInputTokens  = "gen_ai.usage.input_tokens"
	GenAIUsageOutputTokens = "gen_ai.usage.output_tokens"
	GenAIProviderName      = "gen_ai.provider.name"
	GenAIOperationName     = "gen_ai.operation.name"
	GenAIDataSourceID      = "gen_ai.data_source.id"
	// A gen_ai.evaluation.result event scores a model output: an
	// evaluator's name, a numeric score and its label (pass, relevant...).
	GenAIEvaluationResult     = "gen_ai.evaluation.result"
	GenAIEvaluationName       = "gen_ai.evaluation.name"
	GenAIEvaluationScoreValue = "gen_ai.evaluation.score.value"
	GenAIEvaluationScoreLabel = "gen_ai.evaluation.score.label"
	// Deprecated GenAI names that instrumentations still send.
	GenAISystem                = "gen_ai.system"
	GenAIUsagePromptTokens     = "gen_ai.usage.prompt_tokens"
	GenAIUsageCompletionTokens = "gen_ai.usage.completion_tokens"
	GenAIOperationRetrieval    = "retrieval"
)

// OpenInference (Arize) and OpenLLMetry (Traceloop) names read as the
// conventions above, so that applications they instrument need no change.
const (
	OpenInferenceSpanKind          = "openinference.span.kind"
	OpenInferenceSpanKindRetriever = "RETRIEVER"
	OpenInferenceModelName         = "llm.model_name"
	OpenInferenceProvider          = "llm.provider"
	OpenInferenceSystem            = "llm.system"
	OpenInferencePromptTokens      = "llm.token_count.prompt"
	OpenInferenceCompletionTokens  = "llm.token_count.completion"
	TraceloopWorkflowName          = "traceloop.workflow.name"
)

// Workflow layer.
const (
	WorkflowQueue         = "workflow.queue"
	WorkflowRoute         = "workflow.route"
	WorkflowQueueDepth    = "workflow.queue.depth"
	WorkflowExceptionType = "workflow.exception.type"
)

// Human layer.
const (
	HumanAction = "human.action"
	HumanActor  = "human.actor"
	HumanReason = "human.reason"
)

// Business layer.
const (
	BusinessOutcome    = "business.outcome"
	BusinessCycleTimeS = "business.cycle_time_s"
	BusinessCost       = "business.cost"
	BusinessValue      = "business.value"
)

// Alert records: what the rule evaluator emits at each state change of an
// alert and what the Alertmanager exporter sends on. One log record per
// alert instance (rule + label set).
const (
	// AlertName is the rule's name (Alertmanager's alertname label).
	AlertName = "alert.name"
	// AlertState is pending, firing or resolved (nodata is reported as
	// firing with the alert of its own, never as resolved).
	AlertState = "alert.state"
	// AlertLabels and AlertAnnotations are maps of strings.
	AlertLabels      = "alert.labels"
	AlertAnnotations = "alert.annotations"
	// AlertActiveAt, AlertFiredAt and AlertResolvedAt are RFC 3339 times.
	AlertActiveAt   = "alert.active_at"
	AlertFiredAt    = "alert.fired_at"
	AlertResolvedAt = "alert.resolved_at"
	// AlertValue is the rule expression's value that caused the state.
	AlertValue = "alert.value"
	// AlertGeneratorURL points at the dashboard that explains the alert.
	AlertGeneratorURL = "alert.generator_url"
	// AlertFingerprint identifies the alert instance (rule + labels).
	AlertFingerprint = "alert.fingerprint"
)

// Alert states.
const (
	AlertStatePending  = "pending"
	AlertStateFiring   = "firing"
	AlertStateResolved = "resolved"
)

// The rule evaluator's own alerts: a rule whose query fails, a rule whose
// signals have stopped, and the decision store that cannot be queried.
const (
	AlertRuleFailing      = "DecisionRuleFailing"
	AlertRuleNoData       = "DecisionRuleNoData"
	AlertStoreUnavailable = "DecisionStoreUnavailable"
)

// Verdict values: a decision's context and behaviour as the decision store
// judges them (its verdicts table and decision_verdicts view). Verdicts are
// not an OTLP signal: no decisiontrace component sends or accepts verdict.*
// attributes.
const (
	ContextFresh   = "fresh"
	ContextStale   = "stale"
	ContextMissing = "missing"
	// ContextPending: a required source's read has not reached the store
	// yet, and may still (its reads lag the decision by less than the
	// contract's max_context_lag). Rates leave pending decisions out.
	ContextPending = "pending"

	BehaviourProceed           = "proceed"
	BehaviourWarn              = "warn"
	BehaviourAbstain           = "abstain"
	BehaviourDegrade           = "degrade"
	BehaviourEscalate          = "escalate"
	BehaviourProceedWithLimits = "proceed_with_limits"
)

// Layers, in the order the rollup's layer bitmask uses (bit 0 = data).
const (
	LayerData     = "data"
	LayerModel    = "model"
	LayerWorkflow = "workflow"
	LayerHuman    = "human"
	LayerBusiness = "business"
	// LayerUnclassified marks a record that carried no decision.* attribute
	// and was stored because the exporter is configured to keep such records.
	LayerUnclassified = "unclassified"
)

// Layers lists the five decision layers in bitmask order.
var Layers = []string{LayerData, LayerModel, LayerWorkflow, LayerHuman, LayerBusiness}

// Event names used by the built-in components and the load generator.
const (
	EventContextRead     = "context.read"
	EventSourceFreshness = "source.freshness"
	EventModelOutput     = "model.output"
	// EventModelEvaluation is an evaluator's score of a model output
	// (gen_ai.evaluation.result).
	EventModelEvaluation   = "model.evaluation"
	EventWorkflowRouted    = "workflow.routed"
	EventWorkflowException = "workflow.exception"
	EventWorkflowRework    = "workflow.rework"
	EventQueueDepth        = "queue.depth"
	EventHumanAction       = "human.action"
	EventBusinessOutcome   = "business.outcome"

	// EventVerdict marks the verdict records version 1's decision processor
	// wrote (with verdict.* attributes); nothing writes them now and the
	// store leaves such records out of every verdict. Kept so that old data
	// can be recognized.
	EventVerdict = "decision.verdict"
)

// Human actions.
const (
	ActionAccepted   = "accepted"
	ActionOverridden = "overridden"
	ActionModified   = "modified"
	ActionIgnored    = "ignored"
	ActionEscalated  = "escalated"
)

// LayerBit returns the rollup bitmask bit of a layer, or 0 for anything else.
func LayerBit(layer string) uint8 {
	for i, l := range Layers {
		if l == layer {
			return 1 << i
		}
	}
	return 0
}
