package journal

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/clock"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/jsonstore"
)

// Prefix holds the pages. The caller keeps it node-local (the cluster that
// minted a token revokes it) and seal-wrapped (pages hold tokens).
const Prefix = "journal/"

// handoverDelay is how long a page stays after its last token was handed
// over, before the page is done: another batch may write over it.
const handoverDelay = 2 * time.Second

// reuseWindow is how long a done page waits for a batch to write over it
// before it is deleted.
const reuseWindow = time.Second

// maxPageEntries bounds the tokens of one page, so that a page (a few KiB
// per token) stays far below the size storage takes in one entry (Raft's
// max_entry_size is 1 MiB by default).
const maxPageEntries = 128

// what names the journal in errors, as operators have always read it.
const what = "the journal of new tokens"

// ErrClosed is returned by Cover once the journal is closed: nothing would
// remove the page after its tokens are handed over, so recovery would later
// settle tokens that their leases hold.
var ErrClosed = errors.New("the journal of new tokens is closed")

// Config is what a journal needs from its owner.
type Config struct {
	// Clock tells when pages are written, done and old; nil is the system
	// clock.
	Clock clock.Clock
	// Logger hears of deletions that fail; nil discards.
	Logger hclog.Logger
	// Committed, when set, is told of the journal's storage writes: op
	// "cover" (a page written, new or over a done one) or "handover" (a done
	// page deleted), with commits (1 per storage write) and the tokens the
	// write took on or let go of. When a cover writes over a done page it is
	// also told ("handover", 0, that page's entries): the tokens let go of
	// without a commit of their own.
	Committed func(op string, commits, tokens int)
}

// Ticket names a covered entry: its page and its entry in it. The zero
// Ticket is an entry that needed no cover (or whose cover failed).
type Ticket struct{ page, entry string }

// Journal writes the pages of one mount, all in the same storage. Make one
// with New.
type Journal[E any] struct {
	clock     clock.Clock
	logger    hclog.Logger
	committed func(op string, commits, tokens int)
	covers    batcher[*coverItem[E]]

	// ctx ends the remover's wait once the journal is closed (stop cancels
	// it); removers counts the remover goroutine for Close to wait for.
	ctx       context.Context
	stop      context.CancelFunc
	removers  sync.WaitGroup
	closeOnce sync.Once

	mu sync.Mutex
	// pages are the pages this process wrote and that are still stored;
	// done, those whose every token is handed over.
	pages map[string]*pageState
	done  doneQueue
	// remover says whether the goroutine deleting done pages runs; wake
	// hurries it.
	remover bool
	wake    chan struct{}
	// closed says Close has begun: no batch writes and no remover starts
	// anymore, as nothing would remove their pages.
	closed bool
}

// coverItem is one caller's entry in a batch, and the ticket the batch
// gives it.
type coverItem[E any] struct {
	ctx    context.Context
	s      logical.Storage
	entry  E
	ticket Ticket
}

// New returns a journal that covers entries of type E, stored as JSON.
func New[E any](cfg Config) *Journal[E] {
	// The journal outlives the request that makes it: Close calls stop.
	ctx, stop := context.WithCancel(context.Background()) //nolint:gosec // G118: stop is kept and called by Close
	j := &Journal[E]{clock: cfg.Clock, logger: cfg.Logger, committed: cfg.Committed, ctx: ctx, stop: stop,
		pages: map[string]*pageState{}, wake: make(chan struct{}, 1)}
	if j.clock == nil {
		j.clock = clock.Real{}
	}
	if j.logger == nil {
		j.logger = hclog.NewNullLogger()
	}
	if j.committed == nil {
		j.committed = func(string, int, int) {}
	}
	j.covers.run, j.covers.most = j.writeCovers, maxPageEntries
	return j
}

