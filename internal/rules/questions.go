package rules

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/decisiontrace/decisiontrace/internal/contract"
)

// questionAlerts are, for each of contract.Questions, the default rules
// (by alert name) that watch the contract's answer to it.
var questionAlerts = [][]string{
	{"DecisionSourceStale", "DecisionMissingContext"},
	{"DecisionMissingContext", "DecisionLayerSilent", "DecisionWorkflowSilent", "DecisionIncompleteContext", "DecisionSourceUnavailable"},
	{"DecisionSourceStale"},
	{"DecisionIdentityUnresolved"},
	{"DecisionUnsupportedCertainty"},
	{"DecisionRecommendationsEscalated", "DecisionQueueDepth", "DecisionQueueGrowth"},
	{"DecisionBadOutcomes", "DecisionLatency", "DecisionCycleTime", "DecisionOutcomeCost", "DecisionSLOBurnFast", "DecisionSLOBurnSlow"},
	{"DecisionRework", "DecisionExceptions", "DecisionRecommendationsIgnored", "DecisionTimeToAction", "DecisionOverrideRate"},
	{"DecisionSLOBurnFast", "DecisionSLOBurnSlow", "DecisionWorkflowSilent", "DecisionUnsafeOutputs", "DecisionModelLatency",
		"DecisionInputTokens", "DecisionOutputTokens"},
}

// Answer is a contract's answer to one of the nine questions and the rules
// that watch it.
type Answer struct {
	Question contract.Question
	Text     string // "" when the contract does not answer it
	Rules    []string
}

// Answers are the contract's answers to the nine questions.
func Answers(c *contract.Contract) ([]Answer, error) {
	rs, err := Defaults(c)
	if err != nil {
		return nil, err
	}
	out := make([]Answer, len(contract.Questions))
	for i, q := range contract.Questions {
		a := Answer{Question: q, Text: q.Answer(c)}
		for _, r := range rs {
			if slices.Contains(questionAlerts[i], r.Alert) && !slices.Contains(a.Rules, r.Alert) {
				a.Rules = append(a.Rules, r.Alert)
			}
		}
		out[i] = a
	}
	return out, nil
}

// WriteAnswers writes the nine-question report of c and returns how many
// questions it leaves unanswered.
func WriteAnswers(w io.Writer, c *contract.Contract) (unanswered int, err error) {
	as, err := Answers(c)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(w, "workflow %s (%s)\n", c.Workflow, c.File)
	for i, a := range as {
		fmt.Fprintf(w, "%d. %s\n", i+1, a.Question.Text)
		if a.Text == "" {
			unanswered++
			fmt.Fprintf(w, "   warning: unanswered (set %s in the contract)\n", a.Question.Section)
			continue
		}
		fmt.Fprintf(w, "   %s\n", a.Text)
		if len(a.Rules) > 0 {
			fmt.Fprintf(w, "   watched by: %s\n", strings.Join(a.Rules, ", "))
		}
	}
	return unanswered, nil
}
