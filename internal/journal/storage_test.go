package journal_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// Storage wrappers that fail, count, or hold the journal's storage
// operations, for tests to reach the interleavings they are about.

// countingStorage counts the journal's storage operations, and fails them
// when told to.
type countingStorage struct {
	logical.Storage
	puts, gets, deletes atomic.Int32
	failPut, failDelete atomic.Bool
}

func (s *countingStorage) Put(ctx context.Context, entry *logical.StorageEntry) error {
	s.puts.Add(1)
	if s.failPut.Load() {
		return errInjected
	}
	return s.Storage.Put(ctx, entry)
}

func (s *countingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	s.gets.Add(1)
	return s.Storage.Get(ctx, key)
}

func (s *countingStorage) Delete(ctx context.Context, key string) error {
	s.deletes.Add(1)
	if s.failDelete.Load() {
		return errInjected
	}
	return s.Storage.Delete(ctx, key)
}

// gatedStorage holds the first write until the test opens the gate, and
// holds a deletion of the page being written until that write is done.
type gatedStorage struct {
	logical.Storage
	putKey                    atomic.Pointer[string]
	putEntered, open, putDone chan struct{}
	deleteEntered             chan struct{}
	putOnce, deleteOnce       sync.Once
	openOnce                  sync.Once
	// failPut makes the held write fail once the gate opens.
	failPut bool
}

// newGate returns a gate on s, opened at the latest when the test ends,
// before its journal closes.
func newGate(t *testing.T, s logical.Storage, failPut bool) *gatedStorage {
	g := &gatedStorage{Storage: s, putEntered: make(chan struct{}), open: make(chan struct{}),
		putDone: make(chan struct{}), deleteEntered: make(chan struct{}), failPut: failPut}
	t.Cleanup(g.openGate)
	return g
}

// openGate lets the held write go on.
func (g *gatedStorage) openGate() { g.openOnce.Do(func() { close(g.open) }) }

func (g *gatedStorage) Put(ctx context.Context, entry *logical.StorageEntry) error {
	gated := false
	g.putOnce.Do(func() { gated = true })
	if !gated {
		return g.Storage.Put(ctx, entry)
	}
	g.putKey.Store(&entry.Key)
	close(g.putEntered)
	<-g.open
	defer close(g.putDone)
	if g.failPut {
		return errInjected
	}
	return g.Storage.Put(ctx, entry)
}

func (g *gatedStorage) Delete(ctx context.Context, key string) error {
	if written := g.putKey.Load(); written != nil && *written == key {
		g.deleteOnce.Do(func() { close(g.deleteEntered) })
		<-g.putDone
	}
	return g.Storage.Delete(ctx, key)
}

// awaitPut waits until the gate holds a write.
func (g *gatedStorage) awaitPut(t *testing.T) {
	t.Helper()
	await(t, g.putEntered, "no journal write began")
}

// ctxStorage fails a write whose context has ended, as a storage backend
// may.
type ctxStorage struct{ logical.Storage }

func (s ctxStorage) Put(ctx context.Context, entry *logical.StorageEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.Storage.Put(ctx, entry)
}

// heldReads holds the first read of the page at key after it has read it,
// until released: a slow storage read.
type heldReads struct {
	logical.Storage
	key                   string
	read, release         chan struct{}
	readOnce, releaseOnce sync.Once
}

// newHeldReads holds the first read of key in s, released at the latest
// when the test ends, before its journal closes.
func newHeldReads(t *testing.T, s logical.Storage, key string) *heldReads {
	h := &heldReads{Storage: s, key: key, read: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(h.free)
	return h
}

// free lets the held read go on.
func (h *heldReads) free() { h.releaseOnce.Do(func() { close(h.release) }) }

func (h *heldReads) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	entry, err := h.Storage.Get(ctx, key)
	if key == h.key {
		h.readOnce.Do(func() {
			close(h.read)
			<-h.release
		})
	}
	return entry, err
}

// heldDeletes holds the first deletion of a page until released, and
// records whether its context was cancelled meanwhile.
type heldDeletes struct {
	logical.Storage
	entered, release        chan struct{}
	deleteOnce, releaseOnce sync.Once
	mu                      sync.Mutex
	ctxErr                  error
}

// newHeldDeletes holds the first deletion in s, released at the latest
// when the test ends, before its journal closes.
func newHeldDeletes(t *testing.T, s logical.Storage) *heldDeletes {
	h := &heldDeletes{Storage: s, entered: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(h.free)
	return h
}

// free lets the held deletion go on.
func (h *heldDeletes) free() { h.releaseOnce.Do(func() { close(h.release) }) }

func (h *heldDeletes) Delete(ctx context.Context, key string) error {
	h.deleteOnce.Do(func() {
		close(h.entered)
		<-h.release
		h.mu.Lock()
		defer h.mu.Unlock()
		h.ctxErr = ctx.Err()
	})
	return h.Storage.Delete(ctx, key)
}
