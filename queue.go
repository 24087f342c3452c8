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
)

// The background work of a mount runs from one schedule, on the active
// node, without any request: static role rotations and the revocation of
// their retired tokens, retries of failed revocations, and the recovery of
// the journal of fresh tokens: the shape of Vault's database engine: one priority
// queue (sdk/queue), keyed by the storage key of the record it stands for,
// one loop that ticks on the injected clock and pops what is due, and
// populateQueue, which finds the records again in storage. A record in
// storage is the truth; the schedule only says when to look at it next.

// queueTick is how often the loop looks for due work: rotations run within
// a second or two of their due time.
const queueTick = time.Second

// taskSlots bounds the items of each task run at once, so that slow
// revocations (a hanging Beyond Identity holds each for up to
// request_timeout) never keep a rotation from running on time, nor the
// other way round. The mount's call limits bound the calls to Beyond
// Identity.
var taskSlots = map[task]int{taskRotation: 4, taskRevocation: 4, taskRecovery: 1}

// task is what an item of the schedule does, by the record its key names.
type task string

const (
	taskRotation   task = "rotation"   // a static role: rotate it, revoke its retired tokens
	taskRevocation task = "revocation" // a failed revocation: retry it
	taskRecovery   task = "recovery"   // the journal (recoveryKey), which populateQueue schedules each time it runs
)

// workQueue is the background work's queue: sdk/queue refuses a key
// already queued, so every reschedule pops the key first, under mu.
type workQueue struct {
	mu    sync.Mutex
	items *queue.PriorityQueue
	// running are the keys popped and being worked on: a key is never run
	// twice at once, and populateQueue leaves them to their run, which
	// pushes them again as needed.
	running map[string]bool
	// slots hold a token per item of each task under way.
	slots map[task]chan struct{}
	// inFlight counts the items under way, for clean to wait for.
	inFlight sync.WaitGroup
}

func newWorkQueue() *workQueue {
	q := &workQueue{items: queue.New(), running: map[string]bool{}, slots: map[task]chan struct{}{}}
	for t, n := range taskSlots {
		q.slots[t] = make(chan struct{}, n)
	}
	return q
}

// taskOf is the task of the record key names.
func taskOf(key string) task {
	switch {
	case key == recoveryKey:
		return taskRecovery
	case strings.HasPrefix(key, revocationPrefix):
		return taskRevocation
	}
	return taskRotation
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

// pushItemUnlessKnown schedules key at due unless it is queued or running:
// populateQueue's push, which must not undo a schedule set meanwhile.
func (b *backend) pushItemUnlessKnown(key string, due time.Time) {
	q := b.queue
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.running[key] {
		return
	}
	if err := q.items.Push(&queue.Item{Key: key, Priority: due.UnixNano()}); err != nil && !errors.Is(err, queue.ErrDuplicateItem) {
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

// takeDue pops the keys due by now that can start: not running already,
// and with a free slot of their kind, which it takes. The others stay
// queued for a later tick.
func (q *workQueue) takeDue(now time.Time) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var due []string
	var later []*queue.Item
	defer func() {
		for _, item := range later {
			// Pushing back what was just popped cannot meet a duplicate.
			_ = q.items.Push(item)
		}
	}()
	for {
		item, err := q.items.Pop()
		if err != nil {
			return due // empty
		}
		if item.Priority > now.UnixNano() {
			later = append(later, item)
			return due
		}
		if q.running[item.Key] || !q.takeSlot(taskOf(item.Key)) {
			later = append(later, item)
			continue
		}
		q.running[item.Key] = true
		due = append(due, item.Key)
	}
}

// takeSlot takes a slot of t if one is free.
func (q *workQueue) takeSlot(t task) bool {
	select {
	case q.slots[t] <- struct{}{}:
		return true
	default:
		return false
	}
}

func (q *workQueue) finished(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.running, key)
	<-q.slots[taskOf(key)]
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

// startDue starts every item due by now that can start, each in its own
// goroutine, and returns at once.
func (b *backend) startDue(ctx context.Context, s logical.Storage) {
	if ctx.Err() != nil {
		return // stopping: the next process finds the work in storage
	}
	for _, key := range b.queue.takeDue(b.clock.Now()) {
		b.queue.inFlight.Add(1)
		go func() {
			defer func() {
				b.queue.finished(key)
				b.queue.inFlight.Done()
			}()
			b.runItem(ctx, s, key)
		}()
	}
}

// runItem is one item's turn, by the record its key names.
func (b *backend) runItem(ctx context.Context, s logical.Storage, key string) {
	switch taskOf(key) {
	case taskRecovery:
		b.recoverJournal(ctx, s)
	case taskRevocation:
		b.retryRevocation(ctx, s, strings.TrimPrefix(key, revocationPrefix))
	case taskRotation:
		b.runStaticRole(ctx, s, strings.TrimPrefix(key, staticRolePrefix))
	}
}

// runSchedule is the background loop: it fills the schedule from storage,
// then ticks on the injected clock and starts what is due, until ctx ends.
// It never waits for an item: one that hangs holds only its own slot.
func (b *backend) runSchedule(ctx context.Context, s logical.Storage) {
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
		b.startDue(ctx, s) // clean waits for them through queue.inFlight
	}
}

// populateQueue finds in storage the records the schedule may have missed (a
// failed load at start, a record written by another process, a storage
// error) and schedules them; a key already queued or running keeps its
// schedule. A record that cannot be read or decoded is logged and skipped,
// never a reason to leave the others. It also schedules the journal's
// recovery now.
func (b *backend) populateQueue(ctx context.Context, s logical.Storage) error {
	b.pushItem(recoveryKey, b.clock.Now())
	revocationsErr := b.populatePrefix(ctx, s, revocationPrefix, b.revocationDue)
	if revocationsErr == nil {
		b.pendingRevocations.markLoaded()
	}
	errs := []error{revocationsErr}
	// Rotation runs on the primary cluster only: a performance secondary
	// serves the tokens it replicates.
	if !b.System().ReplicationState().HasState(consts.ReplicationPerformanceSecondary) {
		errs = append(errs, b.populatePrefix(ctx, s, staticRolePrefix, b.staticRoleDue))
	}
	return errors.Join(errs...)
}

// populatePrefix schedules the records under prefix that the schedule does
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
			b.pushItemUnlessKnown(key, at)
		}
	}
	return nil
}
