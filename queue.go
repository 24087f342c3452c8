package beyondidentity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/queue"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
)

// The background work of a mount runs from one schedule, on the active
// node, without any request: static role rotations and the revocation of
// their retired tokens, retries of failed revocations, and the recovery of
// the journal. It is the shape of Vault's database engine: one priority
// queue (sdk/queue), keyed by the storage key of the record it stands for,
// one loop that ticks on the injected clock and pops what is due, and
// populateQueue, which finds the records again in storage. A record in
// storage is the truth; the queue only says when to look at it next.

// queueTick is how often the loop looks for due work: rotations run within
// a second or two of their due time.
const queueTick = time.Second

// backgroundWorkers bounds the queue's items run at once; the mount's call
// limits bound the calls to Beyond Identity.
const backgroundWorkers = 4

// recoveryKey is the queue's item for the journal's recovery, which
// populateQueue pushes every time it runs (once a minute, with Vault's
// periodic function).
const recoveryKey = journal.Prefix

// workQueue is the schedule: sdk/queue refuses a key already queued, so
// every reschedule pops the key first, under mu.
type workQueue struct {
	mu    sync.Mutex
	items *queue.PriorityQueue
	// running are the keys popped and being worked on: populateQueue
	// leaves them to their run, which pushes them again as needed.
	running map[string]bool
}

func newWorkQueue() *workQueue {
	return &workQueue{items: queue.New(), running: map[string]bool{}}
}

// pushItem schedules key at due, replacing any earlier schedule of it.
func (b *backend) pushItem(key string, due time.Time) {
	q := b.queue
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, err := q.items.PopByKey(key); err != nil {
		b.Logger().Error("rescheduling background work failed", "key", key, "error", err)
	}
	if err := q.items.Push(&queue.Item{Key: key, Priority: due.UnixNano()}); err != nil {
		b.Logger().Error("scheduling background work failed", "key", key, "error", err)
	}
}

// popFromQueueByKey unschedules key: its record is gone.
func (b *backend) popFromQueueByKey(key string) {
	q := b.queue
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, err := q.items.PopByKey(key); err != nil {
		b.Logger().Error("unscheduling background work failed", "key", key, "error", err)
	}
}

// takeDue pops the keys due by now and marks them running.
func (q *workQueue) takeDue(now time.Time) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var due []string
	for {
		item, err := q.items.Pop()
		if err != nil {
			return due // empty
		}
		if item.Priority > now.UnixNano() {
			// Pushing back what was just popped cannot meet a duplicate.
			_ = q.items.Push(item)
			return due
		}
		q.running[item.Key] = true
		due = append(due, item.Key)
	}
}

func (q *workQueue) finished(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.running, key)
}

// known reports whether key is queued or running.
func (q *workQueue) known(key string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.running[key] {
		return true
	}
	// PopByKey is the queue's only lookup: put the item straight back.
	item, _ := q.items.PopByKey(key)
	if item == nil {
		return false
	}
	_ = q.items.Push(item)
	return true
}

// runDue runs every item due by now, a few at a time, and returns when
// they are done. Each run schedules its item again as its record needs.
func (b *backend) runDue(ctx context.Context, s logical.Storage) {
	keys := b.queue.takeDue(b.clock.Now())
	slots := make(chan struct{}, backgroundWorkers)
	var wg sync.WaitGroup
	for _, key := range keys {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { b.queue.finished(key); <-slots; wg.Done() }()
			b.runItem(ctx, s, key)
		}()
	}
	wg.Wait()
}

// runItem is one item's turn, by the kind of record its key names.
func (b *backend) runItem(ctx context.Context, s logical.Storage, key string) {
	switch {
	case key == recoveryKey:
		settle := func(ctx context.Context, entry journalEntry) bool { return b.recoverEntry(ctx, s, entry) }
		if err := b.journal.Recover(ctx, s, settle); err != nil {
			b.Logger().Warn("recovering the journal of new tokens failed; the next periodic run tries again", "error", err)
		}
	case strings.HasPrefix(key, revocationPrefix):
		b.retryRevocation(ctx, s, strings.TrimPrefix(key, revocationPrefix))
	case strings.HasPrefix(key, staticRolePrefix):
		b.runStaticRole(ctx, s, strings.TrimPrefix(key, staticRolePrefix))
	}
}

// runQueue is the background loop: it fills the queue from storage, then
// ticks on the injected clock and runs what is due, until ctx ends.
func (b *backend) runQueue(ctx context.Context, s logical.Storage) {
	if err := b.populateQueue(ctx, s); err != nil {
		// Vault's periodic function populates again within a minute.
		b.Logger().Warn("loading the background work from storage failed; trying again with the next periodic run", "error", err)
	}
	for {
		timer := b.clock.NewTimer(queueTick)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		}
		b.runDue(ctx, s)
	}
}

// populateQueue finds in storage the records the queue may have missed (a
// failed load at start, a record written by another process, a storage
// error) and schedules them; a key already queued or running keeps its
// schedule. A record that cannot be read or decoded is logged and skipped,
// never a reason to leave the others. It also schedules the journal's
// recovery now.
func (b *backend) populateQueue(ctx context.Context, s logical.Storage) error {
	b.pushItem(recoveryKey, b.clock.Now())
	errs := []error{b.populatePrefix(ctx, s, revocationPrefix, b.revocationDue)}
	// Rotation runs on the primary cluster only: a performance secondary
	// serves the tokens it replicates.
	if !b.System().ReplicationState().HasState(consts.ReplicationPerformanceSecondary) {
		errs = append(errs, b.populatePrefix(ctx, s, staticRolePrefix, b.staticRoleDue))
	}
	return errors.Join(errs...)
}

// populatePrefix schedules the records under prefix that the queue does
// not know, at the time due says (false: nothing to schedule).
func (b *backend) populatePrefix(ctx context.Context, s logical.Storage, prefix string,
	due func(ctx context.Context, s logical.Storage, name string) (time.Time, bool, error)) error {
	names, err := s.List(ctx, prefix)
	if err != nil {
		return fmt.Errorf("listing %s: %w", prefix, err)
	}
	for _, name := range names {
		key := prefix + name
		if b.queue.known(key) {
			continue
		}
		at, ok, err := due(ctx, s, name)
		switch {
		case err != nil:
			b.Logger().Error("skipping a record the background work cannot read", "key", key, "error", err)
		case ok:
			b.pushItem(key, at)
		}
	}
	return nil
}
