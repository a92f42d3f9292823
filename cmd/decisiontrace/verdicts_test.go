package main

import (
	"bytes"
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/decisiontrace/decisiontrace/internal/contract"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/rules"
	"github.com/decisiontrace/decisiontrace/internal/store"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// The tests in this file run the whole distribution (decision processor,
// decisionstore exporter with its persistent queue, and the alertrules
// receiver, which writes the contracts and refreshes verdicts) against the
// real ClickHouse, and check that a decision's verdict depends on what it
// is, not on the order, delay, collector or number of times its signals
// arrive.

var repoRoot, _ = filepath.Abs(filepath.Join("..", ".."))

// verdictCollector is a collector of a verdict test (collectorConfig with
// the evaluator).
func verdictCollector(t *testing.T, dir, addr, db string) collectorEnv {
	t.Helper()
	return collectorConfig(t, dir, addr, db, true, "")
}

func send(t *testing.T, port int, ld plog.Logs) {
	t.Helper()
	body, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	require.NoError(t, err)
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/logs", port), "application/x-protobuf", bytes.NewReader(body))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func logCount(reqs []request) int {
	n := 0
	for _, r := range reqs {
		n += r.logs.LogRecordCount()
	}
	return n
}

// storeOf opens the database a test's collectors write. The test judges at
// rest (settle waits for every insert), so with no hold on its watermarks;
// the collectors' own evaluator holds them.
func storeOf(t *testing.T, addr, db string) *store.Store {
	t.Helper()
	return store.New(testenv.Conn(t, addr), db, store.Layout{}).AtRest()
}

// settle waits until the store holds n distinct events and no insert into
// the database is still running (an insert's rows become visible in events
// before its materialized views have written the rollup and watermarks),
// then refreshes verdicts as any evaluator would.
func settle(t *testing.T, s *store.Store, n int) {
	t.Helper()
	ctx := context.Background()
	var got, inserting uint64
	require.Eventually(t, func() bool {
		if err := s.Conn().QueryRow(ctx, "SELECT uniqExact(event_id) FROM "+s.DB()+".events").Scan(&got); err != nil || got != uint64(n) {
			return false
		}
		err := s.Conn().QueryRow(ctx, "SELECT count() FROM system.processes WHERE query_kind = 'Insert' AND position(query, ?) > 0", s.DB()+".").Scan(&inserting)
		return err == nil && inserting == 0
	}, 2*time.Minute, 100*time.Millisecond, "stored %d of %d events, %d inserts running", got, n, inserting)
	_, err := s.RefreshVerdicts(ctx)
	require.NoError(t, err)
}

type storedVerdict struct {
	context, behaviour, staleSource string
	stale, missing, pending         []string
	unsupported, low                bool
	decisionTime                    time.Time
}

func verdicts(t *testing.T, s *store.Store) map[string]storedVerdict {
	t.Helper()
	rows, err := s.Conn().Query(context.Background(), `SELECT decision_id, context, behaviour, stale_source, stale_sources, missing_sources,
pending_sources, unsupported_certainty, confidence_low, decision_time FROM `+s.DB()+`.verdicts FINAL`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]storedVerdict{}
	for rows.Next() {
		var id string
		var v storedVerdict
		require.NoError(t, rows.Scan(&id, &v.context, &v.behaviour, &v.staleSource, &v.stale, &v.missing, &v.pending, &v.unsupported, &v.low, &v.decisionTime))
		v.decisionTime = v.decisionTime.UTC()
		out[id] = v
	}
	require.NoError(t, rows.Err())
	return out
}

func byContext(vs map[string]storedVerdict) map[string]int {
	out := map[string]int{}
	for _, v := range vs {
		out[v.context]++
	}
	return out
}

func alertsRecorded(t *testing.T, s *store.Store, names ...string) uint64 {
	t.Helper()
	var n uint64
	require.NoError(t, s.Conn().QueryRow(context.Background(), "SELECT count() FROM "+s.DB()+".alert_history WHERE has(?, alertname)", names).Scan(&n))
	return n
}

// TestIntegrationLateContextThroughTheCollector: a log shipper delivers a
// workflow's context reads 4 minutes after the model outputs. While they
// are on their way the decisions are pending, never missing; once they are
// in, every decision is judged as if all had come at once. With every read
// there, no missing-context or unsupported-certainty alert so much as goes
// pending; with 3% of reads truly absent, exactly the decisions that lack
// one are missing.
func TestIntegrationLateContextThroughTheCollector(t *testing.T) {
	t.Run("every read arrives late", func(t *testing.T) {
		s := lateContext(t, 0, time.Minute)
		assert.Zero(t, alertsRecorded(t, s, "DecisionMissingContext", "DecisionUnsupportedCertainty"), "late context pages no one")
	})
	t.Run("3% of reads absent", func(t *testing.T) { lateContext(t, 0.03, 2*time.Minute) })
}

// lateContext sends 16 minutes of decisions whose reads arrive 4 minutes
// after their outputs, checking the verdicts after each checkEvery of
// arrivals, and at the end against what the generator knows.
func lateContext(t *testing.T, absent float64, checkEvery time.Duration) *store.Store {
	addr := testenv.ClickHouse(t)
	db := testenv.Database(t, addr, "dt_late")
	s := storeOf(t, addr, db)
	env := verdictCollector(t, t.TempDir(), addr, db)
	runCollector(t, env.configPath)

	// Decisions up to a minute ago: the contract rules look at the last 15
	// minutes of decision time.
	start := time.Now().UTC().Add(-17 * time.Minute).Truncate(time.Second)
	reqs, truth := incident(incidentOptions{start: start, span: 16 * time.Minute, every: 4 * time.Second, seed: 1,
		absent: absent, readLag: 4 * time.Minute, batch: 30 * time.Second})
	sent := 0
	next := time.Duration(0)
	checks := 0
	for i, r := range reqs {
		send(t, env.httpPort, r.logs)
		sent += r.logs.LogRecordCount()
		if i+1 < len(reqs) && reqs[i+1].arrives < next {
			continue
		}
		next += checkEvery
		settle(t, s, sent)
		checks++
		for id, v := range verdicts(t, s) {
			if v.context == conventions.ContextMissing {
				require.True(t, truth.missing[id], "%s judged missing while its context is on its way (arrivals up to %s)", id, r.arrives)
			}
		}
	}
	got := verdicts(t, s)
	t.Logf("%d checks; verdicts at the end: %v; decisions lacking a read: %d of %d", checks, byContext(got), len(truth.missing), len(truth.at))
	lastRead := start.Add(16*time.Minute - time.Minute)
	for id, at := range truth.at {
		v, ok := got[id]
		require.True(t, ok, "%s judged", id)
		switch {
		case truth.missing[id] && at.Before(lastRead):
			assert.Equal(t, conventions.ContextMissing, v.context, "%s lacks a read", id)
		case truth.missing[id]:
			// No later read has passed it yet: its read may still come.
			assert.Contains(t, []string{conventions.ContextMissing, conventions.ContextPending}, v.context, id)
		default:
			assert.Equal(t, conventions.ContextFresh, v.context, "%s read everything, fresh", id)
		}
	}
	return s
}

// TestIntegrationKilledCollectorJudgesRight: the collector dies (SIGKILL)
// after it acknowledged the model outputs and before the context reads
// arrive; the restarted collector takes the reads, and the verdicts are
// those of an uninterrupted run. The killed collector only ingests; the
// test judges, as an evaluator elsewhere would. (The embedded ClickHouse
// aborts when a client dies with a query's result unread, which a real
// server does not; an ingesting collector's connections are idle between
// inserts.)
func TestIntegrationKilledCollectorJudgesRight(t *testing.T) {
	addr := testenv.ClickHouse(t)
	db := testenv.Database(t, addr, "dt_kill")
	s := storeOf(t, addr, db)
	dir := t.TempDir()
	// The collector is killed with ClickHouse up: through the proxy, so
	// the shared embedded engine is not reset under (see hangUpProxy).
	env := collectorConfig(t, dir, hangUpProxy(t, addr), db, false, "")
	logPath := filepath.Join(dir, "collector.log")
	ctx := context.Background()
	_, _, err := s.Migrate(ctx)
	require.NoError(t, err)
	contracts, err := contract.Load(contractFiles(t))
	require.NoError(t, err)
	require.NoError(t, s.WriteContracts(ctx, contracts, time.Now()))

	start := time.Now().UTC().Add(-12 * time.Minute).Truncate(time.Second)
	reqs, truth := incident(incidentOptions{start: start, span: 10 * time.Minute, every: 5 * time.Second, seed: 2,
		absent: 0.03, readLag: 3 * time.Minute, batch: 30 * time.Second})
	// Before the kill: everything but the context reads.
	var before, after []request
	for _, r := range reqs {
		if r.arrives <= 3*time.Minute {
			before = append(before, r)
		} else {
			after = append(after, r)
		}
	}
	first := startCollectorProcess(t, env, logPath)
	for _, r := range before {
		send(t, env.httpPort, r.logs)
	}
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()

	startCollectorProcess(t, env, logPath)
	for _, r := range after {
		send(t, env.httpPort, r.logs)
	}
	settle(t, s, logCount(reqs))
	got := verdicts(t, s)
	for id, at := range truth.at {
		v := got[id]
		if truth.missing[id] {
			if at.Before(start.Add(9 * time.Minute)) {
				assert.Equal(t, conventions.ContextMissing, v.context, id)
			}
			continue
		}
		assert.Equal(t, conventions.ContextFresh, v.context, "%s (collector log: %s)", id, logPath)
	}
}

// TestIntegrationTwoCollectorsAndResentRequestsJudgeAsOne: the same
// incident (a required source going stale, absent and unavailable reads,
// reads arriving two minutes late) through one collector; through two,
// each request to one of them at random; and through two with every
// request resent to the other later. Verdicts, the per-decision rollup and
// the condition of every contract rule are the same, decision by decision.
func TestIntegrationTwoCollectorsAndResentRequestsJudgeAsOne(t *testing.T) {
	addr := testenv.ClickHouse(t)
	start := time.Now().UTC().Add(-16 * time.Minute).Truncate(time.Second)
	reqs, truth := incident(incidentOptions{start: start, span: 15 * time.Minute, every: 3 * time.Second, seed: 3,
		absent: 0.03, readLag: 2 * time.Minute, staleAt: 4 * time.Minute, staleFor: 6 * time.Minute, batch: 20 * time.Second})
	n := logCount(reqs)

	run := func(name string, collectors int, resend bool) *store.Store {
		db := testenv.Database(t, addr, "dt_"+name)
		s := storeOf(t, addr, db)
		var ports []int
		var procs []*exec.Cmd
		for i := 0; i < collectors; i++ {
			dir := filepath.Join(t.TempDir(), fmt.Sprint(i))
			env := verdictCollector(t, dir, addr, db)
			procs = append(procs, startCollectorProcess(t, env, filepath.Join(dir, "collector.log")))
			ports = append(ports, env.httpPort)
		}
		rng := mrand.New(mrand.NewPCG(42, uint64(collectors)))
		var resends []plog.Logs
		for _, r := range reqs {
			to := rng.IntN(len(ports))
			send(t, ports[to], r.logs)
			if resend {
				// The producer resends later, to the other collector, with
				// the next request: another batch, another insert.
				resends = append(resends, r.logs)
				if len(resends) == 2 {
					both := plog.NewLogs()
					for _, ld := range resends {
						cp := plog.NewLogs()
						ld.CopyTo(cp)
						cp.ResourceLogs().MoveAndAppendTo(both.ResourceLogs())
					}
					send(t, ports[(to+1)%len(ports)], both)
					resends = nil
				}
			}
		}
		for _, ld := range resends {
			send(t, ports[0], ld)
		}
		settle(t, s, n)
		// Two cores: the next run's collectors should not share them.
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
			_ = p.Wait()
		}
		return s
	}
	one := run("one", 1, false)
	two := run("two", 2, false)
	twice := run("twice", 2, true)

	want := verdicts(t, one)
	ctxs := byContext(want)
	t.Logf("one collector: %v", ctxs)
	require.Len(t, want, len(truth.at))
	require.Positive(t, ctxs[conventions.ContextStale], "policy-db went stale")
	require.Positive(t, ctxs[conventions.ContextMissing], "absent and unavailable reads")
	assert.Equal(t, want, verdicts(t, two), "two collectors judge as one")
	assert.Equal(t, want, verdicts(t, twice), "resent requests change no verdict")

	summary := func(s *store.Store) []string {
		rows, err := s.Conn().Query(context.Background(), "SELECT decision_id, workflow, first_seen, last_seen, layers_seen, events, model_version, human_action, outcome FROM "+s.DB()+".decision_summary ORDER BY decision_id")
		require.NoError(t, err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id, wf string
			var first, last time.Time
			var layers []string
			var events uint64
			var mv, action, outcome *string
			require.NoError(t, rows.Scan(&id, &wf, &first, &last, &layers, &events, &mv, &action, &outcome))
			out = append(out, fmt.Sprint(id, wf, first.UnixNano(), last.UnixNano(), layers, events, deref(mv), deref(action), deref(outcome)))
		}
		return out
	}
	wantSummary := summary(one)
	assert.Equal(t, wantSummary, summary(two))
	assert.Equal(t, wantSummary, summary(twice), "the rollup counts a resent event once")

	// Every contract rule's condition, evaluated at one instant on each
	// store, is the same.
	contracts, err := contract.Load(contractFiles(t))
	require.NoError(t, err)
	groups, err := rules.Load(nil, contracts, time.Minute)
	require.NoError(t, err)
	now := time.Now()
	conditions := func(s *store.Store) []string {
		var out []string
		for _, g := range groups {
			for i := range g.Rules {
				r := &g.Rules[i]
				samples, has, err := r.Eval(context.Background(), s.Conn(), s.DB(), now)
				require.NoError(t, err, r.Alert)
				for _, smp := range samples {
					out = append(out, fmt.Sprintf("%s %v %.6f", r.Alert, smp.Labels, smp.Value))
				}
				out = append(out, fmt.Sprintf("%s has data: %v", r.Alert, has))
			}
		}
		sort.Strings(out)
		return out
	}
	wantConditions := conditions(one)
	t.Logf("rule conditions: %s", strings.Join(wantConditions, "; "))
	assert.Equal(t, wantConditions, conditions(two))
	assert.Equal(t, wantConditions, conditions(twice))
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func contractFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "deploy", "contracts", "*.yaml"))
	require.NoError(t, err)
	return files
}
