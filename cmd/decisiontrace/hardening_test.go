package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// nested puts under key a map nested depth levels deep, its innermost
// value a string.
func nested(m pcommon.Map, key string, depth int) {
	for i := 1; i < depth; i++ {
		m = m.PutEmptyMap(key)
		key = fmt.Sprintf("level%d", i+1)
	}
	m.PutStr(key, "bottom")
}

// TestIntegrationDeeplyNestedAttributesAreStored: OTLP/HTTP JSON takes
// attribute values nested deeper than protobuf (and so the persistent
// queue) can read back. Such a request is answered 200 only because it is
// stored: the record with a value nested 40 levels deep is stored, that
// value flattened to JSON below the depth the queue takes, and so is the
// valid record beside it.
func TestIntegrationDeeplyNestedAttributesAreStored(t *testing.T) {
	addr := testenv.ClickHouse(t)
	db := randomDB("dt_deep")
	s := storeOf(t, addr, db)
	env := collectorConfig(t, t.TempDir(), addr, db, false, "")
	runCollector(t, env.configPath)

	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i, depth := range []int{40, 0} {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		a := lr.Attributes()
		a.PutStr(conventions.DecisionID, fmt.Sprintf("deep-%d", i))
		a.PutStr(conventions.DecisionWorkflow, "claims-triage")
		a.PutStr(conventions.DecisionLayer, conventions.LayerModel)
		a.PutStr(conventions.DecisionEvent, conventions.EventModelOutput)
		if depth > 0 {
			nested(a, "model.input", depth)
		}
	}
	body, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	require.NoError(t, err)
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/logs", env.httpPort), "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	require.Eventually(t, func() bool {
		var n uint64
		return s.Conn().QueryRow(context.Background(), "SELECT count() FROM "+db+".events").Scan(&n) == nil && n == 2
	}, 30*time.Second, 100*time.Millisecond, "both records of the acknowledged request are stored")
	var attrs string
	require.NoError(t, s.Conn().QueryRow(context.Background(), "SELECT toString(attributes) FROM "+db+".events WHERE decision_id = 'deep-0'").Scan(&attrs))
	assert.Contains(t, attrs, "bottom", "the innermost value is kept, in the flattened JSON")
	assert.True(t, strings.Contains(attrs, "level40"), "every level's key is kept: %s", attrs)
}
