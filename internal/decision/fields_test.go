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
	ev := extract(t, map[string]any{c.GenAIResponseModel: "resp", c.GenAIRequestModel: "req"})
	assert.Contains(t, []string{"req", "resp"}, ev.ModelName)
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
