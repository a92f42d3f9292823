package spillstorage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"

	"github.com/decisiontrace/decisiontrace/extensions/spillstorage/internal/metadata"
)

// host serves the extensions a client looks up.
type host struct {
	component.Host
	exts map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.exts }

var (
	keysID   = component.MustNewID("file_storage")
	exporter = component.MustNewID("decisionstore")
)

// stack is a started file_storage in dir/keys and a spillstorage over it
// with its values in dir/values, as the shipped configuration has them.
type stack struct {
	keys, spill extension.Extension
	cfg         *Config
}

func startStack(t testing.TB, dir string, minSize int) *stack {
	t.Helper()
	ctx := context.Background()
	ff := filestorage.NewFactory()
	fcfg := ff.CreateDefaultConfig().(*filestorage.Config)
	fcfg.Directory = filepath.Join(dir, "keys")
	fcfg.CreateDirectory = true
	keys, err := ff.Create(ctx, extensiontest.NewNopSettings(ff.Type()), fcfg)
	require.NoError(t, err)
	cfg := &Config{Storage: keysID, Directory: filepath.Join(dir, "values"), MinFileSize: minSize}
	spill, err := NewFactory().Create(ctx, extensiontest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	h := host{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{keysID: keys, component.NewID(metadata.Type): spill}}
	require.NoError(t, keys.Start(ctx, h))
	require.NoError(t, spill.Start(ctx, h))
	return &stack{keys: keys, spill: spill, cfg: cfg}
}

func (s *stack) client(t *testing.T) storage.Client {
	t.Helper()
	c, err := s.spill.(storage.Extension).GetClient(context.Background(), component.KindExporter, exporter, "logs")
	require.NoError(t, err)
	return c
}

func (s *stack) stop(t *testing.T, c storage.Client) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, c.Close(ctx))
	require.NoError(t, s.spill.Shutdown(ctx))
	require.NoError(t, s.keys.Shutdown(ctx))
}

// valueFiles lists the client's value files.
func (s *stack) valueFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.cfg.Directory, clientDir(component.KindExporter, exporter, "logs")))
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// value is n bytes that tell key and version apart.
func value(key string, version, n int) []byte {
	b := bytes.Repeat([]byte{byte(version)}, n)
	copy(b, fmt.Sprintf("%s/%d/", key, version))
	return b
}

// kept is how many files c keeps to write over.
func kept(c storage.Client) int {
	cl := c.(*client)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return len(cl.free)
}

// The client behaves as a map whatever the mix of small and large values,
// overwrites and deletes, in single operations and batches; a file exists
// exactly for each large value stored, and for each kept to write over.
func TestClientIsAMap(t *testing.T) {
	s := startStack(t, t.TempDir(), 1024)
	c := s.client(t)
	defer s.stop(t, c)
	ctx := context.Background()
	model := map[string][]byte{}
	r := rand.New(rand.NewPCG(7, 15))
	keys := []string{"qmv0", "1", "2", "10", "11", "100"}
	for round := 0; round < 300; round++ {
		var ops []*storage.Operation
		for range 1 + r.IntN(4) {
			k := keys[r.IntN(len(keys))]
			switch r.IntN(4) {
			case 0:
				ops = append(ops, storage.DeleteOperation(k))
				delete(model, k)
			case 1:
				ops = append(ops, storage.GetOperation(k))
			default:
				n := 1 + r.IntN(3000) // either side of min_file_size
				v := value(k, round, n)
				ops = append(ops, storage.SetOperation(k, v))
				model[k] = v
			}
		}
		if len(ops) == 1 && ops[0].Type == storage.Set {
			require.NoError(t, c.Set(ctx, ops[0].Key, ops[0].Value))
		} else {
			require.NoError(t, c.Batch(ctx, ops...))
		}
		large := 0
		for _, k := range keys {
			got, err := c.Get(ctx, k)
			require.NoError(t, err)
			assert.Equal(t, model[k], got, "round %d key %s", round, k)
			if len(model[k]) >= 1024 {
				large++
			}
		}
		require.Len(t, s.valueFiles(t), large+kept(c), "round %d: one file per large value, and the kept ones, none left behind", round)
	}
}

