package rules

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decisiontrace/decisiontrace/internal/contract"
	"github.com/decisiontrace/decisiontrace/internal/storetest"
)

// BenchmarkShippedRules times, on a store of synthetic decisions (all in
// the 20 minutes before the evaluation, the hardest case for 15-minute
// windows), each shipped rule (deploy/rules/demo.yaml and both contracts'
// defaults) evaluated as the receiver does, and a verdict refresh after new
// events. DT_BENCH_EVENTS sets the store's size (default 200,000):
//
//	DT_BENCH_EVENTS=10000000 go test -run '^$' -bench ShippedRules -benchtime 5x ./internal/rules/
func BenchmarkShippedRules(b *testing.B) {
	n := 200_000
	if v := os.Getenv("DT_BENCH_EVENTS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	ctx := context.Background()
	s := storetest.New(b, "dt_rules_bench")
	contractFiles := []string{"../../deploy/contracts/claims-triage.yaml", "../../deploy/contracts/loan-underwriting.yaml"}
	s.Contracts(b, t0, contractFiles...)
	started := time.Now()
	s.Synthetic(b, t0, 20*time.Minute, n)
	b.Logf("%d events stored in %s", n, time.Since(started))
	started = time.Now()
	s.Refresh(b)
	b.Logf("first refresh (every decision judged) in %s; %d verdicts", time.Since(started), s.Count(b, "SELECT count() FROM {db}.verdicts FINAL"))
	contracts, err := contract.Load(contractFiles)
	require.NoError(b, err)
	groups, err := Load([]string{"../../deploy/rules/demo.yaml"}, contracts, time.Minute)
	require.NoError(b, err)

	for gi := range groups {
		for ri := range groups[gi].Rules {
			r := &groups[gi].Rules[ri]
			b.Run(r.Alert+"/"+r.Workflow, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if _, _, err := r.Eval(ctx, s.Conn, s.DB, t0); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	b.Run("refresh", func(b *testing.B) {
		// Each refresh after a minute's worth of new decisions (1/20 of
		// the store), as the receiver's refreshes follow the collector.
		// Last: its writes would leave the rules unmerged parts to read.
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			s.Synthetic(b, t0.Add(time.Duration(i+1)*time.Minute), time.Minute, n/20)
			b.StartTimer()
			s.Refresh(b)
		}
	})
}
