package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/decisiontrace/decisiontrace/internal/contract"
	"github.com/decisiontrace/decisiontrace/internal/storetest"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
)

// sloRule is a decision SLO on unsafe outputs (99% safe) with the SRE
// workbook's windows: 1h and 5m at 14.4 pages, 6h and 30m at 6 opens a
// ticket.
func sloRule(alert string, long, short time.Duration, burn float64) Rule {
	return Rule{Alert: alert, Kind: KindSLOBurnRate, Objective: 0.99, Count: "decisions", MinCount: 10,
		Denominator: map[string]any{"decision.event": "model.output"}, Numerator: map[string]any{"model.unsafe": true},
		LongWindow: contract.Duration(long), ShortWindow: contract.Duration(short), BurnRate: burn}
}

// A decision every 30 s for seven hours in three workflows: "fast" turns
// every output unsafe 10 minutes before t0 (an outage), "slow" has 8% of
// its outputs unsafe all along (the budget gone in under four days),
// "spike" had two minutes of unsafe outputs 40 minutes before t0. After t0
// every output is safe.
func sloScenario(t *testing.T, s *store) {
	var evs []storetest.Event
	for i := 0; i < 7*120+12; i++ {
		at := t0.Add(-7 * time.Hour).Add(time.Duration(i) * 30 * time.Second)
		for _, wf := range []string{"fast", "slow", "spike"} {
			unsafe := false
			switch wf {
			case "fast":
				unsafe = !at.Before(t0.Add(-10*time.Minute)) && at.Before(t0)
			case "slow":
				unsafe = i%25 < 2 && at.Before(t0)
			case "spike":
				unsafe = !at.Before(t0.Add(-40*time.Minute)) && at.Before(t0.Add(-38*time.Minute))
			}
			evs = append(evs, storetest.Event{At: at, Attrs: map[string]any{c.DecisionID: fmt.Sprintf("%s-%d", wf, i), c.DecisionWorkflow: wf,
				c.DecisionLayer: "model", c.DecisionEvent: "model.output", c.ModelUnsafe: unsafe}})
		}
	}
	s.WriteEvents(t, evs...)
}

func burning(t *testing.T, s *store, r Rule, at time.Time) map[string]float64 {
	t.Helper()
	return valuesBy(s.runAt(t, r, at), "workflow")
}

// The multiwindow burn-rate alert, as the SRE workbook has it: a fast burn
// pages within minutes and stops paging minutes after it ends; a slow burn
// that would exhaust the budget in days opens a ticket, not a page; a brief
// spike that burns little pages nobody.
func TestIntegrationSLOBurnRate(t *testing.T) {
	s := newStore(t)
	sloScenario(t, s)
	page := sloRule("SLOPage", time.Hour, 5*time.Minute, 14.4)
	ticket := sloRule("SLOTicket", 6*time.Hour, 30*time.Minute, 6)

	// Five minutes into the outage the last hour is 8% bad: not yet.
	assert.Empty(t, burning(t, s, page, t0.Add(-5*time.Minute)))
	// Ten minutes in, 20 of the hour's 121 decisions (both ends of the
	// window included) are bad: a burn rate of 16.5 over the hour, and the
	// last 5 minutes burn too.
	got := burning(t, s, page, t0)
	assert.Equal(t, []string{"fast"}, keys(got), "only the outage pages")
	assert.InDelta(t, 20.0/121/0.01, got["fast"], 1e-6)
	assert.Equal(t, []string{"slow"}, keys(burning(t, s, ticket, t0)), "the slow burn (8%, 8 times the pace) is a ticket")
	// The outage ended at t0: six minutes later the short window is clean
	// and the page resolves, though the hour still holds the burn.
	assert.Empty(t, burning(t, s, page, t0.Add(6*time.Minute)))

	// Every burn stored twice changes no number: decisions are counted
	// once, by their latest output.
	twice := newStore(t)
	sloScenario(t, twice)
	sloScenario(t, twice)
	assert.Equal(t, got, burning(t, twice, page, t0))
}

