package alertrulesreceiver

import (
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/decisiontrace/decisiontrace/internal/amtest"
	c "github.com/decisiontrace/decisiontrace/internal/conventions"
)

// One page per cause, read where on-call sees it: the notifications a real
// Alertmanager sends to its webhook, for alerts evaluated on a virtual
// clock against the real ClickHouse.

// cutter is a TCP proxy in front of ClickHouse that can be cut, as a
// stopped server or a broken network is to the evaluator: open
// connections are closed and new ones refused.
type cutter struct {
	target string
	ln     net.Listener
	addr   string

	mu    sync.Mutex
	conns []net.Conn
}

func newCutter(t *testing.T, target string) *cutter {
	t.Helper()
	k := &cutter{target: target}
	k.listen(t, "127.0.0.1:0")
	t.Cleanup(k.cut)
	return k
}

func (k *cutter) listen(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	k.mu.Lock()
	k.ln, k.addr = ln, ln.Addr().String()
	k.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", k.target)
			if err != nil {
				_ = in.Close()
				continue
			}
			k.mu.Lock()
			k.conns = append(k.conns, in, out)
			k.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
}

// cut closes the listener and every connection through it.
func (k *cutter) cut() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ln != nil {
		_ = k.ln.Close()
		k.ln = nil
	}
	for _, c := range k.conns {
		_ = c.Close()
	}
	k.conns = nil
}

// restore listens again on the same address.
func (k *cutter) restore(t *testing.T) { k.listen(t, k.addr) }

// statuses are the notification states of alertname, in order.
func statuses(t *testing.T, hook *amtest.Webhook, alertname string) []string {
	var out []string
	for _, n := range hook.Notifications(t, alertname) {
		out = append(out, n.Status)
	}
	return out
}

// settle gives Alertmanager (group_interval 1s) time to notify what it has.
func settle() { time.Sleep(3 * time.Second) }

const deepQueueRule = `
groups:
  - name: queues
    interval: 1m
    rules:
      - alert: ReviewQueueDeep
        kind: queue_depth
        workflow: claims-triage
        max_depth: 400
        for: 1m
        labels: {severity: page, team: claims-oncall}
        annotations:
          summary: 'manual review holds {{ printf "%.0f" .Value }} claims'
`

// queueAt stores a queue.depth of manual-review at each minute of ticks.
func (r *rig) queueAt(t *testing.T, depth int64, ticks ...time.Time) {
	t.Helper()
	var evs []event
	for _, at := range ticks {
		evs = append(evs, event{at: at.Add(-10 * time.Second), attrs: map[string]any{c.DecisionLayer: "workflow",
			c.DecisionEvent: "queue.depth", c.WorkflowQueue: "manual-review", c.WorkflowQueueDepth: depth}})
	}
	r.write(t, "claims-triage", evs)
}

