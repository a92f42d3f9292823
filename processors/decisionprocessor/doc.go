// Package decisionprocessor is the decision processor: it classifies every
// log record and span into a decision layer and event, reconciles entity
// identifiers through alias maps, and judges each decision against its
// workflow's dependency contract, emitting a decision.verdict log record
// (context fresh, stale or missing; confidence low; unsupported certainty;
// the behaviour the contract prescribes).
//
// One instance serves the logs and the traces pipeline it is configured in
// (the same component ID shares one state), because a decision's context
// reads often arrive as logs and its model output as a GenAI span. Verdicts
// leave through the logs pipeline.
package decisionprocessor // import "github.com/decisiontrace/decisiontrace/processors/decisionprocessor"
