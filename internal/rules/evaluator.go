package rules

import (
	"time"

	"github.com/decisiontrace/decisiontrace/internal/alerting"
)

// Evaluator holds the alerts of a rule set and applies each evaluation of
// a rule to them: the state machine of its alerts (for, keep_firing_for)
// and the one-page-per-cause rule that while a workflow_silence rule fires
// for a workflow, that workflow's alerts of the kinds HeldBackBySilence
// report nothing. The alertrules receiver's groups and dtrules test apply
// evaluations through it, so a rule test's verdict is the receiver's.
//
// An Evaluator is not safe for concurrent use: the receiver serializes it
// with the rest of its alert state.
type Evaluator struct {
	machines map[string]*alerting.Machine // by Rule.Key
	// silent holds, per workflow_silence rule, the workflows it fires for.
	silent map[string]map[string]bool
}

// NewEvaluator returns an Evaluator for ruleset, every alert inactive.
func NewEvaluator(ruleset []*Rule) *Evaluator {
	e := &Evaluator{machines: make(map[string]*alerting.Machine, len(ruleset)), silent: map[string]map[string]bool{}}
	for _, r := range ruleset {
		e.machines[r.Key()] = alerting.NewMachine(r.For.D(), r.KeepFiringFor.D())
	}
	return e
}

// Machine is r's alert state.
func (e *Evaluator) Machine(r *Rule) *alerting.Machine { return e.machines[r.Key()] }

// HeldBack returns the workflows whose alerts of r's kind are held back:
// those a workflow_silence rule fires for (none for a silence rule itself).
func (e *Evaluator) HeldBack(r *Rule) map[string]bool {
	out := map[string]bool{}
	if r.Kind == KindWorkflowSilence {
		return out
	}
	for _, wfs := range e.silent {
		for wf := range wfs {
			out[wf] = true
		}
	}
	return out
}

// Apply feeds the samples of one evaluation of r at now to its alerts and
// returns their state changes.
func (e *Evaluator) Apply(r *Rule, now time.Time, samples []alerting.Sample) []alerting.Transition {
	if r.Kind.HeldBackBySilence() {
		samples = withoutSilent(samples, e.HeldBack(r))
	}
	m := e.Machine(r)
	changed := m.Eval(now, samples)
	e.noteSilence(r)
	return changed
}

// Restore puts back r's alerts as a restart found them.
func (e *Evaluator) Restore(r *Rule, alerts []alerting.Alert) {
	e.Machine(r).Restore(alerts)
	e.noteSilence(r)
}

func (e *Evaluator) noteSilence(r *Rule) {
	if r.Kind == KindWorkflowSilence {
		e.silent[r.Key()] = e.Machine(r).FiringValues("workflow")
	}
}

// withoutSilent drops the samples of the workflows in silent: while a
// workflow makes no decisions, the kinds HeldBackBySilence report nothing
// for it.
func withoutSilent(samples []alerting.Sample, silent map[string]bool) []alerting.Sample {
	if len(silent) == 0 {
		return samples
	}
	out := samples[:0:0]
	for _, s := range samples {
		if !silent[s.Labels["workflow"]] {
			out = append(out, s)
		}
	}
	return out
}
