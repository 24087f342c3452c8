package biclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/clock"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/testutil"
)

// countingServer answers every request with status and header, counting
// them.
func countingServer(t *testing.T, status int, header map[string]string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(server.Close)
	return server, &calls
}

func clientFor(t *testing.T, url string, timeout time.Duration, retries int) *Client {
	t.Helper()
	c, err := New(Config{AuthURL: url, TenantID: "t", RealmID: "r", ApplicationID: "a", ClientID: "c",
		ClientSecret: NewSecret("s"), Timeout: timeout, MaxRetries: retries, Clock: clock.NoWait{}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRetryStopsWhenTheWaitWouldPassTheBudget(t *testing.T) {
	server, calls := countingServer(t, 429, map[string]string{"Retry-After": "30"})
	start := time.Now()
	err := clientFor(t, server.URL, 2*time.Second, 3).Revoke(context.Background(), NewSecret("tok"))
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.RetryAfter != 30*time.Second || calls.Load() != 1 {
		t.Fatalf("err %v after %d calls", err, calls.Load())
	}
	if time.Since(start) > time.Second {
		t.Fatal("waited for a retry that could not fit in the budget")
	}
}

func TestRetriesAreBoundedByMaxRetries(t *testing.T) {
	for retries, want := range map[int]int32{0: 1, 1: 2, 3: 4} {
		server, calls := countingServer(t, 503, nil)
		err := clientFor(t, server.URL, 10*time.Second, retries).Revoke(context.Background(), NewSecret("tok"))
		if err == nil || calls.Load() != want {
			t.Fatalf("max_retries %d: %d calls, want %d (%v)", retries, calls.Load(), want, err)
		}
		if want > 1 && !strings.Contains(err.Error(), "gave up after") {
			t.Fatalf("message does not say the call was retried: %v", err)
		}
	}
}

// TestRetryRule checks which answers each call repeats: the token call only
// those after which Beyond Identity cannot have minted anything, the
// idempotent revoke and introspect calls any that may pass.
func TestRetryRule(t *testing.T) {
	calls := map[string]func(*Client) error{
		CallToken:  func(c *Client) error { _, err := c.MintToken(context.Background(), MintRequest{}); return err },
		CallRevoke: func(c *Client) error { return c.Revoke(context.Background(), NewSecret("tok")) },
		CallIntrospect: func(c *Client) error {
			_, err := c.Introspect(context.Background(), NewSecret("tok"))
			return err
		},
	}
	retriedBy := map[int][]string{
		400: nil, 401: nil, 403: nil, 404: nil, 409: nil, 422: nil, 501: nil,
		429: {CallToken, CallRevoke, CallIntrospect},
		503: {CallToken, CallRevoke, CallIntrospect},
		500: {CallRevoke, CallIntrospect},
		502: {CallRevoke, CallIntrospect},
		504: {CallRevoke, CallIntrospect},
	}
	for status, retriers := range retriedBy {
		for name, call := range calls {
			server, count := countingServer(t, status, nil)
			_ = call(clientFor(t, server.URL, 10*time.Second, 1))
			want := int32(1)
			if slices.Contains(retriers, name) {
				want = 2
			}
			if got := count.Load(); got != want {
				t.Errorf("%s call answered %d: %d requests, want %d", name, status, got, want)
			}
		}
	}
}

func TestRetryRuleOnConnectionFailures(t *testing.T) {
	refused := clientFor(t, "http://"+testutil.RefusingAddr(t), 10*time.Second, 2)
	if _, err := refused.MintToken(context.Background(), MintRequest{}); err == nil || !strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Fatalf("a refused token call is retried: %v", err)
	}
	var resets atomic.Int32
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resets.Add(1)
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}))
	t.Cleanup(server.Close)
	reset := clientFor(t, server.URL, 10*time.Second, 2)
	if _, err := reset.MintToken(context.Background(), MintRequest{}); err == nil || resets.Load() != 1 {
		t.Fatalf("a token call whose connection dropped after sending was repeated: %d requests (%v)", resets.Load(), err)
	}
	if err := reset.Revoke(context.Background(), NewSecret("tok")); err == nil || resets.Load() != 4 {
		t.Fatalf("a revoke whose connection dropped is repeated: %d requests in all (%v)", resets.Load(), err)
	}
}

// steppingClock moves ahead by step each time it is read and fires timers
// at once: a call's budget runs out after a few reads, in no real time.
type steppingClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

func (c *steppingClock) NewTimer(d time.Duration) clock.Timer { return clock.NoWait{}.NewTimer(d) }

