package storetest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/decisiontrace/decisiontrace/internal/store"
)

// Reading back what the store concluded, for tests that feed it through
// the collector's components (the decision processor's among them) and
// compare with what they know must come out.

// verdictsQuery reads the verdicts table as the last refresh left it, in
// store.Verdict's field order.
const verdictsQuery = `SELECT decision_id, workflow, decision_time, model_name, model_version, confidence, contract_hash,
    context, stale_sources, missing_sources, pending_sources, stale_source, stale_age_s, stale_budget_s,
    confidence_low, confidence_floor, unsupported_certainty, behaviour, context_source
FROM {db}.verdicts FINAL`

// Verdicts returns every decision's verdict as the last refresh judged it
// (the verdicts table, read with FINAL), by decision ID.
func (s *Store) Verdicts(t testing.TB) map[string]store.Verdict {
	t.Helper()
	rows, err := s.Conn.Query(context.Background(), Render(verdictsQuery, s.DB))
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]store.Verdict{}
	for rows.Next() {
		var v store.Verdict
		require.NoError(t, rows.Scan(&v.DecisionID, &v.Workflow, &v.DecisionTime, &v.ModelName, &v.ModelVersion, &v.Confidence, &v.ContractHash,
			&v.Context, &v.StaleSources, &v.MissingSources, &v.PendingSources, &v.StaleSource, &v.StaleAgeS, &v.StaleBudgetS,
			&v.ConfidenceLow, &v.ConfidenceFloor, &v.UnsupportedCertainty, &v.Behaviour, &v.ContextSource))
		require.NotContains(t, out, v.DecisionID, "one verdict per decision")
		out[v.DecisionID] = v
	}
	require.NoError(t, rows.Err())
	return out
}

// IDs runs a query that returns one string column (decision IDs, say) and
// returns its values in the query's order; {db} stands for the database.
func (s *Store) IDs(t testing.TB, query string, args ...any) []string {
	t.Helper()
	rows, err := s.Conn.Query(context.Background(), Render(query, s.DB), args...)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		out = append(out, id)
	}
	require.NoError(t, rows.Err())
	return out
}
