package rules

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/decisiontrace/decisiontrace/internal/contract"
	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/storetest"
)

// sectionsContract answers all nine questions; its sections' limits sit
// between what the scenario's "bad" and "good" workflows do.
const sectionsContract = `workflow: %s
owner: claims-platform
paging: {team: claims-oncall, severity: page}
sources:
  required:
    - {name: policy-db, max_age: 90s, on_stale: escalate, on_missing: abstain}
confidence_floor: 0.7
on_low_confidence: escalate
data: {max_incomplete: 0.1, max_unavailable: 0.1, window: 1h, min_reads: 10}
model: {max_unsafe: 0.1, max_latency: 2s, max_input_tokens: 2000, max_output_tokens: 2000, window: 1h, min_outputs: 10}
identity: {systems: [crm], max_unresolved: 0.1, window: 15m, min_reads: 10}
escalation: {to: claims-supervisors, authority: [override, pause_workflow], within: 30m}
human: {max_ignored: 0.1, max_escalated: 0.1, max_time_to_action: 10m, window: 1h, min_actions: 10}
outcomes: {good: [paid], bad: [reopened, disputed], max_bad: 0.1, max_decision_latency: 15m, max_cycle_time: 6h, max_cost: 100,
  window: 1h, min_outcomes: 10}
cleanup: {max_rework: 0.1, max_exceptions: 0.1, window: 1h, min_decisions: 10}
slos:
  - {name: accepted, sli: accepted_recommendations, objective: 0.99}
governance: {owner: model-risk, review: quarterly}
`

// sectionsScenario: 20 decisions of workflow wf, each with an output, a
// crm read, a human action and an outcome in the last 5 minutes; the first
// bad of them are unresolved, ignored, escalated, reworked, raise an
// exception, end disputed and were recommended 40 minutes ago; their
// crm reads are incomplete and unavailable, their outputs unsafe, slow
// and long, their cases slow and costly.
func sectionsScenario(t *testing.T, s *store, wf string, bad int) {
	var evs []storetest.Event
	add := func(ago time.Duration, attrs map[string]any) {
		attrs[c.DecisionWorkflow] = wf
		evs = append(evs, storetest.Event{At: t0.Add(-ago), Attrs: attrs})
	}
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("%s-%d", wf, i)
		b := i < bad
		action, outcome := c.ActionAccepted, "paid"
		if b {
			action, outcome = c.ActionIgnored, "disputed"
			if i%2 == 1 {
				action = c.ActionEscalated
			}
		}
		// A bad decision's recommendation waited 36 minutes for its
		// action (a good one's a minute) and 38 for its outcome (3).
		decided := 5 * time.Minute
		if b {
			decided = 40 * time.Minute
		}
		latency, tokens, cycle, cost := 300.0, int64(500), 600.0, 5.0
		if b {
			latency, tokens, cycle, cost = 9000, 5000, 50000, 500
		}
		add(decided, map[string]any{c.DecisionID: id, c.DecisionLayer: "model", c.DecisionEvent: "model.output", c.ModelConfidence: 0.9,
			c.ModelVersion: "v1", c.ModelUnsafe: b, c.ModelLatencyMS: latency, c.GenAIUsageInputTokens: tokens, c.GenAIUsageOutputTokens: tokens})
		add(5*time.Minute+time.Second, map[string]any{c.DecisionID: id, c.DecisionLayer: "data", c.DecisionEvent: "context.read",
			c.DataSource: "crm-profile", c.DataEntitySystem: "crm", c.DataEntityID: id, c.DataEntityResolved: !b,
			c.DataComplete: !b, c.DataAvailable: !b})
		// Another system's reads fail too, but the contract does not list it.
		add(5*time.Minute+time.Second, map[string]any{c.DecisionID: id, c.DecisionLayer: "data", c.DecisionEvent: "context.read",
			c.DataSource: "legacy", c.DataEntitySystem: "legacy-erp", c.DataEntityID: id, c.DataEntityResolved: false})
		add(4*time.Minute, map[string]any{c.DecisionID: id, c.DecisionLayer: "human", c.DecisionEvent: "human.action", c.HumanAction: action})
		add(2*time.Minute, map[string]any{c.DecisionID: id, c.DecisionLayer: "business", c.DecisionEvent: "business.outcome", c.BusinessOutcome: outcome,
			c.BusinessCycleTimeS: cycle, c.BusinessCost: cost})
		if b {
			add(3*time.Minute, map[string]any{c.DecisionID: id, c.DecisionLayer: "workflow", c.DecisionEvent: "workflow.rework"})
			add(3*time.Minute, map[string]any{c.DecisionID: id, c.DecisionLayer: "workflow", c.DecisionEvent: "workflow.exception",
				c.WorkflowExceptionType: "manual-validation"})
		}
	}
	s.WriteEvents(t, evs...)
}

