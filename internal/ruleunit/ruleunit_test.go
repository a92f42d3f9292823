package ruleunit

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func env(t *testing.T) Env {
	user, pass := testenv.ClickHouseAuth()
	return Env{Addr: testenv.ClickHouse(t), Username: user, Password: pass}
}

// The shipped rules come with tests, and they pass.
func TestShippedRuleTestsPass(t *testing.T) {
	files, err := filepath.Glob("../../deploy/rules/tests/*_test.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		results, err := Run(context.Background(), env(t), f)
		require.NoError(t, err)
		out, ok := Summary(results)
		assert.True(t, ok, "%s:\n%s", f, out)
	}
}

// write puts files into a temporary directory and returns its path.
func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600))
	}
	return dir
}

const deepRule = `
groups:
  - name: g
    interval: 15s
    rules:
      - alert: Deep
        kind: queue_depth
        workflows: [w]
        max_depth: 10
        labels: {team: ops}
        annotations: {summary: 'depth {{ printf "%.0f" .Value }}'}
`

// A rule test can fail: a wrong expectation is reported with what fired,
// and the same on any day the test starts.
func TestWrongExpectationsFail(t *testing.T) {
	dir := write(t, map[string]string{"r.yaml": deepRule, "t.yaml": `
rule_files: [r.yaml]
tests:
  - name: wrong
    input_events:
      - {at: 0s, every: 15s, until: 2m, attributes: {decision.workflow: w, decision.layer: workflow, decision.event: queue.depth, workflow.queue: q, workflow.queue.depth: 50}}
    alert_eval:
      - at: 1m
        alertname: Deep
        expected_alerts:
          - labels: {workflow: w, queue: other, team: ops}
      - at: 1m30s
        alertname: Deep
        expected_alerts:
          - labels: {workflow: w, queue: q, team: ops}
            annotations: {summary: depth 51}
`})
	for _, start := range []time.Time{{}, time.Date(2031, 12, 31, 23, 59, 30, 0, time.UTC)} {
		e := env(t)
		e.Start = start
		results, err := Run(context.Background(), e, filepath.Join(dir, "t.yaml"))
		require.NoError(t, err)
		out, ok := Summary(results)
		assert.False(t, ok)
		assert.Equal(t, `FAIL wrong
     at 1m0s: Deep map[queue:other team:ops workflow:w] expected firing, is not
     at 1m0s: Deep map[queue:q team:ops workflow:w] firing, not expected
     at 1m30s: Deep map[queue:q team:ops workflow:w]: annotation summary is "depth 50", want "depth 51"
`, out, "starting at %s", start)
	}
}

// An event that arrives late is not in the store before it arrives, and
// an expectation over a range is checked at every evaluation in it.
func TestEventsReachTheStoreWhenTheyArrive(t *testing.T) {
	dir := write(t, map[string]string{"r.yaml": deepRule, "t.yaml": `
rule_files: [r.yaml]
tests:
  - name: a depth stamped at 0s, stored at 3m
    input_events:
      - {at: 0s, arrives_after: 3m, attributes: {decision.workflow: w, decision.layer: workflow, decision.event: queue.depth, workflow.queue: q, workflow.queue.depth: 50}}
    alert_eval:
      - {at: 0s, until: 2m45s, alertname: Deep, expected_alerts: []}
      - at: 3m
        alertname: Deep
        expected_alerts:
          - labels: {workflow: w, queue: q, team: ops}
            annotations: {summary: depth 50}
  - name: the same, expected too early
    input_events:
      - {at: 0s, arrives_after: 3m, attributes: {decision.workflow: w, decision.layer: workflow, decision.event: queue.depth, workflow.queue: q, workflow.queue.depth: 50}}
    alert_eval:
      - {at: 2m45s, until: 3m15s, alertname: Deep, expected_alerts: [{labels: {workflow: w, queue: q, team: ops}}]}
      - {at: 2m, until: 3m15s, alertname: Deep, expected_alerts: []}
`})
	results, err := Run(context.Background(), env(t), filepath.Join(dir, "t.yaml"))
	require.NoError(t, err)
	out, _ := Summary(results)
	assert.Equal(t, `PASS a depth stamped at 0s, stored at 3m
FAIL the same, expected too early
     at 2m45s: Deep map[queue:q team:ops workflow:w] expected firing, is not
     at 3m0s: Deep map[queue:q team:ops workflow:w] firing, not expected
     at 3m15s: Deep map[queue:q team:ops workflow:w] firing, not expected
`, out)
}

// The shipped late-context test passes because the contract lets reads
// trail their decisions by 10 minutes: the same reads against a lag of one
// minute are missing, and page.
func TestLateContextPastTheContractsLagPages(t *testing.T) {
	results, err := Run(context.Background(), env(t), "testdata/late_context_short_lag_test.yaml")
	require.NoError(t, err)
	out, ok := Summary(results)
	assert.True(t, ok, out)
}

// A test file that cannot run says where, down to the field.
func TestInvalidTestFilesNameTheField(t *testing.T) {
	dir := write(t, map[string]string{"r.yaml": deepRule, "t.yaml": `
rule_files: [r.yaml]
tests:
  - name: bad
    input_events:
      - {at: -1m, attributes: {decision.workflow: w}}
      - {at: 0s, until: 5m, arrives_after: -4m, as_of_ago: 1m, as_of_at: 2m, attributes: {decision.workflow: w}}
      - {at: 2m, every: 15s, until: 1m}
    alert_eval:
      - {at: 1m, until: 30s, alertname: Deap}
  - name: bad
    alert_eval:
      - {at: 1m, alertname: Deep}
`, "unknown.yaml": `
rule_files: [r.yaml]
tests:
  - name: typo
    input_events:
      - {at: 0s, arrive_after: 4m, attributes: {decision.workflow: w}}
`, "globs.yaml": `
rule_files: [none-*.yaml]
contracts: [nothing.yaml]
tests: []
`})
	_, err := Run(context.Background(), Env{}, filepath.Join(dir, "t.yaml"))
	require.Error(t, err)
	p := filepath.Join(dir, "t.yaml")
	assert.Equal(t, p+`: test "bad": input_events[0].at: must not be negative, got -1m0s
`+p+`: test "bad": input_events[1].arrives_after: must not be negative, got -4m0s
`+p+`: test "bad": input_events[1].until: needs every (how often the event repeats until then)
`+p+`: test "bad": input_events[1].as_of_ago: give as_of_ago or as_of_at, not both
`+p+`: test "bad": input_events[2].until: 1m0s is before at (2m0s)
`+p+`: test "bad": input_events[2].attributes: required
`+p+`: test "bad": alert_eval[0].until: 30s is before at (1m0s)
`+p+`: test "bad": alert_eval[0].alertname: no rule of the rule files or contracts is named "Deap"
`+p+`: tests[1].name: "bad" is the name of another test too`, err.Error())

	_, err = Run(context.Background(), Env{}, filepath.Join(dir, "unknown.yaml"))
	assert.ErrorContains(t, err, "field arrive_after not found")
	g := filepath.Join(dir, "globs.yaml")
	_, err = Run(context.Background(), Env{}, g)
	assert.EqualError(t, err, g+`: rule_files[0]: "none-*.yaml" matches no file
`+g+`: contracts[0]: "nothing.yaml" matches no file
`+g+`: tests: at least one test is required`)
}
