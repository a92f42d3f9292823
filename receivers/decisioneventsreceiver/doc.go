// Package decisioneventsreceiver takes decision events over HTTP as plain
// JSON, from tools that do not speak OTLP (review tools, workflow engines,
// outcome feeds), checks each event against the decision.* conventions and
// hands the accepted ones to the pipeline as OTLP log records, one record
// per event.
package decisioneventsreceiver // import "github.com/decisiontrace/decisiontrace/receivers/decisioneventsreceiver"
