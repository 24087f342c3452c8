package beyondidentity

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// The background worker runs, on the active node, what falls due without a
// request: retries of failed revocations and static role rotations. Each
// piece of work is named by its storage key, and its record in storage is
// the truth; the schedule only says when to look at it next.

// backgroundWorkers bounds the pieces of work run at once; the mount's call
// limits bound the calls to Beyond Identity.
const backgroundWorkers = 4

// schedule is the in-memory index of when each piece of work is next due,
// filled from storage when the worker starts and kept up to date by every
// change to a record.
type schedule struct {
	mu  sync.Mutex
	due map[string]time.Time
	// wake tells the worker the earliest due time may have changed.
	wake chan struct{}
}

func newSchedule() *schedule {
	return &schedule{due: map[string]time.Time{}, wake: make(chan struct{}, 1)}
}

func (q *schedule) set(key string, at time.Time) {
	q.mu.Lock()
	q.due[key] = at
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *schedule) remove(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.due, key)
}

// next is the earliest due time.
func (q *schedule) next() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var earliest time.Time
	for _, at := range q.due {
		if earliest.IsZero() || at.Before(earliest) {
			earliest = at
		}
	}
	return earliest, !earliest.IsZero()
}

// takeDue returns the keys due by now and removes them from the schedule;
// each piece of work schedules itself again as needed.
func (q *schedule) takeDue(now time.Time) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var keys []string
	for key, at := range q.due {
		if !at.After(now) {
			keys = append(keys, key)
			delete(q.due, key)
		}
	}
	return keys
}

// loadSchedule fills the schedule from storage: the work a previous process
// or another node left.
func (b *backend) loadSchedule(ctx context.Context, s logical.Storage) error {
	if err := b.loadRevocations(ctx, s); err != nil {
		return err
	}
	return b.loadStaticRoles(ctx, s)
}

// runDue runs every piece of work due by now, a few at a time.
func (b *backend) runDue(ctx context.Context, s logical.Storage) {
	keys := b.schedule.takeDue(b.clock.Now())
	slots := make(chan struct{}, backgroundWorkers)
	var wg sync.WaitGroup
	for _, key := range keys {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			switch {
			case strings.HasPrefix(key, revocationPrefix):
				b.retryRevocation(ctx, s, strings.TrimPrefix(key, revocationPrefix))
			case strings.HasPrefix(key, staticRolePrefix):
				b.runStaticRole(ctx, s, strings.TrimPrefix(key, staticRolePrefix))
			}
		}()
	}
	wg.Wait()
}

// backgroundWorker runs due work until ctx ends, sleeping on the injected
// clock until the earliest piece is due or the schedule changes.
func (b *backend) backgroundWorker(ctx context.Context, s logical.Storage) {
	for {
		var fire <-chan time.Time
		var stop func() bool
		if at, ok := b.schedule.next(); ok {
			timer := b.clock.NewTimer(at.Sub(b.clock.Now()))
			fire, stop = timer.C(), timer.Stop
		}
		select {
		case <-ctx.Done():
		case <-b.schedule.wake:
		case <-fire:
			b.runDue(ctx, s)
		}
		if stop != nil {
			stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}