// The store stopped for 5 minutes: one DecisionStoreUnavailable page
// within 3 minutes, resolved once it is back; no rule-failing alerts, and
// the alert that fired before the outage is neither resolved nor paged
// again.
func TestIntegrationStoreDownPagesOnceAndNothingElse(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	am, hook := amtest.StartNotifying(t)
	proxy := newCutter(t, r.Addr)

	base := time.Now().UTC().Truncate(time.Minute).Add(-3 * time.Hour)
	tick := func(k int) time.Time { return base.Add(time.Duration(k) * time.Minute) }
	var all []time.Time
	for k := 0; k <= 16; k++ {
		all = append(all, tick(k))
	}
	r.queueAt(t, 450, all...)

	var now time.Time
	cfg := r.config(t, deepQueueRule)
	cfg.Endpoint = "clickhouse://" + proxy.addr
	cfg.QueryTimeout = 3 * time.Second
	p := r.pagerWith(t, cfg, am.URL(), func() time.Time { return now })
	eval := func(k int) {
		now = tick(k)
		for _, g := range p.rcv.groups {
			p.rcv.evalGroup(context.Background(), g)
		}
	}
	for k := 0; k <= 3; k++ {
		eval(k)
	}
	settle()
	require.Equal(t, []string{"firing"}, statuses(t, hook, "ReviewQueueDeep"), "the queue pages before the outage")

	// ClickHouse unreachable from minute 4 to minute 9.
	proxy.cut()
	for k := 4; k <= 9; k++ {
		eval(k)
		if k == 6 {
			// Two minutes after the first round that could not reach it.
			settle()
			assert.Equal(t, []string{"firing"}, statuses(t, hook, storeUnavailableAlert), "paged within 3 minutes of the outage")
		}
	}
	proxy.restore(t)
	for k := 10; k <= 16; k++ {
		eval(k)
	}
	settle()

	assert.Equal(t, []string{"firing", "resolved"}, statuses(t, hook, storeUnavailableAlert), "one page, one resolve")
	n := hook.Notifications(t, storeUnavailableAlert)
	assert.Equal(t, map[string]string{"alertname": storeUnavailableAlert, "severity": "page", "database": r.DB}, n[0].Labels)
	assert.True(t, tick(6).Equal(n[0].StartsAt), "fired at minute 6, got %s", n[0].StartsAt)
	assert.Empty(t, statuses(t, hook, ruleFailingAlert), "the store down is one cause, not one per rule")
	assert.Empty(t, statuses(t, hook, ruleNoDataAlert))
	assert.Equal(t, []string{"firing"}, statuses(t, hook, "ReviewQueueDeep"), "no spurious resolve, no second page")
	// The outage is in the history (Grafana's annotations), at its times,
	// written once the store was back.
	rows, err := r.Conn.Query(context.Background(), "SELECT time, state FROM "+r.DB+".alert_history WHERE alertname = ? ORDER BY time", storeUnavailableAlert)
	require.NoError(t, err)
	var hist []string
	for rows.Next() {
		var at time.Time
		var state string
		require.NoError(t, rows.Scan(&at, &state))
		hist = append(hist, at.UTC().Format("15:04")+" "+state)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{tick(4).Format("15:04") + " pending", tick(6).Format("15:04") + " firing", tick(10).Format("15:04") + " resolved"}, hist)
	active, err := am.Alerts("alertname=ReviewQueueDeep")
	require.NoError(t, err)
	require.Len(t, active, 1, "still firing after the outage")
	assert.Equal(t, "manual review holds 450 claims", active[0].Annotations["summary"])
}

// Two workflows whose rules have no data: two no-data alerts, one per
// workflow, each resolving on its own when its signals come back.
func TestIntegrationNoDataPerWorkflowResolvesOnItsOwn(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	am, hook := amtest.StartNotifying(t)
	base := time.Now().UTC().Truncate(time.Minute).Add(-3 * time.Hour)
	tick := func(k int) time.Time { return base.Add(time.Duration(k) * time.Minute) }

	rules := `
groups:
  - name: overrides
    interval: 1m
    rules:
      - alert: Overrides
        kind: override_rate
        workflow: wf-a
        window: 5m
        max_rate: 0.5
        labels: {workflow: wf-a, severity: page, team: a}
      - alert: Overrides
        kind: override_rate
        workflow: wf-b
        window: 5m
        max_rate: 0.5
        labels: {workflow: wf-b, severity: page, team: b}
`
	// Both workflows decide all along; their reviewers do not act, until
	// wf-a's act again from minute 14 on.
	for _, wf := range []string{"wf-a", "wf-b"} {
		var outs []event
		for k := -5; k <= 20; k++ {
			outs = append(outs, event{at: tick(k).Add(-30 * time.Second), attrs: map[string]any{c.DecisionID: wf + "-" + tick(k).Format("1504"),
				c.DecisionLayer: "model", c.DecisionEvent: "model.output", c.ModelConfidence: 0.9}})
		}
		r.write(t, wf, outs)
	}
	var acts []event
	for k := 14; k <= 20; k++ {
		acts = append(acts, event{at: tick(k).Add(-20 * time.Second), attrs: map[string]any{c.DecisionID: "a-" + tick(k).Format("1504"),
			c.DecisionLayer: "human", c.DecisionEvent: "human.action", c.HumanAction: "accepted"}})
	}
	r.write(t, "wf-a", acts)

	var now time.Time
	p := r.pager(t, rules, am.URL(), func() time.Time { return now })
	for k := 0; k <= 20; k++ {
		now = tick(k)
		p.eval(t)
		if k == 12 {
			settle()
			var wfs []string
			for _, n := range hook.Notifications(t, ruleNoDataAlert) {
				assert.Equal(t, "firing", n.Status)
				assert.Equal(t, "Overrides", n.Labels["rule"])
				assert.Equal(t, "ticket", n.Labels["severity"])
				wfs = append(wfs, n.Labels["workflow"])
			}
			sort.Strings(wfs)
			assert.Equal(t, []string{"wf-a", "wf-b"}, wfs, "one no-data alert per workflow, after 10 minutes")
		}
	}
	settle()
	byWorkflow := map[string][]string{}
	for _, n := range hook.Notifications(t, ruleNoDataAlert) {
		byWorkflow[n.Labels["workflow"]] = append(byWorkflow[n.Labels["workflow"]], n.Status)
	}
	assert.Equal(t, map[string][]string{"wf-a": {"firing", "resolved"}, "wf-b": {"firing"}}, byWorkflow)
	active, err := am.Alerts("alertname=" + ruleNoDataAlert)
	require.NoError(t, err)
	require.Len(t, active, 1)
	assert.Equal(t, "wf-b", active[0].Labels["workflow"])
}