// A workflow's fast and slow burn rates of one SLI are one query over the
// longer window, which gives each what its own gives: three hours after
// the last decision the hour holds nothing (the page has no data) while
// six hours do.
func TestIntegrationSLOBurnRatesOfOneSLIShareAQuery(t *testing.T) {
	s := newStore(t)
	sloScenario(t, s)
	for _, wf := range []string{"fast", "slow", "spike"} {
		page := sloRule("SLOPage", time.Hour, 5*time.Minute, 14.4)
		ticket := sloRule("SLOTicket", 6*time.Hour, 30*time.Minute, 6)
		page.Workflow, ticket.Workflow = wf, wf
		ruleset := []*Rule{&page, &ticket}
		require.Equal(t, [][]int{{0, 1}}, Together(ruleset))
		for _, at := range []time.Time{t0.Add(-5 * time.Minute), t0, t0.Add(6 * time.Minute), t0.Add(3 * time.Hour)} {
			results := EvalAll(t.Context(), s.Conn, s.DB, at, ruleset, 1, time.Minute)
			for i, r := range ruleset {
				samples, has, err := r.Eval(t.Context(), s.Conn, s.DB, at)
				require.NoError(t, err)
				require.NoError(t, results[i].Err)
				assert.Equal(t, has, results[i].HasData, "%s %s at %s", wf, r.Alert, at)
				assert.ElementsMatch(t, samples, results[i].Samples, "%s %s at %s", wf, r.Alert, at)
			}
			if at.Equal(t0.Add(3 * time.Hour)) {
				assert.False(t, results[0].HasData, "nothing in the last hour")
				assert.True(t, results[1].HasData, "six hours hold the day's decisions")
			}
		}
	}
	// Burn rates by another label (a unit's label may come from a signal
	// outside a shorter window) or of every workflow are queries of their
	// own.
	byModel := sloRule("SLOPage", time.Hour, 5*time.Minute, 14.4)
	byModel.Workflow, byModel.By = "fast", []string{c.ModelVersion}
	anyWorkflow := sloRule("SLOTicket", 6*time.Hour, 30*time.Minute, 6)
	assert.Equal(t, [][]int{{0}, {1}}, Together([]*Rule{&byModel, &anyWorkflow}))
}

// A burn rate with nothing to judge while its workflow decides has no
// data (DecisionRuleNoData), not an idle workflow: its idleness looks back
// its long window, the only window it has.
func TestIntegrationSLOBurnRateWithoutDataIsNotIdleWhileItsWorkflowDecides(t *testing.T) {
	s := newStore(t)
	sloScenario(t, s)
	r := sloRule("SLOAccepted", time.Hour, 5*time.Minute, 14.4)
	r.Workflow = "fast"
	r.Denominator, r.Numerator = map[string]any{c.DecisionEvent: c.EventHumanAction}, map[string]any{c.HumanAction: c.ActionOverridden}
	require.Empty(t, r.validate())
	// Between two of its outputs (every 30 s).
	res := EvalAll(t.Context(), s.Conn, s.DB, t0.Add(-10*time.Second), []*Rule{&r}, 1, time.Minute)
	require.NoError(t, res[0].Err)
	assert.False(t, res[0].HasData, "no human actions")
	assert.False(t, res[0].Idle, "fast decided all hour")
	res = EvalAll(t.Context(), s.Conn, s.DB, t0.Add(2*time.Hour), []*Rule{&r}, 1, time.Minute)
	require.NoError(t, res[0].Err)
	assert.True(t, res[0].Idle, "no decision in the last hour")
}

func keys(m map[string]float64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestSLOBurnRateSettings(t *testing.T) {
	r := Rule{Alert: "S", Kind: KindSLOBurnRate, Objective: 1, Count: "decisions", Window: contract.Duration(time.Hour),
		Denominator: map[string]any{"decision.event": "model.output"}, Numerator: map[string]any{"model.unsafe": true},
		LongWindow: contract.Duration(time.Minute), ShortWindow: contract.Duration(time.Hour)}
	var msgs []string
	for _, err := range r.validate() {
		msgs = append(msgs, err.Error())
	}
	assert.Equal(t, []string{
		"objective: 1 is outside (0, 1): the share of good decisions or events, e.g. 0.99",
		"burn_rate: must be positive, got 0 (the workbook's 14.4 pages, 6 opens a ticket)",
		"short_window: required, positive and shorter than long_window",
		"window: an slo_burn_rate rule has long_window and short_window, and its rate follows from objective and burn_rate",
	}, msgs)
}
