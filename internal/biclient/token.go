package biclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/scope"
)

// TokenFormat says whether a token's claims can be read locally.
type TokenFormat string

// The two token formats Beyond Identity issues.
const (
	FormatJWT    TokenFormat = "jwt"    // self_contained: an RS256 JWT
	FormatOpaque TokenFormat = "opaque" // referential: an encrypted handle
)

// MaxTokenLifetime is the longest life Beyond Identity gives a token: 90
// days.
const MaxTokenLifetime = 7776000 * time.Second

// maxPlausibleExpiresIn bounds expires_in. Beyond Identity caps tokens at
// MaxTokenLifetime, but a private deployment may differ; anything beyond ten
// years is a malformed answer, not a lifetime.
const maxPlausibleExpiresIn = 10 * 365 * 24 * time.Hour

// MintRequest describes the token to mint.
type MintRequest struct {
	// Scopes to request; empty asks for every scope the application allows.
	Scopes []string
	// Lifetime is sent as expiration_time, in whole seconds.
	Lifetime time.Duration
	// CustomClaims, when set, appear in the token as bi_custom.
	CustomClaims map[string]any
}

// Token is a minted access token and what is known about it.
type Token struct {
	AccessToken Secret
	TokenType   string
	// Scopes Beyond Identity granted, sorted and de-duplicated: the
	// answer's scope (or, without one, the JWT's scope claims).
	Scopes []string
	// Claims are a JWT's own claims, what Beyond Identity enforces; nil for
	// an opaque token (see Introspect). An answer may say less than its
	// token grants: both must be checked.
	Claims *Claims
	// ExpiresAt is the earliest end the answer allows: when the request
	// was sent plus expires_in, or the JWT's exp when that is sooner. Leases
	// end by it.
	ExpiresAt time.Time
	// LatestEnd is the latest end the answer allows: when the answer
	// arrived plus expires_in, or the JWT's exp when that is later. Only
	// past it is the token surely dead.
	LatestEnd time.Time
	// ID is the token's jti; empty for an opaque token (see Introspect).
	ID     string
	Format TokenFormat
	// SentAt is when the request that got the token left, after any wait
	// for a call slot or a retry: the moment its lifetime counts from.
	SentAt time.Time
}

// MintToken runs the client-credentials grant. A token call that may have
// issued a token it could not return fails with an OutcomeUnknownError; a
// 200 whose token cannot be leased, or that is not plain JSON but names
// tokens, fails with an UnusableTokenError that carries them, which the
// caller must revoke.
func (c *Client) MintToken(ctx context.Context, mint MintRequest) (*Token, error) {
	form, err := mintForm(mint)
	if err != nil {
		return nil, err
	}
	result := c.send(ctx, CallToken, TokenURL(c.issuer), form, c.cfg.Limiter)
	err = result.err
	if err == nil && result.answer.status != 200 {
		err = c.errorFor(CallToken, result.answer)
	}
	if err != nil {
		if mayHaveIssued(err) {
			return nil, &OutcomeUnknownError{Err: err, Lifetime: mint.Lifetime}
		}
		return nil, err
	}
	token, err := ParseTokenResponse(result.answer.body, result.sentAt, result.receivedAt, mint.Scopes)
	switch {
	case err == nil:
		token.SentAt = result.sentAt
		return token, nil
	case token == nil:
		return nil, c.unreadableAnswer(result, mint.Lifetime, err)
	default:
		token.SentAt = result.sentAt
		boundUnknownEnd(token, result.receivedAt, mint.Lifetime)
		// The reason quotes the answer's fields: scrubbed like an error body.
		return nil, &UnusableTokenError{Token: token, Reason: c.Scrub(err.Error(), token.AccessToken)}
	}
}

// unreadableAnswer is the error of a 200 answer whose token cannot be
// read: a token may exist all the same. An answer that is not plain JSON
// may still name one or more: every access_token value it holds is then a
// candidate, carried by an UnusableTokenError for the caller to revoke.
// Readers disagree on which of two values is the token, so all of them
// are revoked: they are the only tokens the plugin can know of, and
// revoking a value that was never a token costs one call. Without any
// candidate, the outcome is unknown.
func (c *Client) unreadableAnswer(result callResult, requested time.Duration, cause error) error {
	candidates, more := accessTokenCandidates(result.answer.body)
	reason := c.Scrub(cause.Error(), candidates...)
	if len(candidates) == 0 {
		return &OutcomeUnknownError{Err: &ResponseError{Call: CallToken, StatusCode: 200, Reason: reason}, Lifetime: requested}
	}
	tokens := make([]*Token, len(candidates))
	for i, value := range candidates {
		tokens[i] = candidateToken(value, result.sentAt, result.receivedAt, requested)
	}
	if len(tokens) > 1 {
		reason += fmt.Sprintf("; it names %d different access_token values", len(tokens))
	}
	if more {
		reason += fmt.Sprintf("; it names more than %d, of which only the first %d can be revoked: the others, if tokens, "+
			"expire on their own", maxTokenCandidates, maxTokenCandidates)
	}
	return &UnusableTokenError{Token: tokens[0], Others: tokens[1:], Reason: reason}
}

