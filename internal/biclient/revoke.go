package biclient

import (
	"context"
	"encoding/json"
	"net/url"
)

// Revoke revokes an access token at the RFC 7009 endpoint of the configured
// application. Beyond Identity answers 200 for every well-formed request,
// also for a token that is unknown, expired or already revoked, so a nil
// error means the token is no longer valid, provided it was issued to this
// same application: a token of another application is silently left alone,
// and the caller must check that before relying on the result.
//
// Only a 200 with an empty or JSON body counts: a 200 with another body is
// something else answering (a proxy's page, a wrong auth URL), and redirects
// are never followed.
func (c *Client) Revoke(ctx context.Context, token Secret) error {
	form := url.Values{"token": {token.Reveal()}, "token_type_hint": {"access_token"}}
	result := c.send(ctx, CallRevoke, c.issuer+"/revoke", form, c.cfg.RevokeLimiter)
	a, err := result.answer, result.err
	if err != nil {
		return err
	}
	if a.status != 200 {
		return c.errorFor(CallRevoke, a, token)
	}
	if len(a.body) > 0 && !isJSONObject(a.body) && !isBlank(a.body) {
		return &ResponseError{Call: CallRevoke, StatusCode: a.status, Reason: "body is not the empty answer of an RFC 7009 revocation endpoint; check auth_url"}
	}
	return nil
}

func isBlank(body []byte) bool {
	for _, b := range body {
		if b != ' ' && b != '\n' && b != '\r' && b != '\t' {
			return false
		}
	}
	return true
}

// Introspection is what RFC 7662 introspection says of a token: whether it
// is active, and the claims of an active one, read as a JWT's are.
type Introspection struct {
	Active bool
	Claims
}

// Introspect asks Beyond Identity about a token: the way to learn the id and
// end of an opaque token.
func (c *Client) Introspect(ctx context.Context, token Secret) (*Introspection, error) {
	call := c.send(ctx, CallIntrospect, c.introspectURL(), url.Values{"token": {token.Reveal()}}, c.cfg.Limiter)
	a, err := call.answer, call.err
	if err != nil {
		return nil, err
	}
	if a.status != 200 {
		return nil, c.errorFor(CallIntrospect, a, token)
	}
	fields, problem, ok := objectFields(a.body)
	var active bool
	if !ok || string(fields["active"]) == "null" || json.Unmarshal(fields["active"], &active) != nil {
		return nil, &ResponseError{Call: CallIntrospect, StatusCode: a.status, Reason: "body is not an RFC 7662 introspection answer"}
	}
	info := &Introspection{Active: active, Claims: claimsOf(fields)}
	if problem != "" {
		info.Claims = Claims{Unreadable: "its introspection cannot be read plainly: " + problem}
	}
	return info, nil
}
