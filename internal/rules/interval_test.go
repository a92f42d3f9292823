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

// intervalScenario: reviewers of workflow iw act on model v1's
// recommendations 20 minutes after them (i-0..i-9) and on v2's after a
// minute (i-10..i-19); i-20 (v2) waited two and a half hours. i-5 was acted
// on twice, i-10's signals were delivered twice. Not counted: i-21 (acted
// on before the window), i-22 (not acted on yet), i-23 (an action without
// an output).
func intervalScenario(t *testing.T, s *store) {
	var evs []storetest.Event
	pair := func(i int, version string, output, action time.Duration) {
		id := fmt.Sprintf("i-%d", i)
		evs = append(evs, storetest.Event{At: t0.Add(-output), Attrs: map[string]any{c.DecisionID: id, c.DecisionWorkflow: "iw",
			c.DecisionLayer: "model", c.DecisionEvent: c.EventModelOutput, c.ModelVersion: version}})
		if action >= 0 {
			evs = append(evs, storetest.Event{At: t0.Add(-action), Attrs: map[string]any{c.DecisionID: id, c.DecisionWorkflow: "iw",
				c.DecisionLayer: "human", c.DecisionEvent: c.EventHumanAction, c.HumanAction: c.ActionAccepted}})
		}
	}
	for i := 0; i < 10; i++ {
		pair(i, "v1", 30*time.Minute, 10*time.Minute)
		pair(10+i, "v2", 5*time.Minute, 4*time.Minute)
	}
	pair(20, "v2", 3*time.Hour, 30*time.Minute)
	pair(21, "v2", 2*time.Hour, 70*time.Minute)
	pair(22, "v2", time.Minute, -1)
	evs = append(evs,
		storetest.Event{At: t0.Add(-2 * time.Minute), Attrs: map[string]any{c.DecisionID: "i-5", c.DecisionWorkflow: "iw",
			c.DecisionLayer: "human", c.DecisionEvent: c.EventHumanAction, c.HumanAction: c.ActionOverridden}},
		storetest.Event{At: t0.Add(-time.Minute), Attrs: map[string]any{c.DecisionID: "i-23", c.DecisionWorkflow: "iw",
			c.DecisionLayer: "human", c.DecisionEvent: c.EventHumanAction, c.HumanAction: c.ActionAccepted}})
	s.WriteEvents(t, evs...)
	s.Resend(t, evs[2], evs[3]) // i-10's output and action
}

