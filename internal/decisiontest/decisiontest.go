// Package decisiontest builds decision signals for tests of the components
// that read them.
package decisiontest

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Log appends a log record with attrs at ts to ld, under one resource
// (service.name claims-api) and scope; observed a millisecond later.
func Log(ld plog.Logs, ts time.Time, attrs map[string]any) plog.LogRecord {
	var rl plog.ResourceLogs
	if ld.ResourceLogs().Len() == 0 {
		rl = ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", "claims-api")
		rl.ScopeLogs().AppendEmpty().Scope().SetName("claims")
	} else {
		rl = ld.ResourceLogs().At(0)
	}
	lr := rl.ScopeLogs().At(0).LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(ts.Add(time.Millisecond)))
	lr.Body().SetStr("decision signal")
	if err := lr.Attributes().FromRaw(attrs); err != nil {
		panic(err) // a test's own attributes
	}
	return lr
}
