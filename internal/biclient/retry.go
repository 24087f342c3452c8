package biclient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"
)

// DefaultMaxRetries is how often a call is retried when Config.MaxRetries
// is negative.
const DefaultMaxRetries = 3

// Backoff bounds: the first retry waits about defaultRetryBaseDelay, each
// next one twice as long, never more than maxRetryDelay unless Beyond
// Identity asks for longer with Retry-After.
const (
	defaultRetryBaseDelay = 250 * time.Millisecond
	maxRetryDelay         = 10 * time.Second
)

// Limiter bounds how many calls to Beyond Identity run at once, so that a
// burst of Agent renewals or a mass revocation queues here instead of
// hammering the tenant into 429s. One Limiter serves a whole mount, across
// the clients its config changes create.
type Limiter struct {
	slots chan struct{}
}

// NewLimiter allows n calls at once (at least one).
func NewLimiter(n int) *Limiter {
	return &Limiter{slots: make(chan struct{}, max(n, 1))}
}

// Capacity is how many calls the Limiter allows at once.
func (l *Limiter) Capacity() int { return cap(l.slots) }

// acquire waits for a slot, or until ctx ends.
func (l *Limiter) acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for one of the %d call slots (max_concurrent_requests): %w", l.Capacity(), ctx.Err())
	}
}

func (l *Limiter) release() { <-l.slots }

// send runs one logical call: attempts, and waits between them, all within
// the Timeout budget and ctx. It retries only what cannot have changed
// anything at Beyond Identity: a refused connection, or an answer of 429,
// 502, 503 or 504. A nil error means an answer arrived, of any status.
func (c *Client) send(ctx context.Context, call, endpoint string, form url.Values) (*answer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		a, err := c.attempt(ctx, call, endpoint, form)
		wait, again := c.retryWait(ctx, attempt, a, err)
		if again {
			timer := time.NewTimer(wait)
			select {
			case <-timer.C:
				continue
			case <-ctx.Done():
				// Report the last real failure, not the end of the budget.
				timer.Stop()
			}
		}
		return withAttempts(a, err, attempt)
	}
}

// withAttempts records how many requests a call made in its outcome.
func withAttempts(a *answer, err error, attempts int) (*answer, error) {
	var transportErr *TransportError
	if errors.As(err, &transportErr) {
		transportErr.Attempts = attempts
	}
	if a != nil {
		a.attempts = attempts
	}
	return a, err
}

// attempt makes one request while holding a call slot.
func (c *Client) attempt(ctx context.Context, call, endpoint string, form url.Values) (*answer, error) {
	if c.cfg.Limiter != nil {
		if err := c.cfg.Limiter.acquire(ctx); err != nil {
			return nil, &TransportError{Call: call, Err: err, notSent: true}
		}
		defer c.cfg.Limiter.release()
	}
	return c.postForm(ctx, call, endpoint, form)
}

// retryWait decides whether a failed attempt is retried, and after how
// long.
func (c *Client) retryWait(ctx context.Context, attempt int, a *answer, err error) (time.Duration, bool) {
	if attempt > c.maxRetries() {
		return 0, false
	}
	var wait time.Duration
	var transportErr *TransportError
	switch {
	case errors.As(err, &transportErr) && transportErr.ConnectionRefused():
		wait = c.backoff(attempt)
	case err == nil && a != nil && transientStatus(a.status):
		wait = max(c.backoff(attempt), retryAfter(a.header))
	default:
		return 0, false
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
		return 0, false
	}
	return wait, true
}

func (c *Client) maxRetries() int {
	if c.cfg.MaxRetries < 0 {
		return DefaultMaxRetries
	}
	return c.cfg.MaxRetries
}

// backoff is exponential with jitter: between half and all of
// base*2^(attempt-1), capped, so that many callers throttled together do not
// come back together.
func (c *Client) backoff(attempt int) time.Duration {
	base := c.cfg.RetryBaseDelay
	if base <= 0 {
		base = defaultRetryBaseDelay
	}
	delay := min(base<<min(attempt-1, 16), maxRetryDelay)
	return delay/2 + rand.N(delay/2+1)
}

// transientStatus is an answer that says nothing was done and a later
// attempt may succeed.
func transientStatus(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}
