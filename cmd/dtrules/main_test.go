package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"

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
// on a real decision store; a query that fails there fails the command.
func TestBenchRunsEveryShippedRule(t *testing.T) {
	store := storetest.New(t, "dt_bench", nil)
	code := bench([]string{"--clickhouse", store.Addr, "--database", store.DB, "--rounds", "2",
		"--contracts", "../../deploy/contracts/*.yaml", "../../deploy/rules/demo.yaml"}, zerolog.Nop())
	assert.Equal(t, 0, code)
	assert.Equal(t, 2, bench([]string{"--database", "not-an-identifier", "../../deploy/rules/demo.yaml"}, zerolog.Nop()))
}