// maxTokenCandidates bounds how many access_token values of one answer are
// revoked: a real answer names one, and a hostile one must not turn a
// single read into a flood of revocations.
const maxTokenCandidates = 8

// accessTokenCandidates lists the distinct string values of the
// access_token members, in any escaped spelling of the name, of every
// top-level object of an answer that is not plain JSON, as far as it can
// be read, skipping a leading byte-order mark: whatever a reader of it may
// have taken for its token. more reports values left off past
// maxTokenCandidates.
func accessTokenCandidates(body []byte) (candidates []Secret, more bool) {
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimPrefix(body, []byte("\uFEFF"))))
	for {
		if start, err := dec.Token(); err != nil || start != json.Delim('{') {
			return candidates, more
		}
		for dec.More() {
			name, err := dec.Token()
			var value json.RawMessage
			if err != nil || dec.Decode(&value) != nil {
				return candidates, more
			}
			var text string
			if name != "access_token" || json.Unmarshal(value, &text) != nil || text == "" ||
				slices.ContainsFunc(candidates, func(s Secret) bool { return s.Reveal() == text }) {
				continue
			}
			if len(candidates) == maxTokenCandidates {
				more = true
				continue
			}
			candidates = append(candidates, NewSecret(text))
		}
		if _, err := dec.Token(); err != nil { // the closing brace
			return candidates, more
		}
	}
}

// candidateToken is what is known of a candidate token: what its value
// says, as a JWT, and the latest end it can have (boundUnknownEnd), since
// its answer's expires_in cannot be trusted.
func candidateToken(value Secret, sentAt, receivedAt time.Time, requested time.Duration) *Token {
	token := &Token{AccessToken: value, Format: FormatOpaque, SentAt: sentAt}
	if claims, isJWT := ReadClaims(value.Reveal()); isJWT {
		token.Format, token.ID, token.Claims = FormatJWT, claims.ID, &claims
	}
	boundUnknownEnd(token, receivedAt, requested)
	return token
}

// boundUnknownEnd gives a token whose answer did not say when it ends the
// latest end it can have: what was asked for (or the longest lifetime
// Beyond Identity gives, also for a JWT whose payload cannot be read), or
// its JWT's exp when that is later. Whoever must revoke it then knows how
// long it may stay alive.
func boundUnknownEnd(token *Token, receivedAt time.Time, requested time.Duration) {
	if !token.LatestEnd.IsZero() {
		return
	}
	claims, isJWT := ReadClaims(token.AccessToken.Reveal())
	if requested <= 0 || claims.PayloadUnread {
		requested = MaxTokenLifetime
	}
	token.LatestEnd = receivedAt.Add(requested).UTC().Add(time.Second - 1).Truncate(time.Second)
	if isJWT && claims.ExpiresAt.After(token.LatestEnd) {
		token.LatestEnd = claims.ExpiresAt
	}
	if token.ExpiresAt.IsZero() {
		token.ExpiresAt = token.LatestEnd
	}
}

// mayHaveIssued reports whether a failed token call may have reached
// Beyond Identity and issued a token: a request that left and got no
// answer, a 5xx other than 503 (a 502 or 504 comes from a gateway that may
// have passed the request on), or a 200 that could not be read. Not: a
// request that never left, a 4xx, a 429, a 503 or a redirect.
func mayHaveIssued(err error) bool {
	var transportErr *TransportError
	var apiErr *APIError
	var respErr *ResponseError
	switch {
	case errors.As(err, &transportErr):
		return !transportErr.NotSent()
	case errors.As(err, &apiErr):
		return apiErr.StatusCode >= 500 && apiErr.StatusCode != http.StatusServiceUnavailable
	case errors.As(err, &respErr):
		return respErr.StatusCode < 300 || (respErr.StatusCode >= 500 && respErr.StatusCode != http.StatusServiceUnavailable)
	}
	return false
}

func mintForm(mint MintRequest) (url.Values, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(mint.Scopes) > 0 {
		form.Set("scope", scope.Format(mint.Scopes))
	}
	if mint.Lifetime > 0 {
		seconds := int64(mint.Lifetime / time.Second)
		if seconds < 1 {
			return nil, errors.New("token lifetime must be at least one second")
		}
		form.Set("expiration_time", strconv.FormatInt(seconds, 10))
	}
	if len(mint.CustomClaims) > 0 {
		claims, err := json.Marshal(mint.CustomClaims)
		if err != nil {
			return nil, fmt.Errorf("encoding custom claims: %w", err)
		}
		form.Set("custom_claims", string(claims))
	}
	return form, nil
}

// tokenResponse is the RFC 6749 §5.1 answer. expires_in stays raw because
// servers send it as a number or a numeric string.
type tokenResponse struct {
	AccessToken string
	TokenType   string
	ExpiresIn   json.RawMessage
	// Scope stays raw: a string as RFC 6749 says, or, from a server that
	// says otherwise, anything, which is then a token to revoke.
	Scope json.RawMessage
}

