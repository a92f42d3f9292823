package rules

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/decisiontrace/decisiontrace/internal/contract"
	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/storetest"
)

// Model latency p95 per model version: v2's tail is slow (10 of its 100
// outputs take 5 s), v1's is not; each output counted once however often
// it was stored; outputs without a latency left out.
func TestIntegrationQuantileKind(t *testing.T) {
	var evs []storetest.Event
	for i := 0; i < 200; i++ {
		version, latency := "v1", 300.0+float64(i%10)
		if i >= 100 {
			version = "v2"
			if i%10 == 0 {
				latency = 5000
			}
		}
		evs = append(evs, storetest.Event{At: t0.Add(-time.Duration(i) * time.Second), Attrs: map[string]any{c.DecisionID: fmt.Sprintf("q-%d", i),
			c.DecisionWorkflow: "claims", c.DecisionLayer: "model", c.DecisionEvent: "model.output", c.ModelVersion: version, c.ModelLatencyMS: latency}})
	}
	evs = append(evs, storetest.Event{At: t0, Attrs: map[string]any{c.DecisionID: "q-none", c.DecisionWorkflow: "claims", c.DecisionLayer: "model",
		c.DecisionEvent: "model.output", c.ModelVersion: "v1"}})
	rule := Rule{Alert: "SlowTail", Kind: KindQuantile, Value: c.ModelLatencyMS, Quantile: 0.95, Max: 2000, MinCount: 50,
		Window: contract.Duration(time.Hour), Denominator: map[string]any{c.DecisionEvent: c.EventModelOutput}, By: []string{c.ModelVersion}}

	once, twice := newStore(t), newStore(t)
	once.WriteEvents(t, evs...)
	twice.WriteEvents(t, evs...)
	twice.Resend(t, evs...)
	for _, s := range []*store{once, twice} {
		got := s.run(t, rule)
		require.Len(t, got, 1)
		assert.Equal(t, map[string]string{"alertname": "SlowTail", "workflow": "claims", "model_version": "v2"}, got[0].Labels)
		assert.Greater(t, got[0].Value, 2000.0)
		ex, err := rule.Examples(context.Background(), s.Conn, s.DB, t0, got[0].Labels, 3)
		require.NoError(t, err)
		assert.Equal(t, []string{"q-100", "q-110", "q-120"}, ex, "the slow outputs of v2, latest first")
		// Of one workflow, the same (its label is the filter's value).
		claims := rule
		claims.Workflow = "claims"
		assert.Equal(t, got, s.run(t, claims))
	}
	tight := rule
	tight.MinCount = 101
	assert.Empty(t, once.run(t, tight), "100 outputs of v2 are under a minimum of 101")

	// Percentiles of the same outputs are one query, which gives each
	// rule what its own does: the median over 300 ms for both versions,
	// no token counts (outputs to judge, none over the limit).
	median := rule
	median.Alert, median.Quantile, median.Max = "SlowMedian", 0.5, 300
	tokens := rule
	tokens.Alert, tokens.Value, tokens.Max, tokens.MinCount = "ManyTokens", c.GenAIUsageInputTokens, 1, 1
	tight.Alert = "SlowTailMany"
	ruleset := []*Rule{&rule, &median, &tokens, &tight}
	for _, r := range ruleset {
		r.AnyWorkflow = true // as run does
	}
	require.Equal(t, [][]int{{0, 1, 2, 3}}, Together(ruleset))
	results := EvalAll(context.Background(), twice.Conn, twice.DB, t0, ruleset, 1, time.Minute)
	for i, r := range ruleset {
		samples, has, err := r.Eval(context.Background(), twice.Conn, twice.DB, t0)
		require.NoError(t, err)
		require.NoError(t, results[i].Err)
		assert.Equal(t, has, results[i].HasData, r.Alert)
		assert.ElementsMatch(t, samples, results[i].Samples, r.Alert)
	}
	assert.Equal(t, []string{"[claims v1]", "[claims v2]"}, labelsOf(results[1].Samples, "workflow", "model_version"))
	assert.True(t, results[2].HasData)
	assert.Empty(t, results[2].Samples)
	assert.Empty(t, results[3].Samples)

	bad := Rule{Alert: "Q", Kind: KindQuantile, Value: c.HumanAction, Quantile: 95, Window: contract.Duration(time.Hour),
		Numerator: map[string]any{c.HumanAction: "x"}, Count: "verdicts"}
	var msgs []string
	for _, err := range bad.validate() {
		msgs = append(msgs, err.Error())
	}
	assert.Equal(t, []string{
		"quantile: 95 is outside (0, 1), e.g. 0.95",
		`value: "human.action" is not a numeric convention (model.latency_ms, business.cycle_time_s, gen_ai.usage.input_tokens, ...)`,
		"denominator: required: which signals the value is read from (e.g. {decision.event: model.output})",
		"numerator: a quantile rule has none",
		"count: a quantile rule has none: it reads each stored event once",
	}, msgs)
}

// A percentile over more values than ClickHouse's quantile() keeps (it
// samples 8192) is the exact one, and the same at every evaluation of the
// same rows: 20,000 model latencies of 1 to 20,000 ms, and as many
// decisions whose outcome came 1 to 20,000 s after their output, have a
// p95 of 1 + 0.95 × 19,999 = 19,000.05 (interpolated between the two
// nearest values, as quantile() does below 8192 values).
func TestIntegrationPercentilesAreExactOverManyValues(t *testing.T) {
	const n = 20000
	var evs []storetest.Event
	for i := 0; i < n; i++ {
		// Spread over the hour so that the rows fill many granules and
		// ClickHouse reads them on several threads.
		k := (i * 7919) % n // every value once, not in time order
		end := t0.Add(-time.Duration(i) * 150 * time.Millisecond)
		id := fmt.Sprintf("p-%d", i)
		evs = append(evs,
			storetest.Event{At: end.Add(-time.Duration(k+1) * time.Second), Attrs: map[string]any{c.DecisionID: id, c.DecisionWorkflow: "pw",
				c.DecisionLayer: "model", c.DecisionEvent: c.EventModelOutput, c.ModelLatencyMS: float64(k + 1)}},
			storetest.Event{At: end, Attrs: map[string]any{c.DecisionID: id, c.DecisionWorkflow: "pw",
				c.DecisionLayer: "business", c.DecisionEvent: c.EventBusinessOutcome, c.BusinessOutcome: "approved"}})
	}
	s := newStore(t)
	s.WriteEvents(t, evs...)
	latency := Rule{Alert: "ModelLatencyP95", Kind: KindQuantile, Value: c.ModelLatencyMS, Quantile: 0.95, Max: 1, MinCount: 1,
		Window: contract.Duration(24 * time.Hour), Denominator: map[string]any{c.DecisionEvent: c.EventModelOutput}}
	outcome := Rule{Alert: "DecisionLatencyP95", Kind: KindInterval, Quantile: 0.95, Max: 1, MinCount: 1,
		Window: contract.Duration(time.Hour), From: map[string]any{c.DecisionEvent: c.EventModelOutput},
		To: map[string]any{c.DecisionEvent: c.EventBusinessOutcome}}
	for _, r := range []Rule{latency, outcome} {
		for range 3 {
			got := s.run(t, r)
			require.Len(t, got, 1, r.Alert)
			assert.InDelta(t, 19000.05, got[0].Value, 1e-6, r.Alert)
		}
	}
}
