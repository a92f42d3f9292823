package main

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/decisiontrace/decisiontrace/internal/amtest"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/store"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// TestIntegrationTrafficPauseIsOnePageThroughTheCollector: both contracted
// workflows decide for 40 minutes, every layer present and every source
// fresh, and stop an hour ago. Through the whole distribution (OTLP in,
// the store, the rule evaluator with the shipped contracts, the
// Alertmanager exporter, a real Alertmanager and its webhook) that is one
// notification: claims-triage's DecisionWorkflowSilent (its contract allows
// 30 minutes; loan-underwriting's allows 3 hours). While paused no other
// alert so much as goes pending: no traffic is no staleness, no silent
// layer and no missing data. Traffic resumes: the alert resolves, and
// nothing else fires.
func TestIntegrationTrafficPauseIsOnePageThroughTheCollector(t *testing.T) {
	addr := testenv.ClickHouse(t)
	db := testenv.Database(t, addr, "dt_pause")
	s := storeOf(t, addr, db)
	am, hook := amtest.StartNotifying(t)
	env := collectorConfig(t, t.TempDir(), addr, db, true, am.URL())
	runCollector(t, env.configPath)

	now := time.Now().UTC().Truncate(time.Second)
	sent := 0
	// Each phase in one request: every layer of its decisions becomes
	// visible at once, so that no evaluation round sees decisions without
	// the reviews and queue depths that came with them (a rule without its
	// data goes pending, which is what this test would count).
	sendAll := func(reqs []request) {
		ld := plog.NewLogs()
		for _, r := range reqs {
			r.logs.ResourceLogs().MoveAndAppendTo(ld.ResourceLogs())
		}
		send(t, env.httpPort, ld)
		sent += ld.LogRecordCount()
		settle(t, s, sent)
	}
	before, _ := incident(incidentOptions{start: now.Add(-101 * time.Minute), span: 40 * time.Minute, every: 30 * time.Second, seed: 3,
		staleAt: time.Hour, batch: 5 * time.Minute})
	sendAll(append(before, queueDepths(now.Add(-101*time.Minute), 40*time.Minute)))

	// The contract's traffic rule: over 30 minutes, then `for: 1m`.
	require.Eventually(t, func() bool { return len(hook.Notifications(t, "DecisionWorkflowSilent")) > 0 },
		3*time.Minute, time.Second, "claims-triage's pause is paged")
	fired := hook.Notifications(t, "DecisionWorkflowSilent")[0]
	assert.Equal(t, "firing", fired.Status)
	assert.Equal(t, "claims-triage", fired.Labels["workflow"])
	assert.Equal(t, "ticket", fired.Labels["severity"])
	assert.Equal(t, []string{"DecisionWorkflowSilent"}, alertNamesRecorded(t, s, ""), "while paused, no other alert so much as goes pending")

	// Decisions again, the latest two minutes ago.
	resumed := time.Now().UTC().Add(-5 * time.Minute)
	after, _ := incident(incidentOptions{start: resumed, span: 3 * time.Minute, every: 30 * time.Second, seed: 4,
		staleAt: time.Hour, batch: time.Minute})
	sendAll(append(after, queueDepths(resumed, 3*time.Minute)))
	require.Eventually(t, func() bool {
		n := hook.Notifications(t, "DecisionWorkflowSilent")
		return n[len(n)-1].Status == "resolved"
	}, time.Minute, time.Second, "the pause's alert resolves when traffic resumes")
	// A few more rounds (one a second) for anything the new traffic would
	// raise.
	time.Sleep(5 * time.Second)

	var got []string
	for _, n := range hook.Notifications(t, "") {
		got = append(got, n.Labels["alertname"]+" "+n.Labels["workflow"]+" "+n.Status)
	}
	assert.Equal(t, []string{"DecisionWorkflowSilent claims-triage firing", "DecisionWorkflowSilent claims-triage resolved"}, got)
	// A verdict rule may go pending on no data for a moment: decisions
	// stored between two verdict refreshes are not judged yet. Its `for`
	// (10 minutes) is there for that.
	assert.Equal(t, []string{"DecisionWorkflowSilent"}, alertNamesRecorded(t, s, "firing"), "nothing else fired")
}

// queueDepths is one request of the contracted workflows' review queues
// reporting their (healthy) depth every 30 seconds, as workflows do while
// they decide.
func queueDepths(start time.Time, span time.Duration) request {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for off := time.Duration(0); off < span; off += 30 * time.Second {
		for wf, queue := range map[string]string{"claims-triage": "manual-review", "loan-underwriting": "underwriter-review"} {
			lr := lrs.AppendEmpty()
			lr.SetTimestamp(pcommon.NewTimestampFromTime(start.Add(off)))
			lr.Attributes().PutStr(conventions.DecisionWorkflow, wf)
			lr.Attributes().PutStr(conventions.DecisionLayer, conventions.LayerWorkflow)
			lr.Attributes().PutStr(conventions.DecisionEvent, conventions.EventQueueDepth)
			lr.Attributes().PutStr(conventions.WorkflowQueue, queue)
			lr.Attributes().PutInt(conventions.WorkflowQueueDepth, 40)
		}
	}
	return request{logs: ld}
}

// alertNamesRecorded is every alert name in the store's alert history
// (every transition of every alert), or of its transitions to state.
func alertNamesRecorded(t *testing.T, s *store.Store, state string) []string {
	t.Helper()
	rows, err := s.Conn().Query(context.Background(), "SELECT DISTINCT alertname FROM "+s.DB()+".alert_history WHERE ? IN ('', state)", state)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		out = append(out, name)
	}
	require.NoError(t, rows.Err())
	sort.Strings(out)
	return out
}