// A Get in the same batch after a Set reads the value just set; a Delete
// after it leaves nothing (no value is in a file, so no file is kept).
func TestBatchReadsItsOwnWrites(t *testing.T) {
	s := startStack(t, t.TempDir(), 16)
	c := s.client(t)
	defer s.stop(t, c)
	big := value("k", 1, 100)
	get := storage.GetOperation("k")
	require.NoError(t, c.Batch(context.Background(), storage.SetOperation("k", big), get, storage.DeleteOperation("k")))
	assert.Equal(t, big, get.Value)
	assert.Empty(t, s.valueFiles(t))
}

// The file of a deleted or replaced value is written over by the next
// value, which reads back exactly, shorter or longer than what was there.
func TestReleasedFileIsWrittenOver(t *testing.T) {
	s := startStack(t, t.TempDir(), 16)
	c := s.client(t)
	defer s.stop(t, c)
	ctx := context.Background()
	require.NoError(t, c.Set(ctx, "0", value("0", 1, 100)), "a value that stays, so that a file may be kept")
	require.NoError(t, c.Set(ctx, "1", value("1", 1, 3000)))
	files := s.valueFiles(t)
	require.Len(t, files, 2)
	require.NoError(t, c.Delete(ctx, "1"))
	require.Equal(t, 1, kept(c))
	seen := map[string]bool{}
	for version, n := range []int{1000, 5000, 200, 3000} {
		v := value("2", version, n)
		require.NoError(t, c.Set(ctx, "2", v), "replaces the value before it")
		got, err := c.Get(ctx, "2")
		require.NoError(t, err)
		assert.Equal(t, v, got)
		now := s.valueFiles(t)
		assert.Len(t, now, 2+kept(c), "the two values' files and the one a replacement released")
		for _, f := range now {
			seen[f] = true
		}
	}
	assert.Subset(t, slices.Collect(maps.Keys(seen)), files, "the deleted value's file was written over")
	assert.Len(t, seen, 3, "two files take turns for the replaced value; no new one after the second")
}

// At most maxFree files are kept, and no more than there are values in
// files: a queue that drains gives its space back.
func TestKeptFilesAreBounded(t *testing.T) {
	s := startStack(t, t.TempDir(), 16)
	c := s.client(t)
	defer s.stop(t, c)
	ctx := context.Background()
	set := func(from, to int) {
		var ops []*storage.Operation
		for i := from; i < to; i++ {
			ops = append(ops, storage.SetOperation(strconv.Itoa(i), value(strconv.Itoa(i), 1, 100)))
		}
		require.NoError(t, c.Batch(ctx, ops...))
	}
	del := func(from, to int) {
		var ops []*storage.Operation
		for i := from; i < to; i++ {
			ops = append(ops, storage.DeleteOperation(strconv.Itoa(i)))
		}
		require.NoError(t, c.Batch(ctx, ops...))
	}
	set(0, 2*maxFree+10)
	del(0, maxFree+10)
	assert.Equal(t, maxFree, kept(c), "maxFree at most")
	assert.Len(t, s.valueFiles(t), 2*maxFree)
	del(maxFree+10, 2*maxFree)
	assert.Equal(t, 10, kept(c), "no more than the 10 values still in files")
	assert.Len(t, s.valueFiles(t), 20)
	del(2*maxFree, 2*maxFree+10)
	assert.Empty(t, s.valueFiles(t), "an empty queue keeps no file")
	set(0, 3)
	assert.Len(t, s.valueFiles(t), 3, "new files again")
}

// What was stored is there after a restart; files a crash left without a
// key are removed, the others kept.
func TestRestartKeepsValuesAndRemovesOrphans(t *testing.T) {
	dir := t.TempDir()
	s := startStack(t, dir, 64)
	c := s.client(t)
	ctx := context.Background()
	big, small := value("1", 1, 500), value("qmv0", 1, 10)
	require.NoError(t, c.Batch(ctx, storage.SetOperation("1", big), storage.SetOperation("qmv0", small)))
	files := s.valueFiles(t)
	require.Len(t, files, 1)
	s.stop(t, c)
	// A crash after a value's file was written and before its batch.
	orphan := filepath.Join(s.cfg.Directory, clientDir(component.KindExporter, exporter, "logs"), "orphan")
	require.NoError(t, os.WriteFile(orphan, []byte("x"), 0o600))

	s = startStack(t, dir, 64)
	c = s.client(t)
	defer s.stop(t, c)
	got, err := c.Get(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, big, got)
	got, err = c.Get(ctx, "qmv0")
	require.NoError(t, err)
	assert.Equal(t, small, got)
	assert.Equal(t, files, s.valueFiles(t), "the orphan is gone, the named file kept")
}

