package rules

import (
	"time"

	"github.com/decisiontrace/decisiontrace/internal/contract"
	c "github.com/decisiontrace/decisiontrace/internal/conventions"
)

// sectionDefaults are the rules of the contract sections that answer the
// rest of the essay's nine questions: identity, human trust, outcomes,
// cleanup work and SLOs. with gives a rule the contract's workflow and
// paging labels.
func sectionDefaults(ct *contract.Contract, with func(Rule) Rule) []Rule {
	var out []Rule
	five := contract.Duration(5 * time.Minute)
	ratio := func(alert, summary string, window contract.Duration, max float64, min int, den, num map[string]any) Rule {
		r := with(Rule{Alert: alert, Kind: KindRatio, Count: countDecisions, Window: window, MaxRate: max, MinCount: min,
			Denominator: den, Numerator: num, For: five})
		r.summary = summary
		return r
	}
	if id := ct.Identity; id != nil {
		out = append(out, with(Rule{Alert: "DecisionIdentityUnresolved", Kind: KindUnresolvedEntity, EntitySystems: id.Systems,
			Window: id.Window, MaxRate: id.MaxUnresolved, MinCount: id.MinReads, For: five}))
	}
	if h := ct.Human; h != nil {
		acted := map[string]any{c.DecisionEvent: c.EventHumanAction}
		if h.MaxIgnored > 0 {
			out = append(out, ratio("DecisionRecommendationsIgnored",
				`reviewers ignore {{ printf "%.0f" (mul100 .Value) }}% of {{ .Labels.workflow }} recommendations`,
				h.Window, h.MaxIgnored, h.MinActions, acted, map[string]any{c.HumanAction: c.ActionIgnored}))
		}
		if h.MaxEscalated > 0 {
			out = append(out, ratio("DecisionRecommendationsEscalated",
				`reviewers escalate {{ printf "%.0f" (mul100 .Value) }}% of {{ .Labels.workflow }} recommendations`,
				h.Window, h.MaxEscalated, h.MinActions, acted, map[string]any{c.HumanAction: c.ActionEscalated}))
		}
	}
	if o := ct.Outcomes; o != nil {
		out = append(out, ratio("DecisionBadOutcomes",
			`{{ printf "%.0f" (mul100 .Value) }}% of {{ .Labels.workflow }} outcomes show the recommendation did not help`,
			o.Window, o.MaxBad, o.MinOutcomes, map[string]any{c.DecisionEvent: c.EventBusinessOutcome},
			map[string]any{c.BusinessOutcome: anys(o.Bad)}))
	}
	if cl := ct.Cleanup; cl != nil {
		// A decision's latest signal among its output and its rework (or
		// exception) is the rework when it needed one: it comes after.
		if cl.MaxRework > 0 {
			out = append(out, ratio("DecisionRework",
				`{{ printf "%.0f" (mul100 .Value) }}% of {{ .Labels.workflow }} decisions needed rework`,
				cl.Window, cl.MaxRework, cl.MinDecisions,
				map[string]any{c.DecisionEvent: []any{c.EventModelOutput, c.EventWorkflowRework}},
				map[string]any{c.DecisionEvent: c.EventWorkflowRework}))
		}
		if cl.MaxExceptions > 0 {
			out = append(out, ratio("DecisionExceptions",
				`{{ printf "%.0f" (mul100 .Value) }}% of {{ .Labels.workflow }} decisions raised an exception`,
				cl.Window, cl.MaxExceptions, cl.MinDecisions,
				map[string]any{c.DecisionEvent: []any{c.EventModelOutput, c.EventWorkflowException}},
				map[string]any{c.DecisionEvent: c.EventWorkflowException}))
		}
	}
	for _, s := range ct.SLOs {
		den, num := sliFilters(ct, s.SLI)
		// The SRE workbook's pair: a fast burn (2% of a 30-day budget in
		// an hour) pages, a slow one (5% in six hours) opens a ticket.
		for _, w := range []struct {
			alert, severity string
			long, short     time.Duration
			burn            float64
		}{
			{"DecisionSLOBurnFast", "page", time.Hour, 5 * time.Minute, 14.4},
			{"DecisionSLOBurnSlow", "ticket", 6 * time.Hour, 30 * time.Minute, 6},
		} {
			r := with(Rule{Alert: w.alert, Kind: KindSLOBurnRate, Objective: s.Objective, BurnRate: w.burn, Count: countDecisions,
				LongWindow: contract.Duration(w.long), ShortWindow: contract.Duration(w.short), MinCount: 10,
				Denominator: den, Numerator: num})
			r.Labels["slo"] = s.Name
			r.Labels["severity"] = w.severity
			r.summary = `{{ .Labels.workflow }} burns the error budget of SLO {{ .Labels.slo }} {{ printf "%.1f" .Value }} times as fast as it allows`
			out = append(out, r)
		}
	}
	return out
}

// sliFilters is what an SLI counts and which of it is bad.
func sliFilters(ct *contract.Contract, sli string) (den, num map[string]any) {
	switch sli {
	case contract.SLIAccepted:
		return map[string]any{c.DecisionEvent: c.EventHumanAction}, map[string]any{c.HumanAction: []any{c.ActionOverridden, c.ActionIgnored}}
	case contract.SLIGoodOutcome:
		return map[string]any{c.DecisionEvent: c.EventBusinessOutcome}, map[string]any{c.BusinessOutcome: anys(ct.Outcomes.Bad)}
	}
	return map[string]any{c.DecisionEvent: c.EventModelOutput}, map[string]any{c.ModelUnsafe: true}
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
