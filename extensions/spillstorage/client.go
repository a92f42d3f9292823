package spillstorage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"
)

// pointer starts the value kept in the keys' storage for a value that is
// in a file; the file's name follows. No protobuf message (a queued
// request) can start with a zero byte, and a small value that happened to
// start with it is written to a file like a large one, so a stored value
// is a pointer exactly when it starts with this.
var pointer = []byte("\x00decisiontrace-spill-v1\x00")

// client keeps large values in files and everything else in inner. A
// write goes: the new files, then one batch in inner (atomic there), then
// the files that batch replaced or deleted are released. A crash between
// leaves files no key names, which the next openClient removes; it never
// leaves a key naming a file that is not there.
//
// A released file is kept and the next value is written over it: creating
// a file was most of the queue's cost (openat with O_CREAT was 15% of the
// collector's CPU under flat-out load, ext4), writing over one that exists
// half of it, and the pages it already has are not allocated again. At
// most maxFree files are kept, and never more than there are values in
// files: a queue that drains gives its space back, an empty one keeps
// nothing. A kept file is one no key names, as a removed one: written over
// only after the batch that deleted or replaced its value committed, and
// read again only through a key that names it anew. The persistent queue
// reads a request once before acknowledging it, never while the same
// request is deleted.
type client struct {
	inner  storage.Client
	dir    string
	min    int
	fsync  bool
	logger *zap.Logger
	// next names new files: it starts at the clock, so names from an
	// earlier run of the process are never reused.
	next atomic.Uint64

	mu   sync.Mutex
	free []string // files no key names, to write over
	live int      // files keys name, or that a batch in flight writes
}

// maxFree bounds the files kept to be written over: more than the
// requests a queue writes while its consumers acknowledge as many.
const maxFree = 64

func openClient(ctx context.Context, inner storage.Client, dir string, minSize int, fsync bool, logger *zap.Logger) (*client, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spillstorage: %w", err)
	}
	c := &client{inner: inner, dir: dir, min: minSize, fsync: fsync, logger: logger}
	c.next.Store(uint64(time.Now().UnixNano()))
	named, err := c.removeOrphans(ctx)
	if err != nil {
		return nil, err
	}
	c.live = named
	return c, nil
}

// removeOrphans removes the files no key names (left by a crash between a
// file and its batch, or a batch and the removals after it), and returns
// how many files keys name.
func (c *client) removeOrphans(ctx context.Context) (int, error) {
	walker, ok := c.inner.(storage.Walker)
	if !ok {
		c.logger.Warn("the keys' storage cannot list its keys: files left by a crash are not removed", zap.String("directory", c.dir))
		return 0, nil
	}
	named := map[string]bool{}
	err := walker.Walk(ctx, func(_ string, v []byte) ([]*storage.Operation, error) {
		if name, ok := fileOf(v); ok {
			named[name] = true
		}
		return nil, nil
	})
	if err != nil {
		return 0, fmt.Errorf("spillstorage: listing keys: %w", err)
	}
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return 0, fmt.Errorf("spillstorage: %w", err)
	}
	removed := 0
	for _, e := range entries {
		if !named[e.Name()] {
			if err := os.Remove(filepath.Join(c.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return 0, fmt.Errorf("spillstorage: %w", err)
			}
			removed++
		}
	}
	if removed > 0 {
		c.logger.Info("removed value files no key names (a crash between a write's steps)", zap.Int("files", removed), zap.String("directory", c.dir))
	}
	return len(named), nil
}

// fileOf returns the file a stored value points to.
func fileOf(v []byte) (string, bool) {
	if !bytes.HasPrefix(v, pointer) {
		return "", false
	}
	return string(v[len(pointer):]), true
}

func (c *client) Get(ctx context.Context, key string) ([]byte, error) {
	op := storage.GetOperation(key)
	if err := c.Batch(ctx, op); err != nil {
		return nil, err
	}
	return op.Value, nil
}

func (c *client) Set(ctx context.Context, key string, value []byte) error {
	return c.Batch(ctx, storage.SetOperation(key, value))
}

func (c *client) Delete(ctx context.Context, key string) error {
	return c.Batch(ctx, storage.DeleteOperation(key))
}

