package biclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
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
		ClientSecret: NewSecret("s"), Timeout: timeout, MaxRetries: retries, RetryBaseDelay: time.Millisecond})
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

func TestNonTransientStatusesAreNotRetried(t *testing.T) {
	for _, status := range []int{400, 401, 403, 404, 500, 501} {
		server, calls := countingServer(t, status, nil)
		_ = clientFor(t, server.URL, 10*time.Second, 3).Revoke(context.Background(), NewSecret("tok"))
		if calls.Load() != 1 {
			t.Errorf("status %d was retried", status)
		}
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

func TestLimiterRespectsTheContext(t *testing.T) {
	limiter := NewLimiter(1)
	if err := limiter.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := limiter.acquire(ctx); err == nil || !strings.Contains(err.Error(), "max_concurrent_requests") {
		t.Fatalf("acquire past the deadline: %v", err)
	}
	limiter.release()
	if err := limiter.acquire(context.Background()); err != nil {
		t.Fatal("the released slot is not free")
	}
}

func TestLimiterResizeCountsCallsInFlight(t *testing.T) {
	limiter := NewLimiter(2)
	for i := 0; i < 2; i++ {
		if err := limiter.acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	limiter.SetCapacity(1)
	limiter.release() // one call still in flight: no room under the new bound
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := limiter.acquire(ctx); err == nil {
		t.Fatal("a call got a slot while the in-flight call already fills the new bound")
	}
	limiter.release()
	if err := limiter.acquire(context.Background()); err != nil {
		t.Fatal(err)
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