// Each section's default rule pages for the workflow that breaks its limit
// (8 of 20 decisions bad: 40%; 4 ignored and 4 escalated) and not for the
// one within it (1 of 20), with the contract's paging labels.
func TestIntegrationContractSectionsPage(t *testing.T) {
	s := newStore(t)
	sectionsScenario(t, s, "breaks", 8)
	sectionsScenario(t, s, "keeps", 1)

	fired := map[string][]string{}
	for _, wf := range []string{"breaks", "keeps"} {
		ct, err := contract.Parse(wf+".yaml", []byte(fmt.Sprintf(sectionsContract, wf)))
		require.NoError(t, err)
		rs, err := Defaults(ct)
		require.NoError(t, err)
		for _, r := range rs {
			switch r.Kind {
			case KindUnresolvedEntity, KindRatio, KindSLOBurnRate, KindInterval, KindQuantile:
			default:
				continue // the other defaults have tests of their own
			}
			for _, smp := range s.run(t, r) {
				assert.Equal(t, "claims-oncall", smp.Labels["team"])
				name := r.Alert
				if slo := smp.Labels["slo"]; slo != "" {
					name += "/" + slo + "/" + smp.Labels["severity"]
				}
				if sys := smp.Labels["entity_system"]; sys != "" {
					name += "/" + sys
				}
				if src := smp.Labels["source"]; src != "" {
					name += "/" + src
				}
				fired[wf] = append(fired[wf], fmt.Sprintf("%s=%.2f", name, smp.Value))
			}
		}
		sort.Strings(fired[wf])
	}
	assert.Equal(t, []string{
		"DecisionBadOutcomes=0.40",
		"DecisionCycleTime=50000.00",
		"DecisionExceptions=0.40",
		"DecisionIdentityUnresolved/crm=0.40",
		"DecisionIncompleteContext/crm-profile=0.40",
		"DecisionInputTokens=5000.00",
		// The 95th percentile of 20 decisions, 8 of them slow.
		"DecisionLatency=2280.00",
		"DecisionModelLatency=9000.00",
		"DecisionOutcomeCost=500.00",
		"DecisionOutputTokens=5000.00",
		"DecisionRecommendationsEscalated=0.20",
		"DecisionRecommendationsIgnored=0.20",
		"DecisionRework=0.40",
		// 20% of decisions acted on ignored (half of the bad ones; the
		// other half escalated) against a 1% budget: 20 times the pace,
		// over both windows of each pair.
		"DecisionSLOBurnFast/accepted/page=20.00",
		"DecisionSLOBurnSlow/accepted/ticket=20.00",
		"DecisionSourceUnavailable/crm-profile=0.40",
		"DecisionTimeToAction=2160.00",
		"DecisionUnsafeOutputs=0.40",
	}, fired["breaks"], "legacy-erp fails too, but the contract lists only crm")
	assert.Empty(t, fired["keeps"])
}
