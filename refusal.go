package beyondidentity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// Inside the plugin a failure travels as one error. What the operator must
// fix, and what Beyond Identity answered, is a refusal: an error that
// carries the HTTP status Vault is to answer with (badRequest, refuse,
// upstreamRefusal). A failure is turned into its answer once, here, with
// answer: a 400 into an error response, as Vault's own engines answer a
// user's mistake; any other status into a coded error. An error that holds
// no refusal is the plugin's or storage's own failure, which Vault answers
// with a 500.
//
// Below the handlers, a failure is only ever an error, never a response. A
// handler may answer a mistake it finds itself with logical.ErrorResponse;
// whatever it gets from below it returns as it is, and so do the checks
// every request passes first (params.go): HandleRequest, which every
// request passes, answers it, and counts each refused credential request
// (creds, static-creds, rotate-role) once, by the class of its cause.

// refusal is a failure with the HTTP status it is answered with.
type refusal struct {
	status int
	err    error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// Code implements logical.HTTPCodedError, so that Vault answers with it.
func (r *refusal) Code() int { return r.status }

// refuse is a refusal with a message of its own.
func refuse(status int, format string, args ...any) error {
	return &refusal{status: status, err: fmt.Errorf(format, args...)}
}

// badRequest is the operator's mistake: a 400 that says what to do.
func badRequest(format string, args ...any) error {
	return refuse(http.StatusBadRequest, format, args...)
}

// errNotConfigured is every path's failure before config is written; its
// answer names the path to write.
var errNotConfigured = errors.New(notConfigured("the mount's "))

// notConfigured is the one wording of errNotConfigured's answer.
func notConfigured(mount string) string {
	return fmt.Sprintf("the mount is not configured: write %sconfig first", mount)
}

// answer is a handler's answer to a failure (nil: none). A refusal
// wrapped in more words keeps its status: the whole message is answered
// with it.
func answer(req *logical.Request, err error) (*logical.Response, error) {
	var r *refusal
	switch {
	case err == nil:
		return nil, nil
	case errors.Is(err, errNotConfigured):
		return logical.ErrorResponse(notConfigured(mountPath(req))), nil
	case !errors.As(err, &r):
		return nil, err
	case r.status == http.StatusBadRequest:
		return logical.ErrorResponse(err.Error()), nil
	}
	return nil, &refusal{status: r.status, err: err}
}

// statusOfFailure is the HTTP status a failure is answered with.
func statusOfFailure(err error) int {
	var coded logical.HTTPCodedError
	switch {
	case errors.Is(err, errNotConfigured):
		return http.StatusBadRequest
	case errors.As(err, &coded):
		return coded.Code()
	}
	return http.StatusInternalServerError
}

// withOutcome is a failure with what became of the token it left behind.
func withOutcome(cause error, outcome string) error {
	return fmt.Errorf("%w; %s", cause, outcome)
}

// upstreamRefusal is a failed call to Beyond Identity as the operator
// reads it. Beyond Identity refusing the request is the operator's to fix:
// 400. Anything else carries the status that says what went wrong upstream:
// 503 when Beyond Identity throttled or was unavailable past the retries,
// or every call slot stayed busy (try later); 504 on a timeout; 502 for a
// failed connection, a server or gateway error, or an answer that made no
// sense.
func upstreamRefusal(action string, err error) error {
	return &refusal{status: upstreamStatus(err), err: fmt.Errorf("%s: %w", action, err)}
}

func upstreamStatus(err error) int {
	var apiErr *biclient.APIError
	var transportErr *biclient.TransportError
	var coded logical.HTTPCodedError
	switch {
	case errors.As(err, &apiErr) && apiErr.Refused():
		return http.StatusBadRequest
	case errors.As(err, &apiErr) && apiErr.Unavailable():
		return http.StatusServiceUnavailable
	case errors.As(err, &transportErr) && transportErr.NoSlot():
		return http.StatusServiceUnavailable
	case errors.As(err, &transportErr) && transportErr.Timeout():
		return http.StatusGatewayTimeout
	case errors.As(err, &coded):
		return coded.Code()
	}
	return http.StatusBadGateway
}

// The cause classes of beyondidentity_issue_failures_total: few, so that an
// alert can name one.
const (
	// causeBadRequest: the caller's mistake, such as an unknown role, a
	// scope outside the role, a ttl above max_ttl or a parameter the path
	// does not take.
	causeBadRequest = "bad_request"
	// causeNotConfigured: the mount has no config.
	causeNotConfigured = "not_configured"
	// causeUpstream: Beyond Identity refused the request (a 400 naming what
	// it said), failed, timed out or answered nonsense (502, 504).
	causeUpstream = "upstream"
	// causeUnavailable: a 503, to try again later: Beyond Identity
	// throttled or was unavailable past the retries, every call slot stayed
	// busy, revocations are pending, or a static role's rotation is due.
	causeUnavailable = "unavailable"
	// causeInternal: the plugin's or storage's own failure (500).
	causeInternal = "internal"
)

// HandleRequest answers a request (handleRequest), answers a failure its
// handler returned as it is, and counts a refused credential request.
func (b *backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	resp, failure := b.handleRequest(ctx, req)
	err := failure
	if failure != nil {
		resp, err = answer(req, failure)
	}
	b.countRefusal(req, failure, resp, err)
	return resp, err
}

// countRefusal counts a refused credential request in
// beyondidentity_issue_failures_total, once: by path, by the class of its
// failure (nil when its handler answered the caller's mistake itself), and
// by the status of its answer (resp, err).
func (b *backend) countRefusal(req *logical.Request, failure error, resp *logical.Response, err error) {
	family := credentialFamily(req)
	if family == "" || (failure == nil && !resp.IsError()) || handedToActive(failure) {
		return
	}
	status := answeredStatus(req, resp, err)
	b.metrics.issueFailures.WithLabelValues(family, failureCause(failure, status), strconv.Itoa(status)).Inc()
}

// answeredStatus is the HTTP status Vault answers an answer with.
func answeredStatus(req *logical.Request, resp *logical.Response, err error) int {
	var coded logical.HTTPCodedError
	if errors.As(err, &coded) {
		return coded.Code()
	}
	status, _ := logical.RespondErrorCommon(req, resp, err)
	return status
}

// credentialFamily names the credential path a request reads or writes
// (creds, static-creds, rotate-role); "" for any other request, a lease's
// renewal or revocation included.
func credentialFamily(req *logical.Request) string {
	switch req.Operation {
	case logical.ReadOperation, logical.UpdateOperation, logical.CreateOperation:
	default:
		return ""
	}
	for _, prefix := range []string{credsPrefix, staticCredsPrefix, rotateRolePrefix} {
		if strings.HasPrefix(req.Path, prefix) {
			return strings.TrimSuffix(prefix, "/")
		}
	}
	return ""
}

// handedToActive reports whether a performance standby hands the request
// to the active node, which answers and counts it.
func handedToActive(err error) bool {
	return errors.Is(err, logical.ErrReadOnly) || errors.Is(err, logical.ErrPerfStandbyPleaseForward)
}

// failureCause is the class of a refused request's failure, answered with
// status (nil: the handler answered a mistake of the caller's itself).
func failureCause(err error, status int) string {
	var apiErr *biclient.APIError
	switch {
	case errors.Is(err, errNotConfigured):
		return causeNotConfigured
	case status == http.StatusServiceUnavailable:
		return causeUnavailable
	case status == http.StatusBadGateway, status == http.StatusGatewayTimeout, errors.As(err, &apiErr):
		return causeUpstream
	case status < http.StatusInternalServerError:
		return causeBadRequest
	}
	return causeInternal
}

// failureMetadata describes a failure for an event: its status and message,
// which never holds a secret.
func failureMetadata(err error) []string {
	return []string{"status", strconv.Itoa(statusOfFailure(err)), "error", biclient.CleanText(err.Error(), 512)}
}
