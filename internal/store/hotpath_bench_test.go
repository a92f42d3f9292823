package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/decisiontrace/decisiontrace/internal/store"
	"github.com/decisiontrace/decisiontrace/internal/storetest"
)

// The collector's hot path per request, each step on its own, on the
// demo-shaped workload of internal/storetest (every layer, several
// workflows, periodic signals): decoding an OTLP request (the receiver
// does it, and the persistent queue's read does it again), building the
// events columns, and one insert of a sending-queue batch into the real
// ClickHouse. Each reports events/s besides ns/op and allocations.

// demoLogs is n events of the workload in one plog.Logs.
func demoLogs(b *testing.B, n int) plog.Logs {
	b.Helper()
	w := storetest.NewWorkload(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	out := plog.NewLogs()
	for out.LogRecordCount() < n {
		for _, req := range w.Requests {
			req.ResourceLogs().At(0).CopyTo(out.ResourceLogs().AppendEmpty())
			if out.LogRecordCount() >= n {
				break
			}
		}
	}
	return out
}

func perEvent(b *testing.B, events int) {
	b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecodeOTLP is one 500-event OTLP/gRPC logs request unmarshalled
// into pdata (dtloadgen's request size).
func BenchmarkDecodeOTLP(b *testing.B) {
	ld := demoLogs(b, 500)
	raw, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	require.NoError(b, err)
	events := ld.LogRecordCount()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		req := plogotlp.NewExportRequest()
		if err := req.UnmarshalProto(raw); err != nil {
			b.Fatal(err)
		}
	}
	perEvent(b, events)
}

// BenchmarkBuildEvents is pdata to the events columns for a 20,000-event
// batch (the shipped sending queue's max_size).
func BenchmarkBuildEvents(b *testing.B) {
	ld := demoLogs(b, 20000)
	events := ld.LogRecordCount()
	b.ReportAllocs()
	for b.Loop() {
		if r := store.LogEvents(ld, true); r.Len() != events {
			b.Fatalf("%d events built of %d", r.Len(), events)
		}
	}
	perEvent(b, events)
}

// BenchmarkInsertEvents is building, encoding and inserting a 20,000-event
// batch into the embedded ClickHouse (every materialized view included),
// each batch new events: the server's time is in it too.
func BenchmarkInsertEvents(b *testing.B) {
	s := storetest.New(b, "dt_bench_insert")
	ld := demoLogs(b, 20000)
	events := ld.LogRecordCount()
	ctx := context.Background()
	round := 0
	b.ReportAllocs()
	for b.Loop() {
		// New event IDs each round, so no insert is dropped as a repeat.
		b.StopTimer()
		round++
		tag := fmt.Sprint(round)
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			rls.At(i).Resource().Attributes().PutStr("bench.round", tag)
		}
		b.StartTimer()
		require.NoError(b, s.InsertEvents(ctx, store.LogEvents(ld, true)))
	}
	perEvent(b, events)
}
