package beyondidentity

import (
	"container/heap"
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// The journal covers every fresh token from Beyond Identity's answer until
// Vault holds it: should the node die meanwhile, the active node (the same
// after a restart, a new one after a failover) finds the token in the
// journal and revokes it.
//
// It does what a write-ahead entry per token did, in fewer storage commits,
// and covers longer:
//   - Requests at once share one page: one commit covers them all, and each
//     waits for it before its answer can leave.
//   - A request hands its token over when it returns. Once every token of a
//     page is handed over, the page is done handoverDelay later, so that
//     Vault has long stored the leases of the answers (it does so right
//     after the plugin returns).
//   - A done page is written over by the next batch's page: the commit that
//     covers new tokens also lets the old ones go, so a busy mount commits
//     once per batch and deletes nothing. A page that no batch takes within
//     reuseWindow is deleted in the background, a commit no request waits
//     for.
//
// So every token is covered from the commit of its page until well after
// its lease is stored: the write-ahead entry's gap (a crash between deleting
// the entry and Vault storing the lease left a token nobody held) is
// closed. The price is on the other side: a crash within handoverDelay
// (plus at most reuseWindow) of the last answer of a page's batch (the
// requests of a batch answer together, unless one is slow) revokes the
// page's tokens although their leases live; their consumers read new ones,
// and the leases' own revocations later find the tokens ended. A plugin that stops cleanly (seal,
// step-down, unmount, upgrade) removes the done pages first.
//
// Tokens whose whole life is shorter than journalMinAge need no cover: they
// end before recovery could act.

// journalPrefix holds the pages: node-local (the cluster that minted a
// token revokes it) and seal-wrapped (they hold tokens).
const journalPrefix = "journal/"

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

// handoverRetry is how long a failed deletion waits to be tried again.
const handoverRetry = 10 * time.Second

// Kinds of journal entries: what recovery must check before revoking.
const (
	entryCreds  = "creds"  // a creds request's token: revoke it
	entryStatic = "static" // a static role's new token: revoke it unless the role holds it
)

// journalEntry is one covered token.
type journalEntry struct {
	issuedToken
	Token string `json:"access_token"`
	Kind  string `json:"kind"`
}

// journalPage is the tokens of one batch of requests that are not handed
// over yet.
type journalPage struct {
	Created time.Time               `json:"created"`
	Entries map[string]journalEntry `json:"entries"`
}

// ticket names a covered token: its page and its entry in it. The zero
// ticket is a token that needed no cover.
type ticket struct{ page, entry string }

// pageState is what this process knows of a page it wrote: not the tokens,
// which only storage keeps, but which entries are handed over.
type pageState struct {
	s       logical.Storage
	entries int
	handed  map[string]bool
	// created is when the page was written: recovery leaves younger pages
	// alone without reading them.
	created time.Time
	// done is when the page may be written over or deleted: handoverDelay
	// after its last token was handed over. Zero until then.
	done time.Time
	// claimed says a batch, the remover or recovery is working on the page,
	// and no one else may touch it.
	claimed bool
}

func (p *pageState) complete() bool { return len(p.handed) == p.entries }

// donePage is a page in the queue of done pages.
type donePage struct {
	key  string
	done time.Time
}

// doneQueue holds the complete pages, the earliest done first
// (container/heap), so that the work per page does not grow with the pages
// stored. An item whose page has since been claimed, rewritten or removed
// is stale and skipped.
type doneQueue []donePage

func (q doneQueue) Len() int           { return len(q) }
func (q doneQueue) Less(i, k int) bool { return q[i].done.Before(q[k].done) }
func (q doneQueue) Swap(i, k int)      { q[i], q[k] = q[k], q[i] }
func (q *doneQueue) Push(x any)        { *q = append(*q, x.(donePage)) }
func (q *doneQueue) Pop() any {
	last := (*q)[len(*q)-1]
	*q = (*q)[:len(*q)-1]
	return last
}

// journal writes the pages of one mount.
type journal struct {
	b      *backend
	covers batcher[*coverItem]

	mu sync.Mutex
	// pages are the pages this process wrote and that are still stored;
	// done, those whose every token is handed over.
	pages map[string]*pageState
	done  doneQueue
	// remover says whether the goroutine deleting done pages runs; wake
	// hurries it.
	remover bool
	wake    chan struct{}
	// prefix and seq name pages and entries uniquely across processes and
	// nodes, and across the batches that write over a page.
	prefix string
	seq    atomic.Uint64
}

type coverItem struct {
	ctx    context.Context
	s      logical.Storage
	entry  journalEntry
	ticket ticket
}

func newJournal(b *backend) *journal {
	j := &journal{b: b, pages: map[string]*pageState{}, wake: make(chan struct{}, 1),
		prefix: strconv.FormatInt(time.Now().UnixNano(), 36)}
	j.covers.run, j.covers.most = j.writeCovers, maxPageEntries
	return j
}

// cover journals a fresh token, unless it ends before recovery could act,
// and returns once the entry is committed.
func (j *journal) cover(ctx context.Context, s logical.Storage, t issuedToken, kind string) (ticket, error) {
	if t.endsBy().Sub(j.b.clock.Now()) < journalMinAge {
		return ticket{}, nil
	}
	item, err := j.covers.do(&coverItem{ctx: ctx, s: s, entry: journalEntry{issuedToken: t, Token: t.AccessToken.Reveal(), Kind: kind}})
	return item.value.ticket, err
}

// writeCovers writes one page holding every token of the batch: over a
// done page when there is one, else under a new key.
func (j *journal) writeCovers(items []*batchItem[*coverItem]) {
	first := items[0].value
	now := j.b.clock.Now()
	key, old := j.claimDone(now, false)
	if old == nil {
		key = j.newID()
	}
	page := &journalPage{Created: now, Entries: make(map[string]journalEntry, len(items))}
	for _, item := range items {
		id := j.newID()
		page.Entries[id] = item.value.entry
		item.value.ticket = ticket{page: key, entry: id}
	}
	err := putJSON(context.WithoutCancel(first.ctx), first.s, journalPrefix+key, "the journal of new tokens", page)
	j.mu.Lock()
	switch {
	case err == nil:
		j.pages[key] = &pageState{s: first.s, entries: len(items), handed: map[string]bool{}, created: now}
	case old != nil:
		// Storage holds the done page still, or the new one whose tokens
		// the failed requests revoke: done either way, as before.
		j.release(key, old)
	}
	j.mu.Unlock()
	if err == nil {
		j.committed("cover", len(items))
		if old != nil {
			j.b.metrics.journalTokens.WithLabelValues("handover").Add(float64(old.entries))
		}
	}
	for _, item := range items {
		item.finish(err)
	}
}

// newID names a page or an entry.
func (j *journal) newID() string {
	return j.prefix + "-" + strconv.FormatUint(j.seq.Add(1), 36)
}

// claimDone takes the earliest page done by now, for a batch to write over
// it or (remove) for the remover to delete it once its reuseWindow has
// passed too. It returns no page when there is none. (A journal is one
// mount's: its pages are all in the same storage.)
func (j *journal) claimDone(now time.Time, remove bool) (string, *pageState) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if remove {
		now = now.Add(-reuseWindow)
	}
	for len(j.done) > 0 && !j.done[0].done.After(now) {
		item := heap.Pop(&j.done).(donePage)
		page := j.pages[item.key]
		if page == nil || page.claimed || !page.done.Equal(item.done) {
			continue // stale
		}
		page.claimed = true
		return item.key, page
	}
	return "", nil
}