// Cover journals entry, unless its token ends (endsBy) less than MinAge
// from now: then recovery could never act on it, and Cover returns the zero
// Ticket. Otherwise it returns once the page holding the entry is
// committed; callers at once share one page write. Once the journal is
// closed, Cover fails with ErrClosed.
func (j *Journal[E]) Cover(ctx context.Context, s logical.Storage, entry E, endsBy time.Time) (Ticket, error) {
	j.mu.Lock()
	closed := j.closed
	j.mu.Unlock()
	if closed {
		return Ticket{}, ErrClosed
	}
	if endsBy.Sub(j.clock.Now()) < MinAge {
		return Ticket{}, nil
	}
	item, err := j.covers.do(&coverItem[E]{ctx: ctx, s: s, entry: entry})
	if err != nil {
		return Ticket{}, err
	}
	return item.value.ticket, nil
}

// writeCovers writes one page holding every entry of the batch: over a done
// page when there is one, else under a new key.
func (j *Journal[E]) writeCovers(items []*batchItem[*coverItem[E]]) {
	first := items[0].value
	now := j.clock.Now()
	j.mu.Lock()
	if j.closed {
		// Close has flushed: a page written now would outlive its handovers.
		j.mu.Unlock()
		for _, item := range items {
			item.finish(ErrClosed)
		}
		return
	}
	key, old := j.claimDone(now)
	j.mu.Unlock()
	if old == nil {
		key = newID()
	}
	p := &page[E]{Created: now, Entries: make(map[string]E, len(items))}
	for _, item := range items {
		id := newID()
		p.Entries[id] = item.value.entry
		item.value.ticket = Ticket{page: key, entry: id}
	}
	// Every caller of the batch waits for this write: the leader's
	// cancellation must not fail the others.
	err := jsonstore.Put(context.WithoutCancel(first.ctx), first.s, Prefix+key, what, p)
	j.mu.Lock()
	switch {
	case err == nil:
		j.pages[key] = &pageState{s: first.s, entries: len(items), handed: map[string]bool{}, created: now}
	case old != nil:
		// Storage holds the done page still, or the new one whose tokens
		// the failed callers settle themselves: done either way, as before.
		j.release(key, old)
	}
	j.mu.Unlock()
	if err == nil {
		j.committed("cover", 1, len(items))
		if old != nil {
			j.committed("handover", 0, old.entries)
		}
	}
	for _, item := range items {
		item.finish(err)
	}
}

// HandOver marks an entry as no longer the journal's: its token is held by
// a lease or a static role, or revoked. When that completes its page, the
// page is done handoverDelay later. Once the journal is closed, no remover
// runs: the caller that completes a page deletes it at once, or recovery
// would later settle tokens their leases hold.
func (j *Journal[E]) HandOver(t Ticket) {
	if t == (Ticket{}) {
		return
	}
	j.mu.Lock()
	page := j.pages[t.page]
	if page == nil {
		j.mu.Unlock()
		return // recovery took care of the page
	}
	page.handed[t.entry] = true
	if !page.complete() {
		j.mu.Unlock()
		return
	}
	page.done = j.clock.Now().Add(handoverDelay)
	j.queueDone(t.page, page)
	closed := j.closed
	j.mu.Unlock()
	if closed {
		j.Flush()
	}
}

// Close flushes the journal, then stops its remover and waits for it: once
// Close returns, no goroutine of the journal runs, and Cover fails with
// ErrClosed. Pages whose tokens are not all handed over stay for recovery.
// Calling Close again does nothing.
func (j *Journal[E]) Close() {
	j.closeOnce.Do(func() {
		j.mu.Lock()
		j.closed = true
		j.mu.Unlock()
		j.Flush()
		j.stop()
		j.removers.Wait()
	})
}

// processPrefix and seq name pages and entries uniquely across processes
// and nodes (the prefix is the process's start time), and across the
// batches that write over a page.
var (
	processPrefix = strconv.FormatInt(time.Now().UnixNano(), 36)
	seq           atomic.Uint64
)

// newID names a page or an entry.
func newID() string {
	return processPrefix + "-" + strconv.FormatUint(seq.Add(1), 36)
}
