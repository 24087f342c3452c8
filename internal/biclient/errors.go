package biclient

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
)

// Call names, used in error messages so an operator knows which request failed.
const (
	CallToken      = "token"
	CallRevoke     = "revoke"
	CallIntrospect = "introspect"
)

// maxDescriptionLen bounds how much of an upstream error text reaches an error
// message: enough to explain, too little to carry a page of HTML.
const maxDescriptionLen = 200

// APIError is an error status from Beyond Identity. Its body, when it has one
// of the two documented shapes (RFC 6749 {"error","error_description"} or the
// Management API's {"code","message"}), is parsed into Code and Description.
type APIError struct {
	Call        string
	StatusCode  int
	Code        string
	Description string
	// RetryAfter is how long Beyond Identity asked us to wait (Retry-After or
	// RateLimit-Reset); zero when it did not say.
	RetryAfter time.Duration
	// Attempts is how many requests the call made, retries included.
	Attempts int
	// URL is where a 404 was answered, as shownURL writes it; empty for
	// any other status.
	URL string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s call to Beyond Identity failed: HTTP %d", e.Call, e.StatusCode)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	if e.URL != "" {
		msg += fmt.Sprintf("; the URL tried was %s (check auth_url, tenant_id, realm_id and application_id)", e.URL)
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg + attemptsNote(e.Attempts)
}

// attemptsNote says how often a call was tried, when it was more than once.
func attemptsNote(attempts int) string {
	if attempts < 2 {
		return ""
	}
	return fmt.Sprintf(" [gave up after %d attempts]", attempts)
}

// Refused reports whether Beyond Identity rejected the request itself (bad
// credentials, scopes, parameters, or an unknown tenant, realm or
// application): an operator's configuration must change before a retry can
// succeed.
func (e *APIError) Refused() bool {
	switch e.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusConflict, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// InvalidClient reports whether Beyond Identity refused the client's
// credentials (RFC 6749 invalid_client, or a 401): another secret of the
// same client may still be accepted.
func (e *APIError) InvalidClient() bool {
	return e.Code == "invalid_client" || e.StatusCode == http.StatusUnauthorized
}

// Unavailable reports whether Beyond Identity said it could not serve the
// request now (429 or 503): nothing happened, and a later try may succeed.
func (e *APIError) Unavailable() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusServiceUnavailable
}

// ResponseError is an answer Beyond Identity gave that cannot be used: a body
// that is not the documented JSON, too large, missing fields, or an
// unexpected status such as a redirect.
type ResponseError struct {
	Call       string
	StatusCode int
	Reason     string
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("%s call to Beyond Identity returned an unusable answer (HTTP %d): %s", e.Call, e.StatusCode, e.Reason)
}

// TransportError is a request that got no answer: connection refused or
// reset, TLS failure, timeout.
type TransportError struct {
	Call string
	Err  error
	// Budget is the time the call had (request_timeout), for the message
	// of a timeout.
	Budget time.Duration
	// Attempts is how many requests the call made, retries included.
	Attempts int
	// notSent marks a request stopped before it left, such as one that
	// never got a call slot.
	notSent bool
	// noSlot marks a call that gave up waiting for a call slot.
	noSlot bool
	// budgetSpent marks a call ended by its own Timeout (request_timeout)
	// rather than by the caller's deadline.
	budgetSpent bool
}

func (e *TransportError) Error() string {
	switch {
	case e.Timeout() && e.budgetSpent:
		return fmt.Sprintf("%s call to Beyond Identity timed out after %s (request_timeout): %v%s", e.Call, e.Budget, e.Err, attemptsNote(e.Attempts))
	case e.Timeout() || errors.Is(e.Err, context.Canceled):
		return fmt.Sprintf("%s call to Beyond Identity was cut short by the end of the Vault request (its deadline, "+
			"such as Vault's max_request_duration, or the client giving up): %v%s", e.Call, e.Err, attemptsNote(e.Attempts))
	}
	return fmt.Sprintf("%s call to Beyond Identity failed: %v%s", e.Call, e.Err, attemptsNote(e.Attempts))
}

func (e *TransportError) Unwrap() error { return e.Err }

// Timeout reports whether the call ran out of time.
func (e *TransportError) Timeout() bool {
	var netErr net.Error
	return e.budgetSpent || errors.Is(e.Err, errCallBudget) || errors.Is(e.Err, context.DeadlineExceeded) ||
		(errors.As(e.Err, &netErr) && netErr.Timeout())
}

// ConnectionRefused reports whether nothing listened at the address: the
// one transport failure worth retrying at once.
func (e *TransportError) ConnectionRefused() bool {
	return errors.Is(e.Err, syscall.ECONNREFUSED)
}

// NoSlot reports whether the call gave up waiting for one of the mount's
// call slots (max_concurrent_requests): the plugin, not Beyond Identity, was
// saturated, and nothing was sent.
func (e *TransportError) NoSlot() bool { return e.noSlot }