// A firing alert whose value changes goes out again with the summary of
// now, and a restart keeps it.
func TestIntegrationFiringAlertCarriesTheCurrentSummary(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	am, hook := amtest.StartNotifying(t)
	base := time.Now().UTC().Truncate(time.Minute).Add(-3 * time.Hour)
	tick := func(k int) time.Time { return base.Add(time.Duration(k) * time.Minute) }
	r.queueAt(t, 450, tick(0), tick(1), tick(2))
	r.queueAt(t, 600, tick(3), tick(4), tick(5), tick(6))

	summary := func() string {
		active, err := am.Alerts("alertname=ReviewQueueDeep")
		require.NoError(t, err)
		require.Len(t, active, 1)
		return active[0].Annotations["summary"]
	}
	var now time.Time
	clock := func() time.Time { return now }
	p := r.pager(t, deepQueueRule, am.URL(), clock)
	for k := 0; k <= 2; k++ {
		now = tick(k)
		p.eval(t)
	}
	assert.Equal(t, "manual review holds 450 claims", summary())
	now = tick(3)
	p.eval(t)
	assert.Equal(t, "manual review holds 600 claims", summary(), "re-sent with the value of now")

	p.stop(t)
	p = r.pager(t, deepQueueRule, am.URL(), clock)
	now = tick(4)
	p.eval(t)
	assert.Equal(t, "manual review holds 600 claims", summary(), "after a restart too")
	settle()
	assert.Equal(t, []string{"firing"}, statuses(t, hook, "ReviewQueueDeep"), "a new summary is not a new page")
	var n uint64
	require.NoError(t, r.Conn.QueryRow(context.Background(), "SELECT count() FROM "+r.DB+".alert_history WHERE alertname = 'ReviewQueueDeep'").Scan(&n))
	assert.Equal(t, uint64(2), n, "history holds state changes only: pending and firing")
}

