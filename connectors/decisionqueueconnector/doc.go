//go:generate mdatagen metadata.yaml

// Package decisionqueueconnector turns the queue metrics of stock receivers
// (prometheus, rabbitmq, redis, ...) into workflow-layer queue.depth
// signals: a connector from a metrics pipeline into a logs pipeline, so
// that a queue's depth reaches the decision store whatever scrapes it.
package decisionqueueconnector // import "github.com/decisiontrace/decisiontrace/connectors/decisionqueueconnector"