// mayPass reports whether the failure may not recur: not a certificate or
// TLS problem, and not the end of the call's time.
func (e *TransportError) mayPass() bool {
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	var recordErr tls.RecordHeaderError
	tlsProblem := errors.As(e.Err, &certErr) || errors.As(e.Err, &alert) || errors.As(e.Err, &recordErr)
	return !tlsProblem && !e.Timeout() && !errors.Is(e.Err, context.Canceled) && !e.noSlot
}

// NotSent reports whether the request certainly never reached Beyond
// Identity: the connection or the TLS handshake failed, or no call slot
// came free. Such a token call cannot have issued a token.
func (e *TransportError) NotSent() bool {
	var opErr *net.OpError
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	var recordErr tls.RecordHeaderError
	return e.notSent ||
		(errors.As(e.Err, &opErr) && opErr.Op == "dial") ||
		errors.As(e.Err, &certErr) || errors.As(e.Err, &alert) || errors.As(e.Err, &recordErr)
}

// OutcomeUnknownError is a token call that failed after the request may
// have reached Beyond Identity (a timeout after sending, a reset, a 500, a
// gateway's 502 or 504, an answer that could not be read): a token may have
// been issued without the plugin learning it, and it expires on its own.
type OutcomeUnknownError struct {
	Err error
	// Lifetime is the expiration_time the call asked for; zero when it
	// asked for the application's default.
	Lifetime time.Duration
}

func (e *OutcomeUnknownError) Error() string {
	ends := "after the application's default token lifetime"
	if e.Lifetime > 0 {
		ends = "within the requested lifetime of " + e.Lifetime.String()
	}
	return fmt.Sprintf("%v; Beyond Identity may have issued a token before the failure: "+
		"such a token, if any, expires on its own %s", e.Err, ends)
}

func (e *OutcomeUnknownError) Unwrap() error { return e.Err }

// UnusableTokenError is a 200 answer that carried a token the plugin cannot
// lease (a wrong token_type, no usable lifetime, already expired, an answer
// that is not plain JSON). The token exists: the caller must revoke it.
type UnusableTokenError struct {
	Token *Token
	// Others are the further candidates of an answer that is not plain
	// JSON and names several access_token values: readers disagree on which
	// is the token, so the caller must revoke them too.
	Others []*Token
	Reason string
}

// Tokens are every token the caller must revoke.
func (e *UnusableTokenError) Tokens() []*Token {
	return append([]*Token{e.Token}, e.Others...)
}

func (e *UnusableTokenError) Error() string {
	return fmt.Sprintf("%s call to Beyond Identity returned an unusable answer (HTTP 200): %s", CallToken, e.Reason)
}

// shownURL is a request's URL as an error message may show it: without
// user information, query or fragment, the parts of a URL that can carry a
// credential. The path holds only the tenant, realm and application ids.
func shownURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unreadable URL)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// errorBody holds both documented error shapes at once.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	Code             string `json:"code"`
	Message          string `json:"message"`
}

// ParseErrorBody builds the APIError for an error status. It never fails: a
// body in neither documented shape leaves Code and Description empty, and
// the status alone speaks. Any of secrets that the text echoes is replaced.
func ParseErrorBody(call string, status int, header http.Header, body []byte, now time.Time, secrets ...Secret) *APIError {
	apiErr := &APIError{Call: call, StatusCode: status, RetryAfter: retryAfter(header, now)}
	var parsed errorBody
	if err := json.Unmarshal(body, &parsed); err != nil {
		return apiErr
	}
	apiErr.Code = CleanText(Scrub(firstNonEmpty(parsed.Error, parsed.Code), secrets...), 64)
	apiErr.Description = CleanText(Scrub(firstNonEmpty(parsed.ErrorDescription, parsed.Message), secrets...), maxDescriptionLen)
	return apiErr
}

// retryAfter reads Retry-After (seconds, or an HTTP date counted from now)
// and, failing that, RateLimit-Reset (seconds until the window resets).
func retryAfter(header http.Header, now time.Time) time.Duration {
	if header == nil {
		return 0
	}
	if value := strings.TrimSpace(header.Get("Retry-After")); value != "" {
		if seconds, err := strconv.Atoi(value); err == nil && seconds > 0 {
			return time.Duration(seconds) * time.Second
		}
		if at, err := http.ParseTime(value); err == nil {
			if wait := at.Sub(now); wait > 0 {
				return wait.Round(time.Second)
			}
		}
	}
	if value := strings.TrimSpace(header.Get("RateLimit-Reset")); value != "" {
		if seconds, err := strconv.Atoi(value); err == nil && seconds > 0 {
			return time.Duration(seconds) * time.Second
		}
	}
	return 0
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// CleanText makes text from elsewhere (an upstream answer, an operator's
// input) safe to quote in a message: one line, printable, and cut at limit
// bytes, on a character boundary, with "..." to show the cut.
func CleanText(text string, limit int) string {
	text = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(text))
	if len(text) > limit {
		cut := limit
		for cut > 0 && !utf8Start(text[cut]) {
			cut--
		}
		text = text[:cut] + "..."
	}
	return text
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
