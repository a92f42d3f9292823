package spillstorage

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// BenchmarkQueueRequests is the persistent queue's use of the storage
// under load, as the shipped configuration has it: four writers each
// putting requests of 150 KB (about 500 events) with the queue's metadata
// key in the same batch, and two consumers each reading one and then
// deleting it, over file_storage's bbolt. One op is one request written,
// read and deleted.
func BenchmarkQueueRequests(b *testing.B) {
	s := startStack(b, b.TempDir(), 16384)
	c, err := s.spill.(storage.Extension).GetClient(context.Background(), component.KindExporter, exporter, "logs")
	require.NoError(b, err)
	defer func() {
		require.NoError(b, c.Close(context.Background()))
		require.NoError(b, s.spill.Shutdown(context.Background()))
		require.NoError(b, s.keys.Shutdown(context.Background()))
	}()
	ctx := context.Background()
	req := value("r", 1, 150*1024)
	meta := []byte("metadata")
	keys := make(chan string, 64)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	b.ResetTimer()
	var writers, consumers sync.WaitGroup
	var next int64
	var mu sync.Mutex
	for range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= int64(b.N) {
					return
				}
				k := strconv.FormatInt(i, 10)
				if err := c.Batch(ctx, storage.SetOperation("qmv0", meta), storage.SetOperation(k, req)); err != nil {
					b.Error(err)
					return
				}
				keys <- k
			}
		}()
	}
	for range 2 {
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			for k := range keys {
				get := storage.GetOperation(k)
				if err := c.Batch(ctx, storage.SetOperation("qmv0", meta), get); err != nil || len(get.Value) != len(req) {
					b.Errorf("read %s: %v, %d bytes", k, err, len(get.Value))
					return
				}
				if err := c.Batch(ctx, storage.SetOperation("qmv0", meta), storage.DeleteOperation(k)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	writers.Wait()
	close(keys)
	consumers.Wait()
}
