package decision

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func extract(t *testing.T, raw map[string]any) Event {
	t.Helper()
	m := pcommon.NewMap()
	require.NoError(t, m.FromRaw(raw))
	var ev Event
	Extract(m, now, &ev)
	return ev
}

func TestExtractTypedValues(t *testing.T) {
	ev := extract(t, map[string]any{
		conventions.DecisionID: "d", conventions.DecisionLayer: "workflow",
		conventions.WorkflowQueueDepth: "42", conventions.ModelConfidence: 1, conventions.DataAvailable: "false",
		conventions.DataAsOf: now.Add(-time.Hour).UnixMilli(), conventions.BusinessCycleTimeS: 12,
	})
	assert.Empty(t, ev.ParseErrors)
	assert.True(t, ev.Classified)
	assert.Equal(t, int64(42), *ev.QueueDepth)
	assert.Equal(t, 1.0, *ev.Confidence)
	assert.False(t, *ev.Available)
	assert.Equal(t, now.Add(-time.Hour), *ev.AsOf, "epoch milliseconds are read as milliseconds")
	assert.Equal(t, 12.0, *ev.CycleTimeS)
}

func TestExtractRejectsValuesOutsideTheirConvention(t *testing.T) {
	tests := []struct {
		key   string
		value any
		err   string
	}{
		{conventions.ModelConfidence, "high", `model.confidence: "high" is not a number`},
		{conventions.ModelConfidence, 1.5, `model.confidence: 1.5 is outside [0,1]`},
		{conventions.ModelConfidence, math.NaN(), `model.confidence: NaN is not a finite number`},
		{conventions.DataAsOf, "yesterday", `data.as_of: "yesterday" is not an RFC 3339 timestamp`},
		{conventions.DataAsOf, now.Add(72 * time.Hour).Format(time.RFC3339), `data.as_of: "2026-11-29T12:00:00Z" is more than 24h0m0s after the record's time`},
		{conventions.DecisionLayer, "kernel", `decision.layer: "kernel" is not a layer (want one of data, model, workflow, human, business)`},
		{conventions.WorkflowQueueDepth, 3.5, `workflow.queue.depth: 3.5 is not a whole number`},
		{conventions.DataComplete, "maybe", `data.complete: "maybe" is not a boolean`},
		{conventions.BusinessCycleTimeS, -4, `business.cycle_time_s: -4 is negative`},
		{conventions.DecisionID, []any{"a"}, `decision.id: expected a string, got Slice`},
	}
	for _, tt := range tests {
		t.Run(tt.err, func(t *testing.T) {
			ev := extract(t, map[string]any{tt.key: tt.value})
			require.Len(t, ev.ParseErrors, 1)
			assert.Equal(t, tt.err, ev.ParseErrors[0].Error())
			assert.True(t, ev.Failed(tt.key))
		})
	}
}

func TestExtractInfersLayer(t *testing.T) {
	assert.Equal(t, "model", extract(t, map[string]any{conventions.GenAIRequestModel: "m"}).Layer)
	assert.Equal(t, "human", extract(t, map[string]any{conventions.DecisionID: "d", conventions.HumanAction: "accepted"}).Layer)
	assert.Equal(t, "data", extract(t, map[string]any{conventions.DataSource: "s", conventions.DecisionID: "d"}).Layer)
	ev := extract(t, map[string]any{"http.route": "/x"})
	assert.False(t, ev.Classified)
	assert.Empty(t, ev.Layer)
}

func TestExtractReusesEvent(t *testing.T) {
	m := pcommon.NewMap()
	m.PutStr(conventions.ModelConfidence, "x")
	var ev Event
	Extract(m, now, &ev)
	require.Len(t, ev.ParseErrors, 1)
	m2 := pcommon.NewMap()
	m2.PutStr(conventions.DecisionID, "d2")
	Extract(m2, now, &ev)
	assert.Empty(t, ev.ParseErrors, "a reused Event starts clean")
	assert.Nil(t, ev.Confidence)
	assert.Equal(t, "d2", ev.ID)
}

func TestExtractIdentityFields(t *testing.T) {
	ev := extract(t, map[string]any{
		conventions.DecisionID: "d", conventions.DataEntityResolved: false, conventions.DataAgeS: 3,
	})
	assert.Empty(t, ev.ParseErrors)
	assert.False(t, *ev.Resolved)
	assert.Equal(t, 3.0, *ev.AgeS)

	bad := extract(t, map[string]any{conventions.DecisionID: "d", conventions.DataAgeS: -1})
	require.Len(t, bad.ParseErrors, 1)
	assert.Equal(t, conventions.DataAgeS, bad.ParseErrors[0].Key)
	assert.Equal(t, "-1 is negative", bad.ParseErrors[0].Reason)
}
