package journal

import (
	"container/heap"
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// handoverRetry is how long a failed deletion waits to be tried again.
const handoverRetry = 10 * time.Second

// pageState is what this process knows of a page it wrote: not the
// entries, which only storage keeps, but which are handed over.
type pageState struct {
	s       logical.Storage
	entries int
	handed  map[string]bool
	// created is when the page was written: recovery leaves younger pages
	// alone without reading them.
	created time.Time
	// done is when the page may be written over or deleted: handoverDelay
	// after its last entry was handed over. Zero until then.
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

// claimDone takes the earliest page done by now, for a batch to write over
// it or for the remover to delete it. It returns no page when there is
// none. The caller holds j.mu.
func (j *Journal[E]) claimDone(now time.Time) (string, *pageState) {
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
func (j *Journal[E]) release(key string, page *pageState) {
	page.claimed = false
	j.queueDone(key, page)
}

// queueDone queues a done page for a batch to write over or the remover to
// delete, and starts the remover unless it runs or the journal is closed.
// The caller holds j.mu.
func (j *Journal[E]) queueDone(key string, page *pageState) {
	heap.Push(&j.done, donePage{key: key, done: page.done})
	if j.remover || j.closed {
		return
	}
	j.remover = true
	j.removers.Add(1)
	go func() {
		defer j.removers.Done()
		j.removeIdle()
	}()
}

// removeIdle runs while done pages wait: it sleeps until the earliest has
// waited reuseWindow for a batch, deletes every page that has, and stops
// when none is left or the journal is closed.
func (j *Journal[E]) removeIdle() {
	for {
		next, ok := j.nextRemoval()
		if !ok {
			return
		}
		if wait := next.Sub(j.clock.Now()); wait > 0 && !j.sleep(wait) {
			continue // closed: nextRemoval stops the remover
		}
		j.removeDone(j.clock.Now())
	}
}

// sleep waits d on the journal's clock, or less when woken; it reports
// false once the journal is closed.
func (j *Journal[E]) sleep(d time.Duration) bool {
	timer := j.clock.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C():
	case <-j.wake:
	case <-j.ctx.Done():
		return false
	}
	return true
}

// nextRemoval is when the earliest done page is to be deleted; when no page
// waits, or the journal is closed, the remover is marked stopped.
func (j *Journal[E]) nextRemoval() (time.Time, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.done) == 0 || j.closed {
		j.remover = false
		return time.Time{}, false
	}
	return j.done[0].done.Add(reuseWindow), true
}

// removeDone deletes the done pages no batch wrote over within reuseWindow
// by now. A page whose deletion fails is tried again handoverRetry later.
func (j *Journal[E]) removeDone(now time.Time) {
	// A deletion under way finishes even if the journal closes meanwhile:
	// cut short, it would leave a handed-over page for recovery to settle.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(j.ctx), time.Minute)
	defer cancel()
	// Claim them all first: a page put back after a failure is not taken
	// again in this pass.
	claimed := map[string]*pageState{}
	j.mu.Lock()
	for key, page := j.claimDone(now.Add(-reuseWindow)); page != nil; key, page = j.claimDone(now.Add(-reuseWindow)) {
		claimed[key] = page
	}
	j.mu.Unlock()
	for key, page := range claimed {
		err := page.s.Delete(ctx, Prefix+key)
		j.mu.Lock()
		if err == nil {
			delete(j.pages, key)
		} else {
			page.done = j.clock.Now().Add(handoverRetry - reuseWindow)
			j.release(key, page)
		}
		j.mu.Unlock()
		if err != nil {
			j.logger.Warn("deleting a handed-over page of the journal failed; trying again", "tokens", page.entries,
				"retry_in", handoverRetry.String(), "error", err)
			continue
		}
		j.committed("handover", 1, page.entries)
	}
}

// Flush deletes now every page whose entries are all handed over, done or
// not: for an owner that is stopping cleanly, once Vault has stored the
// leases of every answer.
func (j *Journal[E]) Flush() {
	j.removeDone(time.Unix(1<<40, 0))
	select {
	case j.wake <- struct{}{}:
	default:
	}
}
