package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/decisiontrace/decisiontrace/internal/contract"
)

// Event is one log record of a test: its own timestamp and attributes.
type Event struct {
	At    time.Time
	Attrs map[string]any
}

// Logs is one request holding the events, in order.
func Logs(t testing.TB, evs ...Event) plog.Logs {
	t.Helper()
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, e := range evs {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(e.At))
		require.NoError(t, lr.Attributes().FromRaw(e.Attrs))
	}
	return ld
}

// WriteEvents stores events as one request, as the exporter does.
func (s *Store) WriteEvents(t testing.TB, evs ...Event) {
	t.Helper()
	if len(evs) > 0 {
		s.Write(t, Logs(t, evs...))
	}
}

// Resend stores events a second time, as a producer that resends its
// requests does: the same events (same event IDs) in another request,
// which the insert's deduplication (of identical requests) does not drop.
// It fails the test unless every event became a new row, so that a test of
// redelivery cannot pass without any.
func (s *Store) Resend(t testing.TB, evs ...Event) {
	t.Helper()
	before := s.Count(t, "SELECT count() FROM {db}.events")
	rev := make([]Event, len(evs))
	for i, e := range evs {
		rev[len(evs)-1-i] = e
	}
	s.WriteEvents(t, rev...)
	require.Equal(t, before+uint64(len(evs)), s.Count(t, "SELECT count() FROM {db}.events"),
		"every resent event is a row of its own (a request of one event, or a palindrome of events, is deduplicated: resend more)")
}

// ContractsYAML parses contracts given as YAML documents and writes them
// into the store, in force from now.
func (s *Store) ContractsYAML(t testing.TB, now time.Time, docs ...string) map[string]*contract.Contract {
	t.Helper()
	cs := map[string]*contract.Contract{}
	for i, d := range docs {
		c, err := contract.Parse("contract-"+string(rune('a'+i))+".yaml", []byte(d))
		require.NoError(t, err)
		cs[c.Workflow] = c
	}
	require.NoError(t, s.WriteContracts(context.Background(), cs, now))
	return cs
}

// Synthetic stores n events of generated decisions of the demo contracts'
// workflows (deploy/contracts): claims-triage for two decisions in three,
// loan-underwriting for the third. Each decision is 7 events: a read of
// each of the workflow's three sources, a model output, a routing, a human
// action and a business outcome. The decisions are spread evenly over the
// span that ends at end; every 10 s of it each source is polled and each
// queue's depth recorded. About 2% of the decisions read a source hours
// old, 1% find one unavailable, a tenth are overridden, a fifth come from
// model version v2. ClickHouse generates the rows (INSERT ... SELECT), so
// millions take seconds, and the store's materialized views see them as
// they see the collector's. Decision IDs are syn-<end's Unix time>-<n>, so
// stores of several ends add decisions.
func (s *Store) Synthetic(t testing.TB, end time.Time, span time.Duration, n int) {
	t.Helper()
	ctx := context.Background()
	decisions := (n + 6) / 7
	startNS, stepNS := end.Add(-span).UnixNano(), span.Nanoseconds()/int64(decisions)
	require.NoError(t, s.Conn.Exec(ctx, Render(`INSERT INTO {db}.events (time, observed_time, event_id, signal, decision_id, workflow, layer, event,
    service_name, source, as_of, data_available, model_name, model_version, confidence, route, queue, human_action, outcome)
SELECT
    fromUnixTimestamp64Nano(toInt64(? + d * ? + multiIf(k < 3, -1000000000 + k * 1000000, k = 3, 0, k = 4, 1000000000, k = 5, 60000000000, 90000000000))) AS time,
    time AS observed_time,
    cityHash64('synthetic', ?, number) AS event_id,
    'logs' AS signal,
    concat('syn-', toString(?), '-', toString(d)) AS decision_id,
    if(d % 3 = 0, 'loan-underwriting', 'claims-triage') AS workflow,
    multiIf(k < 3, 'data', k = 3, 'model', k = 4, 'workflow', k = 5, 'human', 'business') AS layer,
    multiIf(k < 3, 'context.read', k = 3, 'model.output', k = 4, 'workflow.routed', k = 5, 'human.action', 'business.outcome') AS event,
    'synthetic' AS service_name,
    if(k < 3, if(d % 3 = 0, ['credit-bureau', 'document-store', 'income-verification'], ['policy-db', 'claims-history', 'fraud-signals'])[k + 1], '') AS source,
    if(k < 3 AND NOT unavailable,
       fromUnixTimestamp64Micro(intDiv(toUnixTimestamp64Nano(time), 1000) - if(h % 100 < 2, 3 * 3600, 5 + h % 55) * 1000000),
       NULL) AS as_of,
    if(k < 3, NOT unavailable, NULL) AS data_available,
    if(k = 3, if(d % 3 = 0, 'underwriting', 'triage'), '') AS model_name,
    if(k = 3, if(d % 10 < 2, 'v2', 'v1'), '') AS model_version,
    if(k = 3, 0.5 + (h % 50) / 100, NULL) AS confidence,
    if(k = 4, if(h % 10 < 4, 'manual', 'auto'), '') AS route,
    if(k = 4, if(d % 3 = 0, 'underwriter-review', 'manual-review'), '') AS queue,
    if(k = 5, if(h % 10 = 0, 'overridden', 'accepted'), '') AS human_action,
    if(k = 6, 'settled', '') AS outcome
FROM (
    SELECT number, intDiv(number, 7) AS d, toUInt8(number % 7) AS k, cityHash64('synthetic', d) AS h,
        k = 1 AND h % 100 = 50 AS unavailable
    FROM numbers(?)
)`, s.DB), startNS, stepNS, end.UnixNano(), end.Unix(), n))
	require.NoError(t, s.Conn.Exec(ctx, Render(`INSERT INTO {db}.events (time, observed_time, event_id, signal, workflow, layer, event,
    service_name, source, as_of, data_available, queue, queue_depth)
SELECT
    fromUnixTimestamp64Nano(toInt64(? + tick * 10000000000)) AS time,
    time AS observed_time,
    cityHash64('synthetic-signal', ?, tick, i) AS event_id,
    'logs' AS signal,
    if(i < 3 OR i = 6, 'loan-underwriting', 'claims-triage') AS workflow,
    if(i < 6, 'data', 'workflow') AS layer,
    if(i < 6, 'source.freshness', 'queue.depth') AS event,
    'synthetic' AS service_name,
    if(i < 6, ['credit-bureau', 'document-store', 'income-verification', 'policy-db', 'claims-history', 'fraud-signals'][i + 1], '') AS source,
    if(i < 6, fromUnixTimestamp64Micro(intDiv(toUnixTimestamp64Nano(time), 1000) - 20000000), NULL) AS as_of,
    if(i < 6, true, NULL) AS data_available,
    multiIf(i = 6, 'underwriter-review', i = 7, 'manual-review', '') AS queue,
    if(i >= 6, toInt64(50 + (tick % 30) * 3), NULL) AS queue_depth
FROM (SELECT number AS tick FROM numbers(?)) ARRAY JOIN range(8) AS i`, s.DB), startNS, end.UnixNano(), int64(span/(10*time.Second))+1))
}
