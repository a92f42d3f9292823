package rules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/decisiontrace/decisiontrace/internal/alerting"
)

func sample(alert string, value float64, labels ...string) alerting.Sample {
	l := map[string]string{"alertname": alert}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	return alerting.Sample{Labels: l, Value: value}
}

func firingWorkflows(m *alerting.Machine) []string {
	var out []string
	for _, a := range m.Active() {
		if a.State == alerting.StateFiring {
			out = append(out, a.Labels["workflow"])
		}
	}
	return out
}

// While a workflow_silence rule fires for a workflow, that workflow's
// alerts of the kinds held back by silence report nothing, whatever order
// the rules are applied in after it; other workflows' alerts, and kinds not
// held back, go on. A restored silence holds back as a live one does.
func TestEvaluatorHoldsBackWhatASilentWorkflowExplains(t *testing.T) {
	silence := &Rule{Alert: "Silent", Kind: KindWorkflowSilence}
	stale := &Rule{Alert: "Stale", Kind: KindSourceStaleness}
	queue := &Rule{Alert: "Deep", Kind: KindQueueDepth}
	assert.True(t, stale.Kind.HeldBackBySilence())
	assert.False(t, queue.Kind.HeldBackBySilence())
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

	e := NewEvaluator([]*Rule{silence, stale, queue})
	e.Apply(silence, now, []alerting.Sample{sample("Silent", 3600, "workflow", "claims")})
	e.Apply(stale, now, []alerting.Sample{sample("Stale", 900, "workflow", "claims", "source", "db"), sample("Stale", 900, "workflow", "loans", "source", "db")})
	e.Apply(queue, now, []alerting.Sample{sample("Deep", 500, "workflow", "claims", "queue", "q")})
	assert.Equal(t, []string{"claims"}, firingWorkflows(e.Machine(silence)))
	assert.Equal(t, []string{"loans"}, firingWorkflows(e.Machine(stale)), "claims' staleness is its silence")
	assert.Equal(t, []string{"claims"}, firingWorkflows(e.Machine(queue)), "a queue fills whether or not the workflow decides")
	assert.Equal(t, map[string]bool{"claims": true}, e.HeldBack(stale))
	assert.Empty(t, e.HeldBack(silence), "a silence rule holds back nothing of its own")

	// The silence ends: claims' staleness reports again.
	later := now.Add(time.Minute)
	e.Apply(silence, later, nil)
	e.Apply(stale, later, []alerting.Sample{sample("Stale", 960, "workflow", "claims", "source", "db")})
	assert.Equal(t, []string{"claims"}, firingWorkflows(e.Machine(stale)))

	// After a restart, the restored silence holds back before it is evaluated.
	restarted := NewEvaluator([]*Rule{silence, stale, queue})
	restarted.Restore(silence, e.Machine(silence).Active())
	assert.Empty(t, restarted.HeldBack(stale), "the silence had resolved")
	restarted.Restore(silence, []alerting.Alert{{Labels: map[string]string{"alertname": "Silent", "workflow": "loans"}, State: alerting.StateFiring,
		Fingerprint: alerting.Fingerprint(map[string]string{"alertname": "Silent", "workflow": "loans"}), ActiveAt: now, FiredAt: now}})
	assert.Equal(t, map[string]bool{"loans": true}, restarted.HeldBack(stale))
}
