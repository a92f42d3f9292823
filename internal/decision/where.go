package decision

import (
	"fmt"
	"iter"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Where is a record's place in its OTLP request, as a refusal names it:
// resource_logs[0].scope_logs[1].log_records[2].
type Where struct {
	Resource, Scope, Record int
	span                    bool
}

func (w Where) String() string {
	if w.span {
		return fmt.Sprintf("resource_spans[%d].scope_spans[%d].spans[%d]", w.Resource, w.Scope, w.Record)
	}
	return fmt.Sprintf("resource_logs[%d].scope_logs[%d].log_records[%d]", w.Resource, w.Scope, w.Record)
}

// LogRecords yields every log record of ld with where it is.
func LogRecords(ld plog.Logs) iter.Seq2[Where, plog.LogRecord] {
	return func(yield func(Where, plog.LogRecord) bool) {
		for i, rl := range ld.ResourceLogs().All() {
			for j, sl := range rl.ScopeLogs().All() {
				for k, lr := range sl.LogRecords().All() {
					if !yield(Where{Resource: i, Scope: j, Record: k}, lr) {
						return
					}
				}
			}
		}
	}
}

// Spans yields every span of td with where it is.
func Spans(td ptrace.Traces) iter.Seq2[Where, ptrace.Span] {
	return func(yield func(Where, ptrace.Span) bool) {
		for i, rs := range td.ResourceSpans().All() {
			for j, ss := range rs.ScopeSpans().All() {
				for k, sp := range ss.Spans().All() {
					if !yield(Where{Resource: i, Scope: j, Record: k, span: true}, sp) {
						return
					}
				}
			}
		}
	}
}