// release puts back a done page whose claim did not end in its removal or
// rewriting. The caller holds j.mu.
func (j *journal) release(key string, page *pageState) {
	page.claimed = false
	j.queueDone(key, page)
}

// queueDone queues a done page for a batch to write over or the remover to
// delete, and starts the remover unless it runs. The caller holds j.mu.
func (j *journal) queueDone(key string, page *pageState) {
	heap.Push(&j.done, donePage{key: key, done: page.done})
	if !j.remover {
		j.remover = true
		go j.removeIdle()
	}
}

// handOver marks a token as no longer the journal's: held by a lease or a
// static role, or revoked. When that completes its page, the page is done
// handoverDelay later.
func (j *journal) handOver(t ticket) {
	if t == (ticket{}) {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	page := j.pages[t.page]
	if page == nil {
		return // recovery took care of the page
	}
	page.handed[t.entry] = true
	if !page.complete() {
		return
	}
	page.done = j.b.clock.Now().Add(handoverDelay)
	j.queueDone(t.page, page)
}

// removeIdle runs while done pages wait: it sleeps until the earliest has
// waited reuseWindow for a batch, deletes every page that has, and stops
// when none is left.
func (j *journal) removeIdle() {
	for {
		next, ok := j.nextRemoval()
		if !ok {
			return
		}
		if wait := next.Sub(j.b.clock.Now()); wait > 0 {
			timer := j.b.clock.NewTimer(wait)
			select {
			case <-timer.C():
			case <-j.wake:
			}
			timer.Stop()
		}
		j.removeDone(j.b.clock.Now())
	}
}

// nextRemoval is when the earliest done page is to be deleted; when no page
// waits, the remover is marked stopped.
func (j *journal) nextRemoval() (time.Time, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.done) == 0 {
		j.remover = false
		return time.Time{}, false
	}
	return j.done[0].done.Add(reuseWindow), true
}

// removeDone deletes the done pages no batch wrote over within reuseWindow
// by now. A page whose deletion fails is tried again handoverRetry later.
func (j *journal) removeDone(now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Claim them all first: a page put back after a failure is not taken
	// again in this pass.
	claimed := map[string]*pageState{}
	for key, page := j.claimDone(now, true); page != nil; key, page = j.claimDone(now, true) {
		claimed[key] = page
	}
	for key, page := range claimed {
		err := page.s.Delete(ctx, journalPrefix+key)
		j.mu.Lock()
		if err == nil {
			delete(j.pages, key)
		} else {
			page.done = j.b.clock.Now().Add(handoverRetry - reuseWindow)
			j.release(key, page)
		}
		j.mu.Unlock()
		if err != nil {
			j.b.Logger().Warn("deleting a handed-over page of the journal failed; trying again", "tokens", page.entries,
				"retry_in", handoverRetry.String(), "error", err)
			continue
		}
		j.committed("handover", page.entries)
	}
}

// flush deletes every complete page now, done or not: the plugin is
// stopping cleanly, and Vault has stored the leases of every answer.
func (j *journal) flush() {
	j.removeDone(time.Unix(1<<40, 0))
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// committed counts one storage write of the journal and its tokens.
func (j *journal) committed(op string, tokens int) {
	j.b.metrics.journalCommits.WithLabelValues(op).Inc()
	j.b.metrics.journalTokens.WithLabelValues(op).Add(float64(tokens))
}
