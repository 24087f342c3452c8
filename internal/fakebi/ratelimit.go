package fakebi

import (
	"net/http"
	"strconv"
	"time"
)

// rateLimiter counts requests in fixed windows. A window opens with the
// first request after the previous one closed, so a test that sets a limit
// sees a full window from its first request.
type rateLimiter struct {
	limit  int
	window time.Duration
	start  time.Time
	count  int
}

// rateDecision is the outcome of counting one request.
type rateDecision struct {
	limited   bool
	limit     int
	remaining int
	reset     int // whole seconds until the window closes, at least 1
}

// SetRateLimit limits the whole fake to limit requests per fixed window of
// the server's clock; further requests in a window get 429. A limit of 0 (or
// a window of 0) removes the limit. Setting a limit starts a new window.
func (s *Server) SetRateLimit(limit int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limiter = rateLimiter{limit: limit, window: window}
}

// countRequest counts a request against the limit; ok is false when no
// limit is set.
func (s *Server) countRequest() (d rateDecision, ok bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	l := &s.limiter
	if l.limit <= 0 || l.window <= 0 {
		return rateDecision{}, false
	}
	if l.start.IsZero() || !now.Before(l.start.Add(l.window)) {
		l.start, l.count = now, 0
	}
	l.count++
	return rateDecision{
		limited:   l.count > l.limit,
		limit:     l.limit,
		remaining: max(l.limit-l.count, 0),
		reset:     max(int((l.start.Add(l.window).Sub(now)+time.Second-1)/time.Second), 1),
	}, true
}

// refuseOverLimit sets the rate-limit headers and answers 429 when the
// request is over the limit.
func (s *Server) refuseOverLimit(w http.ResponseWriter) bool {
	d, ok := s.countRequest()
	if !ok {
		return false
	}
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(d.limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(d.remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(d.reset))
	if !d.limited {
		return false
	}
	h.Set("Retry-After", strconv.Itoa(d.reset))
	writeAPIError(w, http.StatusTooManyRequests, "too_many_requests", "rate limit exceeded")
	return true
}
