package biclient

import (
	"container/list"
	"context"
	"fmt"
	"net/http"
	"sync"
)

// InitialConcurrency is how many calls a Limiter allows at once before it
// has learned anything of Beyond Identity's answers.
const InitialConcurrency = 10

// Limiter bounds how many calls to Beyond Identity run at once, and adapts
// the bound to what Beyond Identity says, much as TCP adapts its window:
// starting at InitialConcurrency (or the ceiling, if lower), each answer
// that is not a refusal to serve lets one more call in, doubling the bound
// every round trip, until the first 429 or 503. Each such answer halves it
// (unlike TCP, which halves once per round trip, a burst of refusals can
// take it down to one call), and from then on it grows by one call per
// round trip. It never passes the ceiling
// (max_concurrent_requests). So a slow but willing Beyond Identity gets as
// many calls at once as it takes to keep up, while a throttling one sees
// the load halve at once. Waiters are served first come, first served.
//
// One Limiter serves a whole mount, across the clients its config changes
// create; calls in flight keep counting when the ceiling changes.
type Limiter struct {
	mu      sync.Mutex
	ceiling int
	limit   float64 // the adapted bound, between 1 and ceiling
	// throttled is set by the first 429 or 503: growth is additive after.
	throttled bool
	inUse     int
	waiters   list.List // of chan struct{}, closed when granted a slot
}

// NewLimiter allows up to ceiling calls at once (at least one).
func NewLimiter(ceiling int) *Limiter {
	l := &Limiter{}
	l.SetCeiling(ceiling)
	l.limit = float64(min(InitialConcurrency, l.ceiling))
	return l
}

// Ceiling is the most calls the Limiter ever allows at once.
func (l *Limiter) Ceiling() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ceiling
}

// Limit is how many calls the Limiter allows at once now.
func (l *Limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.limit)
}

// SetCeiling changes the most calls the Limiter allows at once.
func (l *Limiter) SetCeiling(ceiling int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ceiling = max(ceiling, 1)
	l.limit = min(max(l.limit, 1), float64(l.ceiling))
	l.grant()
}

// learn adapts the bound to one answer's status.
func (l *Limiter) learn(status int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		l.throttled = true
		l.limit = max(1, l.limit/2)
	case l.throttled:
		l.limit = min(float64(l.ceiling), l.limit+1/l.limit)
	default:
		l.limit = min(float64(l.ceiling), l.limit+1)
	}
	l.grant()
}

// acquire waits for a slot, or until ctx ends.
func (l *Limiter) acquire(ctx context.Context) error {
	l.mu.Lock()
	if l.waiters.Len() == 0 && l.inUse < int(l.limit) {
		l.inUse++
		l.mu.Unlock()
		return nil
	}
	granted := make(chan struct{})
	waiting := l.waiters.PushBack(granted)
	inUse := l.inUse
	l.mu.Unlock()
	select {
	case <-granted:
		return nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	select {
	case <-granted:
		// Granted as the context ended: hand the slot on.
		l.inUse--
		l.grant()
	default:
		l.waiters.Remove(waiting)
	}
	l.mu.Unlock()
	return fmt.Errorf("waiting for a call slot, with %d calls in flight (at most max_concurrent_requests, fewer while Beyond Identity throttles): %w",
		inUse, context.Cause(ctx))
}

func (l *Limiter) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inUse--
	l.grant()
}

// grant hands free slots to the longest waiting callers; callers hold mu.
func (l *Limiter) grant() {
	for l.inUse < int(l.limit) && l.waiters.Len() > 0 {
		l.inUse++
		close(l.waiters.Remove(l.waiters.Front()).(chan struct{}))
	}
}