// The budget is kept on the client's clock: a retry whose wait would end
// past request_timeout is not made, even when the real deadline is far.
func TestRetryStopsWhenTheBudgetOnTheClientsClockIsSpent(t *testing.T) {
	server, calls := countingServer(t, 429, map[string]string{"Retry-After": "3"})
	c := clientFor(t, server.URL, 10*time.Second, 5)
	// Each reading of the clock costs a second of the 10 s budget: the
	// first 3 s wait fits, a few readings later the next one no longer does.
	c.clock = &steppingClock{now: time.Now(), step: time.Second}
	_ = c.Revoke(context.Background(), NewSecret("tok"))
	if got := calls.Load(); got < 2 || got > 5 {
		t.Fatalf("%d calls: want a retry while the budget lasts, and none of the 5 allowed once it is spent", got)
	}
}

func TestRetryWaitsForTheCallersContext(t *testing.T) {
	server, calls := countingServer(t, 429, map[string]string{"Retry-After": "5"})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := clientFor(t, server.URL, 30*time.Second, 3).Revoke(ctx, NewSecret("tok"))
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || calls.Load() != 1 || time.Since(start) > 2*time.Second {
		t.Fatalf("err %v, %d calls, %v", err, calls.Load(), time.Since(start))
	}
}

func TestBackoffGrowsWithJitterAndIsCapped(t *testing.T) {
	c := &Client{cfg: Config{RetryBaseDelay: 100 * time.Millisecond}}
	for attempt, bounds := range map[int][2]time.Duration{
		1:  {50 * time.Millisecond, 100 * time.Millisecond},
		3:  {200 * time.Millisecond, 400 * time.Millisecond},
		30: {maxRetryDelay / 2, maxRetryDelay},
	} {
		for i := 0; i < 50; i++ {
			if d := c.backoff(attempt); d < bounds[0] || d > bounds[1] {
				t.Fatalf("attempt %d: backoff %v outside %v", attempt, d, bounds)
			}
		}
	}
}

func TestACallCancelledBeforeItLeavesIssuedNothing(t *testing.T) {
	server, calls := countingServer(t, 200, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := clientFor(t, server.URL, 5*time.Second, 3)
	c.cfg.Limiter = NewLimiter(1)
	_, err := c.MintToken(ctx, MintRequest{Lifetime: time.Hour})
	var outcome *OutcomeUnknownError
	var transportErr *TransportError
	if errors.As(err, &outcome) || !errors.As(err, &transportErr) || !transportErr.NotSent() || calls.Load() != 0 {
		t.Fatalf("err %v after %d calls", err, calls.Load())
	}
}

// A token's lifetime counts from when the request that got it left, not
// from when the caller started waiting for a retry.
func TestTokenSentAtIsTheLastAttempt(t *testing.T) {
	var calls atomic.Int32
	var lastArrival atomic.Int64
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lastArrival.Store(time.Now().UnixNano())
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"access_token":"tok","token_type":"Bearer","expires_in":60}`))
	}))
	t.Cleanup(server.Close)
	c := clientFor(t, server.URL, 10*time.Second, 1)
	c.clock, c.cfg.RetryBaseDelay = clock.Real{}, 200*time.Millisecond
	start := time.Now()
	token, err := c.MintToken(context.Background(), MintRequest{Lifetime: time.Minute})
	if err != nil || calls.Load() != 2 {
		t.Fatalf("%d calls, err %v", calls.Load(), err)
	}
	if !token.SentAt.After(start.Add(50*time.Millisecond)) || token.SentAt.After(time.Unix(0, lastArrival.Load())) {
		t.Fatalf("SentAt %v: want the second attempt's, after the backoff since %v", token.SentAt, start)
	}
}

// An unusable answer that says nothing of its token's end hands the token
// back with the latest end it can have: the lifetime asked for.
func TestUnusableTokenCarriesItsLatestEnd(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"access_token":"tok","token_type":"Bearer"}`))
	}))
	t.Cleanup(server.Close)
	_, err := clientFor(t, server.URL, 10*time.Second, 0).MintToken(context.Background(), MintRequest{Lifetime: time.Hour})
	var unusable *UnusableTokenError
	if !errors.As(err, &unusable) {
		t.Fatalf("err %v", err)
	}
	end := unusable.Token.LatestEnd
	if end.Before(time.Now().Add(59*time.Minute)) || end.After(time.Now().Add(61*time.Minute)) || unusable.Token.ExpiresAt.IsZero() {
		t.Fatalf("latest end %v, expires at %v: want an hour from now", end, unusable.Token.ExpiresAt)
	}
}