func TestIntegrationIntervalKind(t *testing.T) {
	s := newStore(t)
	intervalScenario(t, s)
	ctx := context.Background()
	toAction := Rule{Alert: "SlowReview", Kind: KindInterval, Window: contract.Duration(time.Hour), Quantile: 0.5, Max: 300, MinCount: 5,
		From: map[string]any{c.DecisionEvent: c.EventModelOutput}, To: map[string]any{c.DecisionEvent: c.EventHumanAction},
		By: []string{c.ModelVersion}}

	// The model version is the output's: the actions carry none.
	got := s.run(t, toAction)
	assert.Equal(t, []string{"[iw v1]"}, labelsOf(got, "workflow", "model_version"), "v2's median is a minute")
	require.Len(t, got, 1)
	assert.InDelta(t, 1200, got[0].Value, 1e-9)
	ex, err := toAction.Examples(ctx, s.Conn, s.DB, t0, map[string]string{"workflow": "iw", "model_version": "v1"}, 3)
	require.NoError(t, err)
	assert.Equal(t, []string{"i-0", "i-1", "i-2"}, ex)

	// Over all versions: ten at a minute, ten at 20 minutes and i-20:
	// the median is 20 minutes; the longest wait is the first example.
	all := toAction
	all.By = nil
	got = s.run(t, all)
	require.Len(t, got, 1)
	assert.InDelta(t, 1200, got[0].Value, 1e-9)
	ex, err = all.Examples(ctx, s.Conn, s.DB, t0, map[string]string{"workflow": "iw"}, 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"i-20", "i-0"}, ex)
	// Of one workflow (every label the filter's value), the same; two
	// hours later, no data.
	iw := all
	iw.Workflow = "iw"
	assert.Equal(t, got, s.run(t, iw))
	_, has, err := iw.Eval(ctx, s.Conn, s.DB, t0.Add(2*time.Hour))
	require.NoError(t, err)
	assert.False(t, has, "of iw, two hours later")
	all.Quantile = 0.99
	got = s.run(t, all)
	require.Len(t, got, 1)
	assert.Greater(t, got[0].Value, 1200.0, "i-20's 9000 s is in the tail")

	few := toAction
	few.MinCount = 11
	assert.Empty(t, s.run(t, few), "v1 has 10 decisions acted on in the window")

	// Two hours later no action is in the window: no data, not healthy.
	_, has, err = toAction.Eval(ctx, s.Conn, s.DB, t0.Add(2*time.Hour))
	require.NoError(t, err)
	assert.False(t, has)

	var msgs []string
	for _, err := range (&Rule{Alert: "I", Kind: KindInterval, Quantile: 1, Count: "decisions",
		From: map[string]any{"no.such": 1}}).validate() {
		msgs = append(msgs, err.Error())
	}
	assert.Equal(t, []string{
		"window: required and must be positive for kind interval",
		"quantile: 1 is outside (0, 1), e.g. 0.95",
		"max: required: the limit in seconds, e.g. 1800",
		"to: required: the signal the interval ends at (e.g. {decision.event: human.action})",
		"count: an interval rule has no count, denominator or numerator: it counts decisions, by from and to",
		"from.no.such: not a stored convention (decision.event, human.action, business.outcome, data.complete, ...)",
	}, msgs)
}

// A limit over the lookback can be seen exceeded: loans decided 70 to 79
// hours after the recommendation, against a 72-hour limit over a day's
// outcomes, fire (their starts are read back as far as the limit). One
// slower than the window and the limit together (99 hours) is not seen.
func TestIntegrationIntervalLimitOverTheLookback(t *testing.T) {
	s := newStore(t)
	var evs []storetest.Event
	decision := func(id string, output, outcome time.Duration) {
		evs = append(evs,
			storetest.Event{At: t0.Add(-output), Attrs: map[string]any{c.DecisionID: id, c.DecisionWorkflow: "loans",
				c.DecisionLayer: "model", c.DecisionEvent: c.EventModelOutput}},
			storetest.Event{At: t0.Add(-outcome), Attrs: map[string]any{c.DecisionID: id, c.DecisionWorkflow: "loans",
				c.DecisionLayer: "business", c.DecisionEvent: c.EventBusinessOutcome, c.BusinessOutcome: "funded"}})
	}
	for i := 0; i < 10; i++ {
		decision(fmt.Sprintf("l-%d", i), 80*time.Hour, time.Duration(10-i)*time.Hour) // 70 h .. 79 h
	}
	decision("l-slowest", 100*time.Hour, time.Hour)
	s.WriteEvents(t, evs...)
	latency := Rule{Alert: "SlowLoans", Kind: KindInterval, Window: contract.Duration(24 * time.Hour), Quantile: 0.95,
		Max: (72 * time.Hour).Seconds(), MinCount: 5, Workflow: "loans",
		From: map[string]any{c.DecisionEvent: c.EventModelOutput}, To: map[string]any{c.DecisionEvent: c.EventBusinessOutcome}}
	got := s.run(t, latency)
	require.Len(t, got, 1, "p95 of 70-79 h is over 72 h")
	assert.InDelta(t, 78.55*3600, got[0].Value, 1e-6, "the ten loans, not the one of 99 h")
	ex, err := latency.Examples(context.Background(), s.Conn, s.DB, t0, map[string]string{"workflow": "loans"}, 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"l-9", "l-8"}, ex)
}