// A workflow scaled to zero for an hour, with the shipped contract's
// default rules: one notification (DecisionWorkflowSilent, a ticket) and
// its resolve when decisions resume; nothing for its sources, layers or
// rules without data. Its traffic carries every signal the contract's
// rules read (a rule whose signals never come is a ticket of its own,
// DecisionRuleNoData). Reviewers act 8 minutes after each decision, so on
// resume the human layer trails the first decisions for 8 minutes, and
// trailed them by the hour's pause had its silence been counted from its
// last action before it.
func TestIntegrationNightPauseIsOneAlert(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	am, hook := amtest.StartNotifying(t)
	base := time.Now().UTC().Truncate(time.Minute).Add(-3 * time.Hour)
	tick := func(k int) time.Time { return base.Add(time.Duration(k) * time.Minute) }

	// Every layer of a decision every 30 s, from minute 0 to 20 and from
	// 80 to 100; nothing in between.
	var evs []event
	n := 0
	for _, span := range [][2]int{{0, 20}, {80, 100}} {
		for at := tick(span[0]); !at.After(tick(span[1])); at = at.Add(30 * time.Second) {
			n++
			id := fmt.Sprintf("claim-%d", n)
			for _, attrs := range []map[string]any{
				// Its policy ID resolved, as the decision processor's alias
				// maps judge it (the contract's identity section reads that),
				// the read complete and available (its data section's).
				{c.DecisionLayer: "data", c.DecisionEvent: "context.read", c.DataSource: "policy-db", c.DataAsOf: at.Add(-30 * time.Second).Format(time.RFC3339Nano),
					c.DataEntitySystem: "policy-admin", c.DataEntityID: fmt.Sprint("POL-", n), c.DataEntityResolved: true,
					c.DataComplete: true, c.DataAvailable: true},
				{c.DecisionLayer: "data", c.DecisionEvent: "context.read", c.DataSource: "claims-history", c.DataAsOf: at.Add(-5 * time.Minute).Format(time.RFC3339Nano)},
				{c.DecisionLayer: "model", c.DecisionEvent: "model.output", c.ModelName: "triage", c.ModelVersion: "v3", c.ModelConfidence: 0.9},
				{c.DecisionLayer: "workflow", c.DecisionEvent: "workflow.routed", c.WorkflowRoute: "auto"},
				{c.DecisionLayer: "workflow", c.DecisionEvent: "queue.depth", c.WorkflowQueue: "manual-review", c.WorkflowQueueDepth: int64(40)},
				{c.DecisionLayer: "human", c.DecisionEvent: "human.action", c.HumanAction: "accepted"},
				{c.DecisionLayer: "business", c.DecisionEvent: "business.outcome", c.BusinessOutcome: "paid"},
			} {
				attrs[c.DecisionID] = id
				when := at
				if attrs[c.DecisionLayer] == "human" {
					when = at.Add(8 * time.Minute)
				}
				evs = append(evs, event{at: when, attrs: attrs})
			}
		}
	}
	r.write(t, "claims-triage", evs)

	cfg := r.config(t, "groups:\n  - name: none\n    interval: 1m\n    rules: []\n")
	cfg.Contracts = []string{"../../deploy/contracts/claims-triage.yaml"}
	cfg.ContractRulesInterval = time.Minute
	var now time.Time
	p := r.pagerWith(t, cfg, am.URL(), func() time.Time { return now })
	for k := 0; k <= 105; k++ {
		now = tick(k)
		p.eval(t)
	}
	settle()
	var got []string
	for _, n := range hook.Notifications(t, "") {
		got = append(got, n.Labels["alertname"]+" "+n.Status)
	}
	assert.Equal(t, []string{"DecisionWorkflowSilent firing", "DecisionWorkflowSilent resolved"}, got)
	fired := hook.Notifications(t, "DecisionWorkflowSilent")
	require.NotEmpty(t, fired)
	assert.Equal(t, map[string]string{"alertname": "DecisionWorkflowSilent", "workflow": "claims-triage", "team": "claims-oncall", "severity": "ticket"}, fired[0].Labels)
	// Over 30 minutes after the last decision (minute 20) from minute 51,
	// then `for: 1m`.
	assert.True(t, tick(52).Equal(fired[0].StartsAt), "fired at minute 52, got %s", fired[0].StartsAt)
	assert.Equal(t, "claims-triage has made no decision since "+tick(20).Format(time.RFC3339)+" (1920s)", fired[0].Annotations["summary"])
}

// State the evaluator cannot place (a rule removed, or its own alerts
// under the keys of an earlier release, shared by every workflow) is
// deleted at start rather than listed forever.
func TestIntegrationStateOfRulesThatNoLongerExistIsDeleted(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	am := amtest.Start(t)
	ctx := context.Background()
	p := r.pager(t, deepQueueRule, am.URL(), time.Now)
	p.stop(t)
	old := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	for _, key := range []string{"DecisionRuleNoData,rule=ReviewQueueDeep", "RemovedRule,workflow=claims-triage"} {
		require.NoError(t, r.Conn.Exec(ctx, "INSERT INTO "+r.DB+`.alert_state
(rule_key, fingerprint, labels, state, value, active_at, fired_at, resolved_at, keep_firing_since, updated_at, is_deleted)
VALUES (?, 42, map('alertname', 'x'), 'pending', 1, ?, ?, ?, ?, ?, 0)`, key, old, time.Time{}, time.Time{}, time.Time{}, old))
	}
	p = r.pager(t, deepQueueRule, am.URL(), time.Now)
	var n uint64
	require.NoError(t, r.Conn.QueryRow(ctx, "SELECT count() FROM "+r.DB+".alert_state FINAL WHERE is_deleted = 0").Scan(&n))
	assert.Zero(t, n, "no state left of rules the evaluator does not have")
}
