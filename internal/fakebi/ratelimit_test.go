package fakebi

import (
	"net/http"
	"testing"
	"time"
)

func TestRateLimit(t *testing.T) {
	f := newFixture(t)
	f.s.SetRateLimit(3, 10*time.Second)
	jwks := request{method: http.MethodGet, path: issuerPath(appA) + "/.well-known/jwks.json"}

	// step is one request: the clock advance before it and what it must get.
	type step struct {
		advance          time.Duration
		status           int
		remaining, reset string
		retryAfter       string
	}
	steps := []step{
		{status: http.StatusOK, remaining: "2", reset: "10"},
		{advance: 2 * time.Second, status: http.StatusOK, remaining: "1", reset: "8"},
		{advance: 500 * time.Millisecond, status: http.StatusOK, remaining: "0", reset: "8"},
		{advance: time.Second, status: http.StatusTooManyRequests, remaining: "0", reset: "7", retryAfter: "7"},
		{advance: 6*time.Second + 400*time.Millisecond, status: http.StatusTooManyRequests, remaining: "0", reset: "1", retryAfter: "1"},
		{advance: 100 * time.Millisecond, status: http.StatusOK, remaining: "2", reset: "10"}, // new window
	}
	for i, s := range steps {
		f.clock.Advance(s.advance)
		resp := f.do(t, jwks)
		if resp.status != s.status {
			t.Fatalf("request %d: status %d, want %d", i, resp.status, s.status)
		}
		h := resp.header
		if h.Get("RateLimit-Limit") != "3" || h.Get("RateLimit-Remaining") != s.remaining ||
			h.Get("RateLimit-Reset") != s.reset || h.Get("Retry-After") != s.retryAfter {
			t.Errorf("request %d: headers limit %q remaining %q reset %q retry-after %q; want 3, %s, %s, %q",
				i, h.Get("RateLimit-Limit"), h.Get("RateLimit-Remaining"), h.Get("RateLimit-Reset"), h.Get("Retry-After"),
				s.remaining, s.reset, s.retryAfter)
		}
		if s.status == http.StatusTooManyRequests {
			wantAPIError(t, resp, http.StatusTooManyRequests, "too_many_requests")
		}
	}
	if calls := f.s.Calls(); len(calls) != len(steps) || calls[3].Status != http.StatusTooManyRequests {
		t.Errorf("calls = %+v, want every request recorded, refused ones included", calls)
	}
}

func TestRateLimitCountsEveryEndpoint(t *testing.T) {
	f := newFixture(t)
	f.s.SetRateLimit(2, time.Minute)
	f.mint(t, appA)
	f.do(t, request{method: http.MethodGet, path: "/nowhere"})
	resp := f.do(t, request{path: issuerPath(appA) + "/token", form: mintForm(), basic: basicOf(appA)})
	wantAPIError(t, resp, http.StatusTooManyRequests, "too_many_requests")
	if n := len(f.s.Tokens()); n != 1 {
		t.Errorf("%d tokens minted, want 1: a refused request must not mint", n)
	}
}

func TestRateLimitDisabled(t *testing.T) {
	f := newFixture(t)
	f.s.SetRateLimit(1, time.Minute)
	f.s.SetRateLimit(0, time.Minute)
	for range 3 {
		resp := f.do(t, request{method: http.MethodGet, path: issuerPath(appA) + "/.well-known/jwks.json"})
		if resp.status != http.StatusOK || resp.header.Get("RateLimit-Limit") != "" {
			t.Fatalf("status %d, RateLimit-Limit %q; want 200 and no rate-limit headers", resp.status, resp.header.Get("RateLimit-Limit"))
		}
	}
}
