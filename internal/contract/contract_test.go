package contract

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const good = `
workflow: claims-triage
owner: claims-platform
paging:
  team: claims-oncall
  severity: page
sources:
  required:
    - name: policy-db
      owner: policy-team
      max_age: 90s
      on_stale: escalate
      on_missing: abstain
  optional:
    - name: fraud-signals
      max_age: 5m
confidence_floor: 0.7
queues:
  - name: manual-review
    max_depth: 500
    max_growth: 200
    growth_window: 15m
override_rate:
  max: 0.25
  window: 1h
  min_actions: 20
`

func TestParseGood(t *testing.T) {
	c, err := Parse("claims.yaml", []byte(good))
	require.NoError(t, err)
	assert.Equal(t, "claims-triage", c.Workflow)
	assert.Equal(t, "claims-oncall", c.Paging["team"])
	req, ok := c.Required("policy-db")
	require.True(t, ok)
	assert.Equal(t, 90*time.Second, req.MaxAge.D())
	assert.Equal(t, "escalate", req.OnStale)
	opt, ok := c.Optional("fraud-signals")
	require.True(t, ok)
	assert.Equal(t, DefaultOnStale, opt.OnStale, "defaults fill what a contract leaves out")
	assert.Equal(t, DefaultOnLowConfidence, c.OnLowConfidence)
	_, ok = c.Required("fraud-signals")
	assert.False(t, ok)
	assert.Equal(t, 15*time.Minute, c.Queues[0].GrowthWindow.D())
	assert.InDelta(t, 0.25, c.OverrideRate.Max, 1e-12)
	assert.Equal(t, Traffic{MaxSilence: DefaultMaxSilence, Severity: DefaultTrafficSeverity}, c.Traffic)
	assert.Equal(t, DefaultLayerLag, c.Lag("business"))
	assert.Equal(t, DefaultMaxSilence, c.Pause(), "a gap of the default max_silence is a pause")

	c, err = Parse("batch.yaml", []byte("workflow: nightly\ntraffic: off\nlayer_lag: {business: 6h}\n"))
	require.NoError(t, err)
	assert.True(t, c.Traffic.Off)
	assert.Equal(t, 6*time.Hour, c.Lag("business").D())
	assert.Equal(t, DefaultLayerLag, c.Lag("human"))
	assert.Zero(t, c.Pause(), "a workflow that may stop for any time")
	c, err = Parse("slow.yaml", []byte("workflow: slow\ntraffic: {max_silence: 3h}\n"))
	require.NoError(t, err)
	assert.Equal(t, 3*time.Hour, c.Pause().D())
	// The hash (the contract's content) tells off from the default.
	assert.NotEqual(t, mustJSON(t, c.Traffic), mustJSON(t, Traffic{MaxSilence: DefaultMaxSilence, Severity: DefaultTrafficSeverity}))
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestParseErrorsNameFileWorkflowAndField(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown field", "workflow: w\nconfidence_flor: 0.7\n",
			"c.yaml: line 2: field confidence_flor not found in type contract.Contract"},
		{"bad duration", "workflow: w\nsources:\n  required:\n    - name: s\n      max_age: soon\n",
			`c.yaml: line 5: "soon" is not a duration (such as 90s or 15m)`},
		{"missing workflow and budget", "sources:\n  required:\n    - name: s\n",
			"c.yaml: workflow (unnamed): sources.required[0].max_age: required and must be positive (a freshness budget such as 90s)\n" +
				"c.yaml: workflow (unnamed): workflow: required"},
		{"bad behaviour and floor", "workflow: w\nconfidence_floor: 1.5\nsources:\n  optional:\n    - name: s\n      max_age: 1m\n      on_stale: panic\n",
			"c.yaml: workflow w: confidence_floor: 1.5 is outside [0, 1]\n" +
				`c.yaml: workflow w: sources.optional[0].on_stale: "panic" is not a behaviour (want one of proceed, warn, proceed_with_limits, degrade, abstain, escalate)`},
		{"duplicate source", "workflow: w\nsources:\n  required:\n    - {name: s, max_age: 1m}\n    - {name: s, max_age: 2m}\n",
			"c.yaml: workflow w: sources.required[1].name: source s is already listed as sources.required[0]"},
		{"queue and override rate", "workflow: w\nqueues:\n  - {name: q, max_growth: 10}\noverride_rate: {max: 0}\n",
			"c.yaml: workflow w: override_rate.max: 0 is outside (0, 1]\n" +
				"c.yaml: workflow w: override_rate.window: required and must be positive\n" +
				"c.yaml: workflow w: queues[0].growth_window: required with max_growth"},
		{"two contracts in one file", "workflow: a\n---\nworkflow: b\n",
			"c.yaml: line 3: a second YAML document; a file holds one (put each in a file of its own)"},
		{"traffic neither off nor a mapping", "workflow: w\ntraffic: sometimes\n",
			`c.yaml: line 2: want off or a mapping of max_silence and severity, got "sometimes"`},
		{"layer lags", "workflow: w\nlayer_lag: {model: 1h, business: 0s}\ntraffic: {max_silence: -1m}\n",
			"c.yaml: workflow w: layer_lag.business: must be positive\n" +
				"c.yaml: workflow w: layer_lag.model: not a layer whose lag is set (want one of data, workflow, human, business; the model layer's silence is traffic.max_silence)\n" +
				"c.yaml: workflow w: traffic.max_silence: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.yaml))
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
		})
	}
}

