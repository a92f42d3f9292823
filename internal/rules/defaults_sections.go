package rules

import (
	"time"

	"github.com/decisiontrace/decisiontrace/internal/contract"
	c "github.com/decisiontrace/decisiontrace/internal/conventions"
)

// sectionDefaults are the rules of the contract sections that answer the
// rest of the essay's nine questions: data, model, identity, human trust,
// outcomes, cleanup work and SLOs. with gives a rule the contract's
// workflow and paging labels.
func sectionDefaults(ct *contract.Contract, with func(Rule) Rule) []Rule {
	var out []Rule
	five := contract.Duration(5 * time.Minute)
	ratio := func(alert, summary string, window contract.Duration, max float64, min int, den, num map[string]any) Rule {
		r := with(Rule{Alert: alert, Kind: KindRatio, Count: countDecisions, Window: window, MaxRate: max, MinCount: min,
			Denominator: den, Numerator: num, For: five})
		r.summary = summary
		return r
	}
	// Per model version, from the decision's output when the counted
	// signals (human actions, rework) carry none.
	byModel := func(r Rule) Rule {
		r.By = []string{c.ModelVersion}
		return r
	}
	// The 95th percentile of a numeric convention of the signals den
	// selects, each stored event once.
	quantile := func(alert, summary string, window contract.Duration, max float64, min int, value string, den map[string]any, by ...string) Rule {
		r := with(Rule{Alert: alert, Kind: KindQuantile, Value: value, Quantile: 0.95, Max: max, Window: window, MinCount: min,
			Denominator: den, By: by, For: five})
		r.summary = summary
		return r
	}
	if d := ct.Data; d != nil {
		// Each read (and poll) once, per source.
		perSource := func(alert, summary string, max float64, den, num map[string]any) Rule {
			r := ratio(alert, summary, d.Window, max, d.MinReads, den, num)
			r.Count, r.By = countEvents, []string{c.DataSource}
			return r
		}
		if d.MaxIncomplete > 0 {
			out = append(out, perSource("DecisionIncompleteContext",
				`{{ printf "%.0f" (mul100 .Value) }}% of {{ .Labels.workflow }} reads of {{ .Labels.source }} are incomplete`, d.MaxIncomplete,
				map[string]any{c.DecisionEvent: c.EventContextRead, c.DataComplete: []any{true, false}}, map[string]any{c.DataComplete: false}))
		}
		if d.MaxUnavailable > 0 {
			out = append(out, perSource("DecisionSourceUnavailable",
				`{{ printf "%.0f" (mul100 .Value) }}% of {{ .Labels.workflow }} reads and polls of {{ .Labels.source }} found it unavailable`, d.MaxUnavailable,
				map[string]any{c.DecisionEvent: []any{c.EventContextRead, c.EventSourceFreshness}, c.DataAvailable: []any{true, false}},
				map[string]any{c.DataAvailable: false}))
		}
	}
	if m := ct.Model; m != nil {
		outputs := map[string]any{c.DecisionEvent: c.EventModelOutput}
		if m.MaxUnsafe > 0 {
			out = append(out, byModel(ratio("DecisionUnsafeOutputs",
				`{{ printf "%.1f" (mul100 .Value) }}% of {{ .Labels.workflow }} model {{ .Labels.model_version }} outputs are unsafe`,
				m.Window, m.MaxUnsafe, m.MinOutputs, outputs, map[string]any{c.ModelUnsafe: true})))
		}
		if m.MaxLatency > 0 {
			out = append(out, quantile("DecisionModelLatency",
				`{{ .Labels.workflow }} model {{ .Labels.model_version }} answers in {{ printf "%.0f" .Value }} ms or more 5% of the time`,
				m.Window, float64(m.MaxLatency.D().Milliseconds()), m.MinOutputs, c.ModelLatencyMS, outputs, c.ModelVersion))
		}
		if m.MaxInputTokens > 0 {
			out = append(out, quantile("DecisionInputTokens",
				`5% of {{ .Labels.workflow }} model {{ .Labels.model_version }} outputs take {{ printf "%.0f" .Value }} input tokens or more`,
				m.Window, float64(m.MaxInputTokens), m.MinOutputs, c.GenAIUsageInputTokens, outputs, c.ModelVersion))
		}
		if m.MaxOutputTokens > 0 {
			out = append(out, quantile("DecisionOutputTokens",
				`5% of {{ .Labels.workflow }} model {{ .Labels.model_version }} outputs take {{ printf "%.0f" .Value }} output tokens or more`,
				m.Window, float64(m.MaxOutputTokens), m.MinOutputs, c.GenAIUsageOutputTokens, outputs, c.ModelVersion))
		}
	}
	if id := ct.Identity; id != nil {
		out = append(out, with(Rule{Alert: "DecisionIdentityUnresolved", Kind: KindUnresolvedEntity, EntitySystems: id.Systems,
			Window: id.Window, MaxRate: id.MaxUnresolved, MinCount: id.MinReads, For: five}))
	}
	// The 95th percentile of the time from a recommendation to its first
	// signal of another layer, per model version.
	interval := func(alert, summary string, window contract.Duration, max contract.Duration, min int, to string) Rule {
		r := with(Rule{Alert: alert, Kind: KindInterval, Quantile: 0.95, Max: max.D().Seconds(), Window: window, MinCount: min,
			From: map[string]any{c.DecisionEvent: c.EventModelOutput}, To: map[string]any{c.DecisionEvent: to},
			By: []string{c.ModelVersion}, For: five})
		r.summary = summary
		return r
	}
	if h := ct.Human; h != nil {
		if h.MaxTimeToAction > 0 {
			out = append(out, interval("DecisionTimeToAction",
				`reviewers act on 5% of {{ .Labels.workflow }} model {{ .Labels.model_version }} recommendations {{ humanizeDuration .Value }} or more after them`,
				h.Window, h.MaxTimeToAction, h.MinActions, c.EventHumanAction))
		}
		acted := map[string]any{c.DecisionEvent: c.EventHumanAction}
		if h.MaxIgnored > 0 {
			out = append(out, byModel(ratio("DecisionRecommendationsIgnored",
				`reviewers ignore {{ printf "%.0f" (mul100 .Value) }}% of {{ .Labels.workflow }} model {{ .Labels.model_version }} recommendations`,
				h.Window, h.MaxIgnored, h.MinActions, acted, map[string]any{c.HumanAction: c.ActionIgnored})))
		}
		if h.MaxEscalated > 0 {
			out = append(out, byModel(ratio("DecisionRecommendationsEscalated",
				`reviewers escalate {{ printf "%.0f" (mul100 .Value) }}% of {{ .Labels.workflow }} model {{ .Labels.model_version }} recommendations`,
				h.Window, h.MaxEscalated, h.MinActions, acted, map[string]any{c.HumanAction: c.ActionEscalated})))
		}
	}
	if o := ct.Outcomes; o != nil {
		out = append(out, ratio("DecisionBadOutcomes",
			`{{ printf "%.0f" (mul100 .Value) }}% of {{ .Labels.workflow }} outcomes show the recommendation did not help`,
			o.Window, o.MaxBad, o.MinOutcomes, map[string]any{c.DecisionEvent: c.EventBusinessOutcome},
			map[string]any{c.BusinessOutcome: anys(o.Bad)}))
		outcomes := map[string]any{c.DecisionEvent: c.EventBusinessOutcome}
		if o.MaxCycleTime > 0 {
			out = append(out, quantile("DecisionCycleTime",
				`5% of {{ .Labels.workflow }} cases take {{ humanizeDuration .Value }} or more end to end`,
				o.Window, o.MaxCycleTime.D().Seconds(), o.MinOutcomes, c.BusinessCycleTimeS, outcomes))
		}
		if o.MaxCost > 0 {
			out = append(out, quantile("DecisionOutcomeCost",
				`5% of {{ .Labels.workflow }} outcomes cost {{ printf "%.2f" .Value }} or more`,
				o.Window, o.MaxCost, o.MinOutcomes, c.BusinessCost, outcomes))
		}
		if o.MaxLatency > 0 {
			out = append(out, interval("DecisionLatency",
				`5% of {{ .Labels.workflow }} model {{ .Labels.model_version }} decisions take {{ humanizeDuration .Value }} or more from recommendation to outcome`,
				o.Window, o.MaxLatency, o.MinOutcomes, c.EventBusinessOutcome))
		}
	}
	if cl := ct.Cleanup; cl != nil {
		ratio := func(alert, summary string, window contract.Duration, max float64, min int, den, num map[string]any) Rule {
			return byModel(ratio(alert, summary, window, max, min, den, num))
		}
		// A decision's latest signal among its output and its rework (or
		// exception) is the rework when it needed one: it comes after.
		if cl.MaxRework > 0 {
			out = append(out, ratio("DecisionRework",
				`{{ printf "%.0f" (mul100 .Value) }}% of {{ .Labels.workflow }} model {{ .Labels.model_version }} decisions needed rework`,
				cl.Window, cl.MaxRework, cl.MinDecisions,
				map[string]any{c.DecisionEvent: []any{c.EventModelOutput, c.EventWorkflowRework}},
				map[string]any{c.DecisionEvent: c.EventWorkflowRework}))
		}
		if cl.MaxExceptions > 0 {
			out = append(out, ratio("DecisionExceptions",
				`{{ printf "%.0f" (mul100 .Value) }}% of {{ .Labels.workflow }} model {{ .Labels.model_version }} decisions raised an exception`,
				cl.Window, cl.MaxExceptions, cl.MinDecisions,
				map[string]any{c.DecisionEvent: []any{c.EventModelOutput, c.EventWorkflowException}},
				map[string]any{c.DecisionEvent: c.EventWorkflowException}))
		}
	}
	for _, s := range ct.SLOs {
		count, den, num := sliFilters(ct, s.SLI)
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
			r := with(Rule{Alert: w.alert, Kind: KindSLOBurnRate, Objective: s.Objective, BurnRate: w.burn, Count: count,
				LongWindow: contract.Duration(w.long), ShortWindow: contract.Duration(w.short), MinCount: 10,
				Denominator: den, Numerator: num})
			r.Labels["slo"] = s.Name
			r.Labels["sli"] = s.SLI
			r.Labels["severity"] = w.severity
			r.summary = `{{ .Labels.workflow }} burns the error budget of SLO {{ .Labels.slo }} {{ printf "%.1f" .Value }} times as fast as it allows`
			out = append(out, r)
		}
	}
	return out
}

// sliFilters is what an SLI counts and which of it is bad.
func sliFilters(ct *contract.Contract, sli string) (count string, den, num map[string]any) {
	switch sli {
	case contract.SLIAccepted:
		return countDecisions, map[string]any{c.DecisionEvent: c.EventHumanAction}, map[string]any{c.HumanAction: []any{c.ActionOverridden, c.ActionIgnored}}
	case contract.SLIGoodOutcome:
		return countDecisions, map[string]any{c.DecisionEvent: c.EventBusinessOutcome}, map[string]any{c.BusinessOutcome: anys(ct.Outcomes.Bad)}
	case contract.SLIFreshContext:
		return countVerdicts, nil, map[string]any{"verdict.context": []any{c.ContextStale, c.ContextMissing}}
	}
	return countDecisions, map[string]any{c.DecisionEvent: c.EventModelOutput}, map[string]any{c.ModelUnsafe: true}
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
