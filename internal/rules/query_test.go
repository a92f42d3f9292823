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
			"DecisionRecommendationsIgnored DecisionRecommendationsEscalated",
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
	assert.Equal(t, 41, queries)
}

// Rules share a query only when they read the same rows: filters whose
// values differ only in where a space falls are different filters.
func TestTogetherTellsFilterValuesApart(t *testing.T) {
	share := func(den map[string]any) *Rule {
		return &Rule{Alert: "Bad", Kind: KindRatio, Count: countDecisions, Window: contract.Duration(time.Hour), MaxRate: 0.1,
			Workflow: "w", Denominator: den, Numerator: map[string]any{"business.outcome": "reopened"}}
	}
	a := share(map[string]any{"decision.event": "business.outcome", "business.outcome": []any{"paid in", "full"}})
	b := share(map[string]any{"decision.event": "business.outcome", "business.outcome": []any{"paid", "in full"}})
	c := share(map[string]any{"decision.event": "business.outcome", "business.outcome": []any{"paid in", "full"}})
	assert.Equal(t, [][]int{{0, 2}, {1}}, Together([]*Rule{a, b, c}))
}
