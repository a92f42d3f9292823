package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/decisiontrace/decisiontrace/internal/chconn"
	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/storetest"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestCheckExitCodes(t *testing.T) {
	log := zerolog.Nop()
	assert.Equal(t, 0, run([]string{"check", "../../deploy/rules/demo.yaml"}, log))
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	assert.NoError(t, os.WriteFile(bad, []byte("groups:\n  - name: g\n    interval: 15s\n    rules:\n      - alert: X\n        kind: queue_depth\n"), 0o600))
	assert.Equal(t, 1, run([]string{"check", bad}, log), "max_depth missing")
	assert.Equal(t, 2, run([]string{"lint", "x"}, log))
}

// The benchmark evaluates every shipped rule, contract defaults included,
// on a real decision store, each round after a verdict refresh; a query
// that fails there fails the command.
func TestBenchRunsEveryShippedRuleAfterARefresh(t *testing.T) {
	store := storetest.New(t, "dt_bench")
	// Decisions of claims-triage, judged by the refreshes (recent: the
	// rules look back from the wall clock).
	now := time.Now()
	var evs []storetest.Event
	for i := 0; i < 50; i++ {
		id, at := fmt.Sprintf("d-%d", i), now.Add(-time.Duration(i)*10*time.Second)
		evs = append(evs,
			storetest.Event{At: at, Attrs: map[string]any{c.DecisionID: id, c.DecisionWorkflow: "claims-triage", c.DecisionLayer: "model",
				c.DecisionEvent: "model.output", c.ModelConfidence: 0.9}},
			storetest.Event{At: at, Attrs: map[string]any{c.DecisionID: id, c.DecisionWorkflow: "claims-triage", c.DecisionLayer: "data",
				c.DecisionEvent: "context.read", c.DataSource: "policy-db", c.DataAsOf: at.Add(-time.Hour).Format(time.RFC3339Nano)}},
			storetest.Event{At: at, Attrs: map[string]any{c.DecisionID: id, c.DecisionWorkflow: "claims-triage", c.DecisionLayer: "data",
				c.DecisionEvent: "context.read", c.DataSource: "claims-history", c.DataAsOf: at.Add(-time.Minute).Format(time.RFC3339Nano)}})
	}
	store.WriteEvents(t, evs...)

	var out bytes.Buffer
	code := bench([]string{"--clickhouse", store.Addr, "--database", store.DB, "--rounds", "2", "--write-contracts", "--at", "latest",
		"--contracts", "../../deploy/contracts/*.yaml", "../../deploy/rules/demo.yaml"}, zerolog.Nop(), &out)
	require.Equal(t, 0, code)
	var rep benchReport
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	assert.Equal(t, uint64(150), rep.Events)
	assert.Equal(t, uint64(50), rep.Verdicts, "the contracts were written and every decision judged")
	assert.Equal(t, 2, rep.Rounds)
	assert.Equal(t, now.Truncate(time.Millisecond).Add(time.Millisecond).UTC(), rep.EvaluatedAt, "--at latest: the millisecond after the newest event")
	assert.Positive(t, rep.RefreshMedMS)
	assert.GreaterOrEqual(t, rep.RoundMinMS, rep.RefreshMinMS, "a round's time holds its refresh")
	assert.Len(t, rep.RuleMedianMS, rep.Rules)
	// Rows read, per rule and round: a rule reads its window's signals,
	// and nothing for a workflow the store holds none of.
	assert.Len(t, rep.RuleReadRows, rep.Rules)
	assert.GreaterOrEqual(t, rep.RuleReadRows["DecisionIncompleteContext{workflow=claims-triage}"], uint64(100), "the 100 context reads")
	assert.Zero(t, rep.RuleReadRows["DecisionIncompleteContext{workflow=loan-underwriting}"])
	assert.GreaterOrEqual(t, rep.RoundReadRows, rep.Events)
	assert.Less(t, rep.Queries, rep.Rules, "rules that read the same rows share a query")
	// Every decision is confident on a policy-db read an hour old.
	assert.Equal(t, 1, rep.Firing["DecisionUnsupportedCertainty{workflow=claims-triage}"])

	// --changed 95s: the ten decisions of the 95 s before the evaluation
	// time are marked changed before each round, as the store's view marks
	// the decisions whose signals arrive, for its refresh to judge again.
	before := time.Now()
	time.Sleep(2 * time.Millisecond) // changed_at is the server's, in milliseconds
	out.Reset()
	require.Equal(t, 0, bench([]string{"--clickhouse", store.Addr, "--database", store.DB, "--rounds", "1", "--at", "latest", "--changed", "95s",
		"--contracts", "../../deploy/contracts/*.yaml", "../../deploy/rules/demo.yaml"}, zerolog.Nop(), &out))
	rep = benchReport{}
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	assert.Equal(t, "1m35s", rep.Changed)
	assert.Equal(t, uint64(10), rep.ChangedDecisions)
	var marked []string
	require.NoError(t, store.Conn.QueryRow(context.Background(), storetest.Render("SELECT arraySort(groupUniqArray(decision_id)) FROM {db}.decision_changes WHERE changed_at > "+chconn.MilliParam, store.DB),
		before.UnixMilli()).Scan(&marked))
	assert.Equal(t, []string{"d-0", "d-1", "d-2", "d-3", "d-4", "d-5", "d-6", "d-7", "d-8", "d-9"}, marked, "the decisions of those 95 s are marked changed, and no other")

	assert.Equal(t, 2, bench([]string{"--database", "not-an-identifier", "../../deploy/rules/demo.yaml"}, zerolog.Nop(), &out))
	assert.Equal(t, 2, bench([]string{"--at", "yesterday", "../../deploy/rules/demo.yaml"}, zerolog.Nop(), &out))
	assert.Equal(t, 2, bench([]string{"--changed", "-1m", "../../deploy/rules/demo.yaml"}, zerolog.Nop(), &out))
}

