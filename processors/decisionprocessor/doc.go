// Package decisionprocessor is the decision processor: it classifies every
// log record and span into a decision layer and event (a GenAI span is a
// model.output), reconciles entity identifiers through alias maps, and turns
// configured queue metrics into queue.depth signals.
//
// It is stateless: it judges nothing and holds no decision. Verdicts are
// derived by the decision store (internal/store) from the stored events, in
// event time, so the signals of a decision may arrive in any order, minutes
// apart, through any number of collectors. One instance serves every
// pipeline of a component ID, for one alias map and so that queue.depth
// signals from the metrics pipeline leave through the logs pipeline.
package decisionprocessor // import "github.com/decisiontrace/decisiontrace/processors/decisionprocessor"
