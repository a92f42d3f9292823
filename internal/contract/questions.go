package contract

import (
	"fmt"
	"sort"
	"strings"
)

// Question is one of the nine questions the essay asks of every AI
// workflow, with how a contract answers it ("" when it does not).
type Question struct {
	Text string
	// Section is where a contract answers it.
	Section string
	Answer  func(c *Contract) string
}

// Questions are the essay's nine questions, in its order.
var Questions = []Question{
	{"What context is required?", "sources.required", func(c *Contract) string {
		return names(c.Sources.Required, "required")
	}},
	{"Which dependencies fail partially?", "sources (on_stale, on_missing; optional), data", func(c *Contract) string {
		var parts []string
		for _, s := range c.allSources() {
			parts = append(parts, fmt.Sprintf("%s: stale → %s, missing → %s", s.Name, s.OnStale, s.OnMissing))
		}
		if len(c.Sources.Optional) > 0 {
			parts = append(parts, names(c.Sources.Optional, "optional"))
		}
		if d := c.Data; d != nil {
			var limits []string
			if d.MaxIncomplete > 0 {
				limits = append(limits, pct(d.MaxIncomplete)+" incomplete")
			}
			if d.MaxUnavailable > 0 {
				limits = append(limits, pct(d.MaxUnavailable)+" unavailable")
			}
			parts = append(parts, fmt.Sprintf("per source at most %s of reads over %s", strings.Join(limits, ", "), d.Window.D()))
		}
		return strings.Join(parts, "; ")
	}},
	{"How stale can each input be?", "sources (max_age)", func(c *Contract) string {
		var parts []string
		for _, s := range c.allSources() {
			parts = append(parts, fmt.Sprintf("%s %s", s.Name, s.MaxAge.D()))
		}
		return strings.Join(parts, ", ")
	}},
	{"Which identifiers and definitions must align?", "identity", func(c *Contract) string {
		if c.Identity == nil {
			return ""
		}
		return fmt.Sprintf("entity IDs of %s resolve; at most %s of reads unresolved over %s",
			strings.Join(c.Identity.Systems, ", "), pct(c.Identity.MaxUnresolved), c.Identity.Window.D())
	}},
	{"What happens when confidence is low?", "confidence_floor, on_low_confidence", func(c *Contract) string {
		return fmt.Sprintf("under %.2f: %s; confident on stale or missing context is unsupported certainty", c.ConfidenceFloor, c.OnLowConfidence)
	}},
	{"Who receives escalations, and with what authority?", "escalation", func(c *Contract) string {
		e := c.Escalation
		if e == nil {
			return ""
		}
		s := fmt.Sprintf("%s, who may %s", e.To, strings.Join(e.Authority, ", "))
		if e.Within > 0 {
			s += fmt.Sprintf(", within %s", e.Within.D())
		}
		return s
	}},
	{"What downstream behaviour proves the recommendation useful?", "outcomes", func(c *Contract) string {
		o := c.Outcomes
		if o == nil {
			return ""
		}
		s := fmt.Sprintf("outcomes %s are bad (at most %s over %s)", strings.Join(o.Bad, ", "), pct(o.MaxBad), o.Window.D())
		if len(o.Good) > 0 {
			s = fmt.Sprintf("outcomes %s prove it; ", strings.Join(o.Good, ", ")) + s
		}
		if o.MaxLatency > 0 {
			s += fmt.Sprintf("; p95 decision latency at most %s", o.MaxLatency.D())
		}
		if o.MaxCycleTime > 0 {
			s += fmt.Sprintf("; p95 cycle time at most %s", o.MaxCycleTime.D())
		}
		if o.MaxCost > 0 {
			s += fmt.Sprintf("; p95 cost at most %g", o.MaxCost)
		}
		return s
	}},
	{"Which metrics reveal hidden cleanup work?", "cleanup, human, override_rate", func(c *Contract) string {
		var parts []string
		if cl := c.Cleanup; cl != nil {
			if cl.MaxRework > 0 {
				parts = append(parts, "rework at most "+pct(cl.MaxRework))
			}
			if cl.MaxExceptions > 0 {
				parts = append(parts, "exceptions at most "+pct(cl.MaxExceptions))
			}
		}
		if h := c.Human; h != nil {
			if h.MaxIgnored > 0 {
				parts = append(parts, "ignored at most "+pct(h.MaxIgnored))
			}
			if h.MaxEscalated > 0 {
				parts = append(parts, "escalated at most "+pct(h.MaxEscalated))
			}
			if h.MaxTimeToAction > 0 {
				parts = append(parts, "p95 time to human action at most "+h.MaxTimeToAction.D().String())
			}
		}
		if o := c.OverrideRate; o != nil {
			parts = append(parts, "overridden at most "+pct(o.Max))
		}
		return strings.Join(parts, ", ")
	}},
	{"How will governance monitor it after launch?", "governance, slos, model", func(c *Contract) string {
		g := c.Governance
		if g == nil {
			return ""
		}
		s := "owned by " + g.Owner
		if g.Review != "" {
			s += ", reviewed " + g.Review
		}
		var slos []string
		for _, o := range c.SLOs {
			slos = append(slos, fmt.Sprintf("%s %s of %s", o.Name, pct(o.Objective), o.SLI))
		}
		sort.Strings(slos)
		if len(slos) > 0 {
			s += "; SLOs " + strings.Join(slos, ", ")
		}
		if m := c.Model; m != nil {
			var limits []string
			if m.MaxUnsafe > 0 {
				limits = append(limits, "unsafe at most "+pct(m.MaxUnsafe))
			}
			if m.MaxLatency > 0 {
				limits = append(limits, "p95 latency at most "+m.MaxLatency.D().String())
			}
			if m.MaxInputTokens > 0 {
				limits = append(limits, fmt.Sprintf("p95 input tokens at most %d", m.MaxInputTokens))
			}
			if m.MaxOutputTokens > 0 {
				limits = append(limits, fmt.Sprintf("p95 output tokens at most %d", m.MaxOutputTokens))
			}
			s += "; per model version " + strings.Join(limits, ", ")
		}
		return s
	}},
}

// allSources are the required sources, then the optional ones.
func (c *Contract) allSources() []Source {
	return append(append([]Source{}, c.Sources.Required...), c.Sources.Optional...)
}

func names(list []Source, kind string) string {
	if len(list) == 0 {
		return ""
	}
	n := make([]string, len(list))
	for i, s := range list {
		n[i] = s.Name
	}
	return kind + ": " + strings.Join(n, ", ")
}

func pct(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v*100), "0"), ".") + "%"
}
