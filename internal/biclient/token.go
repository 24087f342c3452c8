package biclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
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
// 200 whose token cannot be leased fails with an UnusableTokenError that
// carries the token, which the caller must revoke.
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
		// A 200 whose token cannot be read: one may exist all the same.
		return nil, &OutcomeUnknownError{Err: &ResponseError{Call: CallToken, StatusCode: 200, Reason: err.Error()}, Lifetime: mint.Lifetime}
	default:
		token.SentAt = result.sentAt
		boundUnknownEnd(token, result.receivedAt, mint.Lifetime)
		// The reason quotes the answer's fields: scrubbed like an error body.
		return nil, &UnusableTokenError{Token: token, Reason: c.Scrub(err.Error(), token.AccessToken)}
	}
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
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
	// Scope stays raw: a string as RFC 6749 says, or, from a server that
	// says otherwise, anything, which is then a token to revoke.
	Scope json.RawMessage `json:"scope"`
}

// ParseTokenResponse validates a 200 answer of the token endpoint. sentAt
// and receivedAt are when the request left and its answer arrived; requested
// the scopes asked for (RFC 6749 §5.1: an answer without scope granted
// exactly those). On a validation error the returned Token still carries the
// access token when there was one, so the caller can revoke it.
func ParseTokenResponse(body []byte, sentAt, receivedAt time.Time, requested []string) (*Token, error) {
	var resp tokenResponse
	if !isJSONObject(body) {
		return nil, errors.New("body is not a JSON object")
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, errors.New("body is not the documented JSON token answer")
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