// readTokenResponse reads a plain answer's members by their exact names,
// as RFC 8259 has them: encoding/json's struct decoding would also take
// "Access_Token" for access_token, and keep whichever of the two came last.
func readTokenResponse(body []byte) (tokenResponse, error) {
	var fields map[string]json.RawMessage
	var resp tokenResponse
	if json.Unmarshal(body, &fields) != nil || decodeMember(fields, "access_token", &resp.AccessToken) != nil ||
		decodeMember(fields, "token_type", &resp.TokenType) != nil {
		return resp, errors.New("body is not the documented JSON token answer")
	}
	resp.ExpiresIn, resp.Scope = fields["expires_in"], fields["scope"]
	return resp, nil
}

// decodeMember decodes fields[name], when there is one, into v.
func decodeMember(fields map[string]json.RawMessage, name string, v any) error {
	if raw, ok := fields[name]; ok {
		return json.Unmarshal(raw, v)
	}
	return nil
}

// ParseTokenResponse validates a 200 answer of the token endpoint. sentAt
// and receivedAt are when the request left and its answer arrived; requested
// the scopes asked for (RFC 6749 §5.1: an answer without scope granted
// exactly those). On a validation error the returned Token still carries the
// access token when there was one, so the caller can revoke it; an answer
// that is not plain JSON returns none (MintToken finds its candidates).
func ParseTokenResponse(body []byte, sentAt, receivedAt time.Time, requested []string) (*Token, error) {
	// An answer that is not plain JSON (a key written twice, trailing
	// bytes...) says different things to different readers: which token,
	// which lifetime, which scopes. The plugin never issues what it cannot
	// read plainly.
	if problem := PlainObjectProblem(body); problem != "" {
		return nil, fmt.Errorf("body cannot be read plainly: %s", problem)
	}
	resp, err := readTokenResponse(body)
	if err != nil {
		return nil, err
	}
	if resp.AccessToken == "" {
		return nil, errors.New("answer has no access_token")
	}
	token := &Token{AccessToken: NewSecret(resp.AccessToken), TokenType: resp.TokenType, Format: FormatOpaque}
	if strings.ContainsAny(resp.AccessToken, " \t\r\n\"\\") {
		return token, errors.New("access_token holds characters no Bearer token may carry")
	}
	// The claims come first, so that even a token that cannot be leased is
	// known by its id to whoever revokes it.
	claims, isJWT := ReadClaims(resp.AccessToken)
	if isJWT {
		token.Format, token.ID, token.Claims = FormatJWT, claims.ID, &claims
	}
	if !strings.EqualFold(resp.TokenType, "Bearer") {
		return token, fmt.Errorf("token_type is %q, not Bearer", CleanText(resp.TokenType, 32))
	}
	token.TokenType = "Bearer"
	lifetime, err := parseExpiresIn(resp.ExpiresIn)
	if err != nil {
		return token, err
	}
	token.ExpiresAt = sentAt.Add(lifetime).UTC().Truncate(time.Second)
	token.LatestEnd = receivedAt.Add(lifetime).UTC().Add(time.Second - 1).Truncate(time.Second)
	if isJWT && claims.PayloadUnread {
		// Its exp is unknown: it may live as long as any token.
		token.LatestEnd = later(token.LatestEnd, receivedAt.Add(MaxTokenLifetime).UTC().Truncate(time.Second))
	}
	if isJWT {
		if !claims.ExpiresAt.IsZero() && claims.ExpiresAt.Before(token.ExpiresAt) {
			token.ExpiresAt = claims.ExpiresAt
		}
		if claims.ExpiresAt.After(token.LatestEnd) {
			token.LatestEnd = claims.ExpiresAt
		}
	}
	if !token.ExpiresAt.After(sentAt) {
		return token, fmt.Errorf("the token had expired before it was issued (exp %s)", token.ExpiresAt.Format(time.RFC3339))
	}
	switch {
	case len(resp.Scope) > 0 && string(resp.Scope) != "null":
		scopes, problem := scopeClaim(resp.Scope)
		if problem != "" {
			return token, fmt.Errorf("the answer's scope %s", problem)
		}
		token.Scopes = scopes
	case isJWT && claims.HasScopes:
		token.Scopes = claims.Scopes
	default:
		token.Scopes = scope.Normalize(requested)
	}
	return token, nil
}

// parseExpiresIn reads a positive lifetime in seconds.
func parseExpiresIn(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, errors.New("answer has no expires_in")
	}
	text := strings.Trim(string(raw), `"`)
	seconds, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(seconds) || math.IsInf(seconds, 0) {
		return 0, errors.New("expires_in is not a number")
	}
	if seconds < 1 {
		return 0, fmt.Errorf("expires_in is %s, not a positive number of seconds", CleanText(text, 24))
	}
	if seconds > maxPlausibleExpiresIn.Seconds() {
		return 0, fmt.Errorf("expires_in of %s seconds is beyond any Beyond Identity token lifetime", CleanText(text, 24))
	}
	return time.Duration(seconds) * time.Second, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
