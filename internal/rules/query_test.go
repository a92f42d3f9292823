package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/decisiontrace/decisiontrace/internal/contract"
)

// A round of the shipped contracts' rules: those that read the same rows
// (the verdict rates of a window, a model's percentiles, an outcome's,
// the shares of the same human actions, an SLO's burn rates) share a
// query; rules of two
// workflows never do, and every other rule has its own.
func TestTogetherOnTheShippedContracts(t *testing.T) {
	contracts, err := contract.Load([]string{"../../deploy/contracts/claims-triage.yaml", "../../deploy/contracts/loan-underwriting.yaml"})
	require.NoError(t, err)
	groups, err := Load(nil, contracts, time.Minute)
	require.NoError(t, err)
	rules, queries := 0, 0
	for _, g := range groups {
		var ruleset []*Rule
		for i := range g.Rules {
			ruleset = append(ruleset, &g.Rules[i])
		}
		var shared []string
		parts := Together(ruleset)
		seen := map[int]bool{}
		for _, part := range parts {
			var names []string
			for _, i := range part {
				assert.False(t, seen[i], "rule %d in two queries", i)
				seen[i] = true
				names = append(names, ruleset[i].Alert)
				assert.Equal(t, ruleset[part[0]].Workflow, ruleset[i].Workflow)
			}
			if len(part) > 1 {
				shared = append(shared, strings.Join(names, " "))
			}
		}
		assert.Len(t, seen, len(ruleset), g.Name)
		want := []string{
			"DecisionUnsupportedCertainty DecisionMissingContext",
			"DecisionModelLatency DecisionInputTokens DecisionOutputTokens",
			"DecisionRecommendationsIgnored DecisionRecommendationsEscalated DecisionRework DecisionExceptions",
			"DecisionCycleTime DecisionOutcomeCost",
		}
		// Each SLO's fast and slow burn: claims-triage has two SLOs.
		for range contracts[strings.TrimPrefix(g.Name, "contract:")].SLOs {
			want = append(want, "DecisionSLOBurnFast DecisionSLOBurnSlow")
		}
		assert.Equal(t, want, shared, g.Name)
		rules += len(ruleset)
		queries += len(parts)
	}
	assert.Equal(t, 54, rules)
	assert.Equal(t, 37, queries)
}

// Rules share a query only when they read the same rows: filters whose
// values differ only in where a space falls are different filters. Shares
// of decisions share one whatever they count, and tell their
// denominators apart in it.
func TestTogetherTellsFilterValuesApart(t *testing.T) {
	share := func(count string, den map[string]any) *Rule {
		return &Rule{Alert: "Bad", Kind: KindRatio, Count: count, Window: contract.Duration(time.Hour), MaxRate: 0.1,
			Workflow: "w", Denominator: den, Numerator: map[string]any{"business.outcome": "reopened"}}
	}
	dens := []map[string]any{
		{"decision.event": "business.outcome", "business.outcome": []any{"paid in", "full"}},
		{"decision.event": "business.outcome", "business.outcome": []any{"paid", "in full"}},
		{"decision.event": "business.outcome", "business.outcome": []any{"paid in", "full"}},
	}
	var events, decisions []*Rule
	for _, den := range dens {
		events = append(events, share(countEvents, den))
		decisions = append(decisions, share(countDecisions, den))
	}
	assert.Equal(t, [][]int{{0, 2}, {1}}, Together(events))
	require.Equal(t, [][]int{{0, 1, 2}}, Together(decisions))
	nums := make([]*ratioSQL, len(decisions))
	for i, r := range decisions {
		nums[i] = r.ratioSQL(ignore)
	}
	got, of := denominators(nums)
	assert.Len(t, got, 2)
	assert.Equal(t, []int{0, 1, 0}, of)
}