// A value file that went missing is an error naming the key, not an empty
// value the queue would take for a request.
func TestMissingFileIsAnError(t *testing.T) {
	s := startStack(t, t.TempDir(), 16)
	c := s.client(t)
	defer s.stop(t, c)
	ctx := context.Background()
	require.NoError(t, c.Set(ctx, "7", value("7", 1, 100)))
	files := s.valueFiles(t)
	require.Len(t, files, 1)
	require.NoError(t, os.Remove(filepath.Join(s.cfg.Directory, clientDir(component.KindExporter, exporter, "logs"), files[0])))
	_, err := c.Get(ctx, "7")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `spillstorage: value of "7": `)
}

// A small value that starts like a pointer reads back as itself.
func TestValueShapedLikeAPointer(t *testing.T) {
	s := startStack(t, t.TempDir(), 1024)
	c := s.client(t)
	defer s.stop(t, c)
	ctx := context.Background()
	v := append(append([]byte(nil), pointer...), "not-a-file"...)
	require.NoError(t, c.Set(ctx, "k", v))
	got, err := c.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, v, got)
}

// failing is a keys' storage whose batches fail.
type failing struct{ storage.Client }

func (failing) Batch(context.Context, ...*storage.Operation) error { return errors.New("disk full") }

// A batch the keys' storage refuses leaves no file behind and returns its
// error.
func TestFailedBatchLeavesNoFile(t *testing.T) {
	dir := t.TempDir()
	c, err := openClient(context.Background(), failing{storage.NewNopClient()}, dir, 16, false, zapNop())
	require.NoError(t, err)
	err = c.Set(context.Background(), "1", value("1", 1, 100))
	require.EqualError(t, err, "disk full")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

// GetClient names what is wrong with the keys' storage.
func TestGetClientWithoutKeysStorage(t *testing.T) {
	cfg := &Config{Storage: keysID, Directory: t.TempDir(), MinFileSize: 16}
	ext, err := NewFactory().Create(context.Background(), extensiontest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), host{Host: componenttest.NewNopHost()}))
	_, err = ext.(storage.Extension).GetClient(context.Background(), component.KindExporter, exporter, "")
	require.EqualError(t, err, "spillstorage: storage: no extension file_storage (add it to service::extensions)")
	require.NoError(t, ext.Shutdown(context.Background()))
}

func zapNop() *zap.Logger { return zap.NewNop() }

// A queue file_storage held before spillstorage was put in front of it
// (an upgrade with a backlog) reads as it was, and is replaced as usual.
func TestValuesStoredBeforeSpillstorageRead(t *testing.T) {
	s := startStack(t, t.TempDir(), 16)
	ctx := context.Background()
	direct, err := s.keys.(storage.Extension).GetClient(ctx, component.KindExporter, exporter, "logs")
	require.NoError(t, err)
	old := value("3", 1, 100)
	require.NoError(t, direct.Set(ctx, "3", old))
	require.NoError(t, direct.Close(ctx))

	c := s.client(t)
	defer s.stop(t, c)
	got, err := c.Get(ctx, "3")
	require.NoError(t, err)
	assert.Equal(t, old, got)
	require.NoError(t, c.Set(ctx, "3", value("3", 2, 100)))
	assert.Len(t, s.valueFiles(t), 1)
}

// A file name an earlier run still uses (the clock went back since) is
// skipped, not overwritten.
func TestTakenFileNameIsSkipped(t *testing.T) {
	dir := t.TempDir()
	c, err := openClient(context.Background(), storage.NewNopClient(), dir, 16, false, zapNop())
	require.NoError(t, err)
	next := c.next.Load()
	taken := filepath.Join(dir, strconv.FormatUint(next+1, 36))
	require.NoError(t, os.WriteFile(taken, []byte("queued earlier"), 0o600))
	name, err := c.write(value("k", 1, 100))
	require.NoError(t, err)
	assert.Equal(t, strconv.FormatUint(next+2, 36), name)
	got, err := os.ReadFile(taken)
	require.NoError(t, err)
	assert.Equal(t, "queued earlier", string(got))
}