// Batch applies ops in order, atomically as inner does: every Set and
// Delete is preceded, in the same inner batch, by a Get of the value it
// replaces, so that the file of a replaced value is known and removed.
func (c *client) Batch(ctx context.Context, ops ...*storage.Operation) error {
	innerOps := make([]*storage.Operation, 0, 2*len(ops))
	var written []string
	var replaced []*storage.Operation
	for _, op := range ops {
		switch op.Type {
		case storage.Get:
			innerOps = append(innerOps, op)
		case storage.Set, storage.Delete:
			prev := storage.GetOperation(op.Key)
			replaced = append(replaced, prev)
			innerOps = append(innerOps, prev)
			if op.Type == storage.Delete || !c.spills(op.Value) {
				innerOps = append(innerOps, op)
				continue
			}
			name, err := c.write(op.Value)
			if err != nil {
				c.forget(written)
				return err
			}
			written = append(written, name)
			innerOps = append(innerOps, storage.SetOperation(op.Key, append(append([]byte(nil), pointer...), name...)))
		default:
			c.forget(written)
			return fmt.Errorf("spillstorage: operation %d on %q: unknown type", op.Type, op.Key)
		}
	}
	if err := c.inner.Batch(ctx, innerOps...); err != nil {
		c.forget(written)
		return err
	}
	// The batch's Gets first: one may read a file a later operation of the
	// same batch replaced.
	var err error
	for _, op := range ops {
		if op.Type != storage.Get {
			continue
		}
		name, ok := fileOf(op.Value)
		if !ok {
			continue
		}
		v, rerr := os.ReadFile(filepath.Join(c.dir, name))
		if rerr != nil {
			// The persistent queue skips a request it cannot read, and says
			// so only at debug level: a lost request must be seen.
			c.logger.Error("a stored value's file cannot be read; the value is lost", zap.String("key", op.Key), zap.String("file", name), zap.Error(rerr))
			err = errors.Join(err, fmt.Errorf("spillstorage: value of %q: %w", op.Key, rerr))
			continue
		}
		op.Value = v
	}
	var old []string
	for _, prev := range replaced {
		if name, ok := fileOf(prev.Value); ok {
			old = append(old, name)
		}
	}
	c.release(old)
	return err
}

// spills tells whether v goes to a file: a large value, or one that would
// read back as a pointer.
func (c *client) spills(v []byte) bool {
	return len(v) >= c.min || bytes.HasPrefix(v, pointer)
}

// write puts v in a file no key names, a released one if there is one, and
// returns its name; the file counts as live until released or forgotten.
func (c *client) write(v []byte) (string, error) {
	name, err := c.writeFile(v)
	if err == nil {
		c.mu.Lock()
		c.live++
		c.mu.Unlock()
	}
	return name, err
}

// writeFile is write without the count.
func (c *client) writeFile(v []byte) (string, error) {
	if name, ok := c.take(); ok {
		err := c.writeOver(name, v)
		if err == nil {
			return name, nil
		}
		c.logger.Warn("a released value file cannot be written over; writing a new one", zap.String("file", name), zap.Error(err))
		c.remove([]string{name})
	}
	var name, path string
	var f *os.File
	var err error
	// A name is taken only if the clock went back since an earlier run
	// whose files are still queued: the next one is tried.
	for range 1000 {
		name = strconv.FormatUint(c.next.Add(1), 36)
		path = filepath.Join(c.dir, name)
		f, err = os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return "", fmt.Errorf("spillstorage: %w", err)
	}
	_, err = f.Write(v)
	if err == nil && c.fsync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && c.fsync {
		err = syncDir(c.dir)
	}
	if err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("spillstorage: writing %s: %w", path, err)
	}
	return name, nil
}

// writeOver replaces the content of the existing file name with v.
// Truncating after the write, not on open, frees only the pages a shorter
// value leaves over.
func (c *client) writeOver(name string, v []byte) error {
	f, err := os.OpenFile(filepath.Join(c.dir, name), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(v)
	if err == nil {
		err = f.Truncate(int64(len(v)))
	}
	if err == nil && c.fsync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// take returns a released file to write over.
func (c *client) take() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.free)
	if n == 0 {
		return "", false
	}
	name := c.free[n-1]
	c.free = c.free[:n-1]
	return name, true
}

// release keeps files no key names any more to write over, and removes
// those over maxFree or over the values still in files.
func (c *client) release(names []string) {
	c.mu.Lock()
	c.live = max(c.live-len(names), 0)
	c.free = append(c.free, names...)
	var over []string
	if keep := min(maxFree, c.live); len(c.free) > keep {
		over = append(over, c.free[keep:]...)
		c.free = c.free[:keep]
	}
	c.mu.Unlock()
	c.remove(over)
}

// forget removes the files of a batch that did not commit.
func (c *client) forget(written []string) {
	c.mu.Lock()
	c.live = max(c.live-len(written), 0)
	c.mu.Unlock()
	c.remove(written)
}

// syncDir makes a new file's directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// remove removes value files no key names any more; one that cannot be
// removed is left for the next start's cleanup.
func (c *client) remove(names []string) {
	for _, name := range names {
		if err := os.Remove(filepath.Join(c.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.logger.Warn("value file not removed; the next start removes it", zap.String("file", name), zap.Error(err))
		}
	}
}

// Close removes the files kept to be written over (the next start would
// remove them as orphans anyway) and closes the keys' storage.
func (c *client) Close(ctx context.Context) error {
	c.mu.Lock()
	free := c.free
	c.free = nil
	c.mu.Unlock()
	c.remove(free)
	return c.inner.Close(ctx)
}
