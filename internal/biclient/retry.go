package biclient

import (
	"context"
	"errors"
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

// errCallBudget is the cause of a call's context ending at its Timeout, so
// that a timeout can be told apart from the caller giving up.
var errCallBudget = errors.New("the call's request_timeout passed")

// callResult is the outcome of a logical call: the last answer or error,
// and when its last request left and its answer arrived.
type callResult struct {
	answer     *answer
	err        error
	sentAt     time.Time
	receivedAt time.Time
}

// send runs one logical call: attempts, and waits between them, all within
// the Timeout budget and ctx, each attempt holding a slot of limiter. What
// is retried depends on the call (see retryable). A nil err means an answer
// arrived, of any status.
//
// This loop is written out rather than built on go-retryablehttp: the rule
// depends on whether a request left at all and on the call's whole budget
// (a wait that cannot fit is skipped, and the last real failure reported),
// each attempt holds a call slot, and the waits run on the injected clock.
// With retryablehttp those would be spread over a RoundTripper, CheckRetry,
// Backoff and an ErrorHandler, and its timers cannot be injected.
func (c *Client) send(ctx context.Context, call, endpoint string, form url.Values, limiter *Limiter) callResult {
	budgetEnd := c.clock.Now().Add(c.cfg.Timeout)
	ctx, cancel := context.WithTimeoutCause(ctx, c.cfg.Timeout, errCallBudget)
	defer cancel()
	for attempt := 1; ; attempt++ {
		result := c.attempt(ctx, call, endpoint, form, limiter)
		c.observe(call, attempt, result)
		wait, again := c.retryWait(ctx, budgetEnd, call, attempt, result.answer, result.err)
		if again {
			timer := c.clock.NewTimer(wait)
			select {
			case <-timer.C():
				continue
			case <-ctx.Done():
				// Report the last real failure, not the end of the budget.
				timer.Stop()
			}
		}
		return withAttempts(result, attempt)
	}
}

// attempt makes one request while holding a call slot.
func (c *Client) attempt(ctx context.Context, call, endpoint string, form url.Values, limiter *Limiter) callResult {
	if limiter != nil {
		if err := limiter.acquire(ctx); err != nil {
			return callResult{err: &TransportError{Call: call, Err: err, notSent: true, noSlot: true}}
		}
		defer limiter.release()
	}
	// A slot may be granted to a caller that has already given up.
	if ctx.Err() != nil {
		return callResult{err: &TransportError{Call: call, Err: context.Cause(ctx), notSent: true, budgetSpent: errors.Is(context.Cause(ctx), errCallBudget)}}
	}
	sentAt := c.clock.Now()
	a, err := c.postForm(ctx, call, endpoint, form)
	if limiter != nil && err == nil {
		limiter.learn(a.status)
	}
	var transportErr *TransportError
	if errors.As(err, &transportErr) {
		transportErr.budgetSpent = errors.Is(context.Cause(ctx), errCallBudget)
	}
	return callResult{answer: a, err: err, sentAt: sentAt, receivedAt: c.clock.Now()}
}

// observe tells Config.Observe of an attempt that was sent.
func (c *Client) observe(call string, number int, result callResult) {
	if c.cfg.Observe == nil || result.sentAt.IsZero() {
		return
	}
	attempt := Attempt{Call: call, Number: number, Duration: result.receivedAt.Sub(result.sentAt)}
	if result.answer != nil {
		attempt.Status = result.answer.status
	}
	c.cfg.Observe(attempt)
}

// withAttempts records how many requests a call made in its outcome.
func withAttempts(result callResult, attempts int) callResult {
	var transportErr *TransportError
	if errors.As(result.err, &transportErr) {
		transportErr.Attempts = attempts
	}
	if result.answer != nil {
		result.answer.attempts = attempts
	}
	return result
}

// retryWait decides whether a failed attempt is retried, and after how
// long: never when the wait would not fit in the call's budget, which ends
// at budgetEnd, or in the caller's deadline.
func (c *Client) retryWait(ctx context.Context, budgetEnd time.Time, call string, attempt int, a *answer, err error) (time.Duration, bool) {
	if attempt > c.maxRetries() || !retryable(call, a, err) {
		return 0, false
	}
	wait := c.backoff(attempt)
	if err == nil {
		wait = max(wait, retryAfter(a.header, c.clock.Now()))
	}
	if budgetEnd.Sub(c.clock.Now()) < wait {
		return 0, false
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
		return 0, false
	}
	return wait, true
}

// retryable is the retry rule. The token call is repeated only when Beyond
// Identity cannot have minted anything: the connection was refused, or it
// answered 429 or 503. A repeated mint after a 500, a gateway's 502 or 504,
// or a lost answer could leave a token nobody knows of. Revoke and
// introspect are idempotent, so they are repeated after any failure that
// may pass: a lost connection, 429 or a 5xx status other than 501.
func retryable(call string, a *answer, err error) bool {
	var transportErr *TransportError
	if call == CallToken {
		if errors.As(err, &transportErr) {
			return transportErr.ConnectionRefused()
		}
		return err == nil && (a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable)
	}
	if errors.As(err, &transportErr) {
		return transportErr.mayPass()
	}
	return err == nil && (a.status == http.StatusTooManyRequests || (a.status >= 500 && a.status != http.StatusNotImplemented))
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
