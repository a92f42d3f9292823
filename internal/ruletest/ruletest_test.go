package ruletest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

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

// A rule test can fail: a wrong expectation is reported with what fired.
func TestWrongExpectationsFail(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(`
groups:
  - name: g
    interval: 15s
    rules:
      - alert: Deep
        kind: queue_depth
        max_depth: 10
        labels: {team: ops}
        annotations: {summary: 'depth {{ printf "%.0f" .Value }}'}
`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t.yaml"), []byte(`
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
`), 0o600))
	results, err := Run(context.Background(), env(t), filepath.Join(dir, "t.yaml"))
	require.NoError(t, err)
	out, ok := Summary(results)
	assert.False(t, ok)
	assert.Equal(t, `FAIL wrong
     at 1m0s: Deep map[queue:other team:ops workflow:w] expected firing, is not
     at 1m0s: Deep map[queue:q team:ops workflow:w] firing, not expected
     at 1m30s: Deep map[queue:q team:ops workflow:w]: annotation summary is "depth 50", want "depth 51"
`, out)
}