func TestLoadRejectsTwoFilesForOneWorkflow(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	require.NoError(t, os.WriteFile(a, []byte(good), 0o600))
	require.NoError(t, os.WriteFile(b, []byte(good), 0o600))
	_, err := Load([]string{a, b})
	require.Error(t, err)
	assert.Equal(t, b+": workflow claims-triage: already defined in "+a, err.Error())

	_, err = Load([]string{filepath.Join(dir, "none.yaml")})
	require.ErrorContains(t, err, "none.yaml: no such file or directory")
}

func TestMostSevere(t *testing.T) {
	assert.Equal(t, "escalate", MostSevere("warn", "escalate"))
	assert.Equal(t, "abstain", MostSevere("abstain", "degrade"))
	assert.Equal(t, "warn", MostSevere("proceed", "warn"))
}

// A component that only needs the workflows with a contract reads their
// names, not their problems: the alertrules receiver reports those once.
func TestWorkflowsReadsOnlyTheNames(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "a.yaml")
	require.NoError(t, os.WriteFile(good, []byte("workflow: claims-triage\nsources: {required: [{name: ledger}]}\n"), 0o600))
	unnamed := filepath.Join(dir, "b.yaml")
	require.NoError(t, os.WriteFile(unnamed, []byte("owner: x\n"), 0o600))
	got, err := Workflows([]string{good})
	require.NoError(t, err, "a budget missing is the receiver's to report")
	assert.Equal(t, map[string]bool{"claims-triage": true}, got)
	_, err = Workflows([]string{good, unnamed})
	assert.EqualError(t, err, "contract "+unnamed+": workflow: required")
}

// The sections that answer the rest of the nine questions are strictly
// validated like the rest: each problem names its field.
func TestSectionsValidated(t *testing.T) {
	_, err := Parse("c.yaml", []byte(`workflow: w
owner: o
data: {max_incomplete: 1.5}
model: {max_latency: -1s, window: 5m}
identity: {max_unresolved: 2}
escalation: {within: 30m}
human: {window: 1h}
outcomes: {good: [paid], bad: [paid], max_bad: 0, max_decision_latency: -1h, window: 1h}
cleanup: {max_rework: 1.5, window: 0s}
slos:
  - {name: a, sli: fresh_contexts, objective: 1}
  - {name: a, sli: good_outcomes, objective: 0.99}
governance: {review: quarterly}
`))
	require.Error(t, err)
	assert.Equal(t, `c.yaml: workflow w: cleanup.max_rework: 1.5 is outside (0, 1]
c.yaml: workflow w: cleanup.window: required and must be positive
c.yaml: workflow w: data.max_incomplete: 1.5 is outside (0, 1]
c.yaml: workflow w: data.window: required and must be positive
c.yaml: workflow w: escalation.authority: required: what they may do (e.g. override, pause_workflow)
c.yaml: workflow w: escalation.to: required: who receives escalated decisions
c.yaml: workflow w: governance.owner: required: who reviews the workflow after launch
c.yaml: workflow w: human: set max_ignored, max_escalated, max_time_to_action or several
c.yaml: workflow w: identity.max_unresolved: 2 is outside (0, 1]
c.yaml: workflow w: identity.systems: required: the source systems whose entity IDs must resolve
c.yaml: workflow w: identity.window: required and must be positive
c.yaml: workflow w: model.max_latency: must be positive
c.yaml: workflow w: outcomes.bad: "paid" is listed as good too
c.yaml: workflow w: outcomes.max_bad: 0 is outside (0, 1]
c.yaml: workflow w: outcomes.max_decision_latency: must be positive
c.yaml: workflow w: slos[0].objective: 1 is outside (0, 1): the share of good decisions, e.g. 0.99
c.yaml: workflow w: slos[0].sli: "fresh_contexts" is not one of safe_outputs, accepted_recommendations, good_outcomes, fresh_context
c.yaml: workflow w: slos[1].name: "a" is listed twice`, err.Error())
}
