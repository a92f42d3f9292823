package decisionstoreexporter

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// decisionLog appends a log record with attrs at ts to ld.
func decisionLog(ld plog.Logs, ts time.Time, attrs map[string]any) plog.LogRecord {
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
		panic(err)
	}
	return lr
}
