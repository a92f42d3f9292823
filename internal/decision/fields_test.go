package decision

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
)

// validValue is a value that fits a column of type typ.
func validValue(typ string) any {
	switch typ {
	case tTime:
		return now.Add(-time.Minute).Format(time.RFC3339)
	case tBool:
		return true
	case tFloat:
		return 0.5
	case tInt:
		return 7
	}
	return "model" // a string that is a valid layer too
}

// TestEveryStoredFieldReachesItsColumn sends each convention alone and
// checks that its own column, and no other, holds the value: a row whose
// accessor pointed at another field's Event member would fail here.
func TestEveryStoredFieldReachesItsColumn(t *testing.T) {
	for _, f := range StoredFields {
		t.Run(f.Key, func(t *testing.T) {
			m := pcommon.NewMap()
			require.NoError(t, m.FromRaw(map[string]any{f.Key: validValue(f.Type)}))
			var ev Event
			Extract(m, now, &ev)
			require.Empty(t, ev.ParseErrors)
			for _, g := range StoredFields {
				col := g.NewColumn(1)
				col.Append(&ev)
				filled := !isZero(col.Values())
				if g.Key == c.DecisionLayer && ev.Classified && g != f {
					continue // inferred for every classified record
				}
				assert.Equal(t, g == f, filled, "column %s after setting %s", g.Column, f.Key)
			}
		})
	}
}

func isZero(values any) bool {
	switch v := values.(type) {
	case []string:
		return v[0] == ""
	case []*float64:
		return v[0] == nil
	case []*int64:
		return v[0] == nil
	case []*bool:
		return v[0] == nil
	case []*time.Time:
		return v[0] == nil
	}
	panic("unknown column type")
}

// TestAliasesFillOnlyWhatTheAttributeLeavesEmpty: the GenAI model names
// stand in for model.name, which wins in whichever order they arrive, and
// stay out of Typed so a store keeps them under their own names.
func TestAliasesFillOnlyWhatTheAttributeLeavesEmpty(t *testing.T) {
	for _, order := range [][]string{
		{c.ModelName, c.GenAIRequestModel, c.GenAIResponseModel},
		{c.GenAIResponseModel, c.GenAIRequestModel, c.ModelName},
	} {
		m := pcommon.NewMap()
		for _, k := range order {
			m.PutStr(k, k)
		}
		var ev Event
		Extract(m, now, &ev)
		assert.Equal(t, c.ModelName, ev.ModelName, "order %v", order)
	}
	// Between aliases, the order Fields lists them decides, never the order
	// they were sent in.
	for i := 0; i < 20; i++ {
		ev := extract(t, map[string]any{c.GenAIResponseModel: "resp", c.GenAIRequestModel: "req", c.OpenInferenceModelName: "oi"})
		assert.Equal(t, "req", ev.ModelName)
	}
	ev := extract(t, map[string]any{c.GenAIResponseModel: "resp", c.GenAIRequestModel: "req"})
	assert.True(t, ev.Classified, "a GenAI model name makes a model signal")
	assert.True(t, Typed(c.ModelName))
	assert.False(t, Typed(c.GenAIRequestModel))

	f, alias, ok := Lookup(c.GenAIRequestModel)
	require.True(t, ok)
	assert.True(t, alias)
	assert.Equal(t, c.ModelName, f.Key)
}

// TestDerivedFieldsAreTheProcessors: producers may not set what the decision
// processor's identity reconciliation decides.
func TestDerivedFieldsAreTheProcessors(t *testing.T) {
	var derived []string
	for _, f := range Fields {
		if f.Derived {
			derived = append(derived, f.Key)
		}
	}
	assert.Equal(t, []string{c.DataEntityCanonicalID, c.DataEntityResolved}, derived)
}

// A GenAI retrieval is a context read of the data layer, even when it
// names the embedding model it searched with; an OpenInference RETRIEVER
// span too. Other operations are not.
func TestRetrievalIsAContextRead(t *testing.T) {
	for _, attrs := range []map[string]any{
		{c.GenAIOperationName: "retrieval", c.GenAIDataSourceID: "policy-kb", c.GenAIRequestModel: "text-embedding-3-small"},
		{c.OpenInferenceSpanKind: "RETRIEVER"},
	} {
		ev := extract(t, attrs)
		assert.True(t, ev.Classified, "%v", attrs)
		assert.Equal(t, c.LayerData, ev.Layer, "%v", attrs)
		assert.Equal(t, c.EventContextRead, ev.ImpliedEvent(true), "%v", attrs)
		assert.Equal(t, c.EventContextRead, ev.ImpliedEvent(false), "a retrieval logged is a read too")
	}
	assert.Equal(t, "policy-kb", extract(t, map[string]any{c.GenAIOperationName: "retrieval", c.GenAIDataSourceID: "policy-kb"}).Source)
	chat := extract(t, map[string]any{c.GenAIOperationName: "chat", c.GenAIRequestModel: "gpt-4o"})
	assert.Equal(t, c.LayerModel, chat.Layer)
	assert.Equal(t, c.EventModelOutput, chat.ImpliedEvent(true))
	assert.False(t, extract(t, map[string]any{c.OpenInferenceSpanKind: "CHAIN"}).Classified)
}

// The deprecated GenAI names and OpenInference's fill the same fields.
func TestGenAIAndOpenInferenceNames(t *testing.T) {
	ev := extract(t, map[string]any{c.GenAISystem: "openai", c.GenAIUsagePromptTokens: 812, c.GenAIUsageCompletionTokens: 96})
	assert.Equal(t, "openai", ev.ModelProvider)
	assert.Equal(t, int64(812), *ev.InputTokens)
	assert.Equal(t, int64(96), *ev.OutputTokens)
	assert.True(t, ev.Classified)
	ev = extract(t, map[string]any{c.OpenInferenceModelName: "claude-sonnet-4", c.OpenInferenceProvider: "anthropic",
		c.OpenInferencePromptTokens: 1200, c.OpenInferenceCompletionTokens: 150})
	assert.Equal(t, "claude-sonnet-4", ev.ModelName)
	assert.Equal(t, "anthropic", ev.ModelProvider)
	assert.Equal(t, int64(1200), *ev.InputTokens)
	assert.Equal(t, c.LayerModel, ev.Layer)
	ev = extract(t, map[string]any{c.GenAIProviderName: "anthropic", c.GenAISystem: "old"})
	assert.Equal(t, "anthropic", ev.ModelProvider, "the current name before the deprecated one")
	ev = extract(t, map[string]any{c.ModelProvider: "own", c.GenAIProviderName: "anthropic"})
	assert.Equal(t, "own", ev.ModelProvider, "the convention's own name wins")
}

// A workflow named by the resource fills a record that names none, and
// makes nothing a decision signal by itself.
func TestWorkflowFromResource(t *testing.T) {
	res := pcommon.NewMap()
	res.PutStr(c.DecisionWorkflow, "claims-rag")
	ev := extract(t, map[string]any{c.OpenInferenceModelName: "m"})
	ev.FromResource(res, now)
	assert.Equal(t, "claims-rag", ev.Workflow)
	ev = extract(t, map[string]any{c.OpenInferenceModelName: "m", c.TraceloopWorkflowName: "own"})
	ev.FromResource(res, now)
	assert.Equal(t, "own", ev.Workflow, "the record's own workflow wins")
	ev = extract(t, map[string]any{"http.route": "/x"})
	ev.FromResource(res, now)
	assert.False(t, ev.Classified)
}