// dtrules test exits 0 when every test passes, 1 when one fails.
func TestTestExitCodes(t *testing.T) {
	dir := t.TempDir()
	rules := "groups:\n  - name: g\n    interval: 15s\n    rules:\n      - alert: Deep\n        kind: queue_depth\n        workflows: [w]\n        max_depth: 10\n"
	test := func(want string) string {
		return `rule_files: [r.yaml]
tests:
  - name: deep
    input_events:
      - {at: 0s, every: 15s, until: 1m, attributes: {decision.workflow: w, decision.layer: workflow, decision.event: queue.depth, workflow.queue: q, workflow.queue.depth: 50}}
    alert_eval:
      - {at: 30s, alertname: Deep, expected_alerts: ` + want + `}
`
	}
	for name, body := range map[string]string{"r.yaml": rules, "pass.yaml": test("[{labels: {workflow: w, queue: q}}]"), "fail.yaml": test("[]")} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600))
	}
	user, pass := testenv.ClickHouseAuth()
	t.Setenv("CLICKHOUSE_USER", user)
	t.Setenv("CLICKHOUSE_PASSWORD", pass)
	addr := testenv.ClickHouse(t)
	assert.Equal(t, 0, run([]string{"test", "--clickhouse", addr, filepath.Join(dir, "pass.yaml")}, zerolog.Nop()))
	assert.Equal(t, 1, run([]string{"test", "--clickhouse", addr, filepath.Join(dir, "pass.yaml"), filepath.Join(dir, "fail.yaml")}, zerolog.Nop()))
	assert.Equal(t, 1, run([]string{"test", "--clickhouse", addr, filepath.Join(dir, "missing.yaml")}, zerolog.Nop()))
}

// The shipped contracts answer all nine of the essay's questions, each
// with the rules that watch it; one that leaves some out says which, and
// fails.
func TestContractAnswersTheNineQuestions(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 0, answers([]string{"../../deploy/contracts/*.yaml"}, &out, &errOut), errOut.String())
	assert.Empty(t, errOut.String())
	report := out.String()
	assert.NotContains(t, report, "unanswered")
	assert.Contains(t, report, "workflow claims-triage (../../deploy/contracts/claims-triage.yaml)\n1. What context is required?\n   required: policy-db, claims-history\n   watched by: DecisionSourceStale, DecisionMissingContext\n")
	assert.Contains(t, report, "6. Who receives escalations, and with what authority?\n   claims-supervisors, who may override, pause_workflow, within 30m0s\n")
	assert.Contains(t, report, "   watched by: DecisionIdentityUnresolved\n")

	// The README shows the report of the shipped contracts as it is.
	t.Run("README", func(t *testing.T) {
		t.Chdir("../..")
		var out bytes.Buffer
		require.Equal(t, 0, answers([]string{"deploy/contracts/*.yaml"}, &out, io.Discard))
		readme, err := os.ReadFile("README.md")
		require.NoError(t, err)
		assert.Contains(t, string(readme), "```\n"+out.String()+"```\n",
			"README.md's nine-question report differs from go run ./cmd/dtrules contract 'deploy/contracts/*.yaml'")
	})

	bare := filepath.Join(t.TempDir(), "bare.yaml")
	require.NoError(t, os.WriteFile(bare, []byte("workflow: bare\nowner: o\nsources:\n  required:\n    - {name: db, max_age: 1m}\n"), 0o600))
	out.Reset()
	errOut.Reset()
	assert.Equal(t, 1, answers([]string{bare}, &out, &errOut))
	assert.Contains(t, out.String(), "4. Which identifiers and definitions must align?\n   warning: unanswered (set identity in the contract)\n")
	assert.Equal(t, "warning: workflow bare leaves 5 of the nine questions unanswered\n", errOut.String())
}
