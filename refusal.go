package beyondidentity

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// Inside the plugin a failure travels as one error. What the operator must
// fix, and what Beyond Identity answered, is a refusal: an error that
// carries the HTTP status Vault is to answer with. A handler turns a
// failure into its answer once, with answer: a 400 into an error response,
// as Vault's own engines answer a user's mistake; any other status into a
// coded error. An error that holds no refusal is the plugin's or storage's
// own failure, which Vault answers with a 500.

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
