package beyondidentity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/scope"
)

// The two flows that mint a token live here: issuing a credential keeps the
// token unless a check fails, and verifying a config discards it at once.
// Both mint the same way, discard a token they cannot keep, and say in the
// same words what became of it.

// mint runs the client-credentials grant. A token that comes back with an
// error is one Beyond Identity issued but the plugin cannot use: the
// caller must discard it. Without a token, nothing is known to discard.
func mint(ctx context.Context, client *biclient.Client, req biclient.MintRequest) (*biclient.Token, error) {
	token, err := client.MintToken(ctx, req)
	var unusable *biclient.UnusableTokenError
	if errors.As(err, &unusable) {
		return unusable.Token, logical.CodedError(http.StatusBadGateway, unusable.Error())
	}
	return token, err
}

// discarded says what became of a token the plugin had to discard.
func discarded(revokeErr error) string {
	if revokeErr == nil {
		return "the token was revoked"
	}
	return "revoking the token failed: " + revokeErr.Error()
}

// issue mints the planned token and builds its lease. From the moment the
// token exists, any failure revokes it before returning, so a failed request
// leaves nothing valid at Beyond Identity; once everything is known of the
// token, the journal covers the request dying before it can do so.
func (b *backend) issue(ctx context.Context, s logical.Storage, client *biclient.Client, plan *credentialPlan) (*logical.Response, error) {
	action := fmt.Sprintf("minting a token for role %q", plan.role)
	who := fmt.Sprintf("role %q", plan.role)
	token, err := mint(ctx, client, biclient.MintRequest{Scopes: plan.scopes, Lifetime: plan.lifetime, CustomClaims: plan.claims})
	if token == nil {
		return upstreamFailure(action, err)
	}
	minted := issuedFrom(client, token, plan.role)
	if err != nil {
		return b.abandon(ctx, s, minted, entryCreds, journal.Ticket{}, nil, fmt.Errorf("%s: %w", action, err))
	}
	want := asked{scopes: plan.scopes, claims: plan.claims, who: who}
	minted, facts, warnings, covered, errResp, err := b.learnAndCover(ctx, s, client, token, minted, want, entryCreds)
	if errResp != nil || err != nil {
		return b.abandon(ctx, s, minted, entryCreds, covered, errResp, err)
	}
	resp, err := b.credentialResponse(plan, token, minted, facts, warnings)
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("the request for role %q ended before its credential was returned: %w", plan.role, ctx.Err())
	}
	if err != nil {
		return b.abandon(ctx, s, minted, entryCreds, covered, nil, err)
	}
	b.journal.HandOver(covered)
	// Debug, like renewals: at info, a busy mount would write a line per
	// credential, which the audit log, the credential-issue event and the
	// issued metric already record.
	b.Logger().Debug("issued token", "role", plan.role, "entity_id", plan.entityID, "token_id", resp.Data["token_id"],
		"expires_at", resp.Data["expires_at"], "lease_ttl", resp.Secret.TTL.String())
	return resp, nil
}

// learnAndCover checks a fresh token against the scopes asked for, learns
// its facts, and covers it with the journal: an opaque token before the
// introspection that learns them, a JWT once checked. An error response or
// an error means the token must be discarded (with its ticket, if any).
func (b *backend) learnAndCover(ctx context.Context, s logical.Storage, client *biclient.Client, token *biclient.Token,
	minted issuedToken, want asked, kind string) (issuedToken, tokenFacts, []string, journal.Ticket, *logical.Response, error) {
	who := want.who
	covered, err := b.coverWhileLearning(ctx, s, minted, token, kind)
	if err != nil {
		return minted, tokenFacts{}, nil, journal.Ticket{}, nil, fmt.Errorf("recording the new token for %s: %w", who, err)
	}
	facts, warnings, errResp, err := checkToken(ctx, client, token, want)
	minted = minted.with(facts)
	if errResp != nil || err != nil || covered != (journal.Ticket{}) {
		return minted, facts, warnings, covered, errResp, err
	}
	covered, err = b.cover(ctx, s, minted, kind)
	if err != nil {
		err = fmt.Errorf("recording the new token for %s: %w", who, err)
	}
	return minted, facts, warnings, covered, nil, err
}

// issuedFrom is what the answer says of a fresh token: enough to revoke it.
func issuedFrom(client *biclient.Client, token *biclient.Token, role string) issuedToken {
	return issuedToken{AccessToken: token.AccessToken, TokenID: token.ID, ExpiresAt: token.ExpiresAt.Unix(),
		EndsBy: token.LatestEnd.Unix(), Issuer: client.Issuer(), ClientID: client.ClientID(), Role: role,
		SecretFingerprint: client.SecretFingerprint()}
}

// with is t with what the plugin learnt of it.
func (t issuedToken) with(facts tokenFacts) issuedToken {
	t.TokenID, t.ExpiresAt, t.EndsBy = facts.id, facts.expiresAt.Unix(), facts.endsBy.Unix()
	return t
}

// abandon revokes the token of a failed request and returns the failure
// (errResp or err) with what became of the token. kind is what the journal
// would call the token (entryCreds or entryStatic). The token's journal
// entry goes once the token is revoked or recorded for the plugin to keep
// revoking; while neither could be done, the entry stays for recovery to
// retry, and a token not covered yet is covered now. It runs even when the
// request was cancelled, bounded by the client's own timeout.
func (b *backend) abandon(ctx context.Context, s logical.Storage, minted issuedToken, kind string, covered journal.Ticket,
	errResp *logical.Response, err error) (*logical.Response, error) {
	ctx = context.WithoutCancel(ctx)
	revokeErr := b.revokeToken(ctx, s, minted, revocationKindOf(kind))
	settled := revocationSettled(revokeErr)
	outcome := discarded(revokeErr)
	if !settled && covered == (journal.Ticket{}) {
		covered, _ = b.cover(ctx, s, minted, kind)
	}
	switch {
	case settled:
		b.journal.HandOver(covered)
	case covered != (journal.Ticket{}):
		outcome += "; the plugin's recovery retries it"
	}
	var coded logical.HTTPCodedError
	switch {
	case errors.As(err, &coded):
		return nil, logical.CodedError(coded.Code(), fmt.Sprintf("%v; %s", err, outcome))
	case err != nil:
		return nil, fmt.Errorf("%w; %s", err, outcome)
	}
	errResp.Data["error"] = fmt.Sprintf("%s; %s", errResp.Data["error"], outcome)
	return errResp, nil
}

// tokenFacts is what the plugin knows of a fresh token.
type tokenFacts struct {
	id        string
	scopes    []string
	expiresAt time.Time // the earliest end
	endsBy    time.Time // the latest end
	// claims are the token's own claims: a JWT's, or an opaque token's
	// introspection; nil when that failed.
	claims *biclient.Claims
}

// learnToken gathers a fresh token's facts: from its answer and JWT claims,
// or for an opaque token from one introspection. Failing to learn an opaque
// token's id is worth a warning, not a failure.
// A fresh token that introspection reports inactive is a failure: it
// would be a credential that does not work.
func learnToken(ctx context.Context, client *biclient.Client, token *biclient.Token) (tokenFacts, []string, error) {
	facts := tokenFacts{id: token.ID, scopes: token.Scopes, expiresAt: token.ExpiresAt, endsBy: token.LatestEnd, claims: token.Claims}
	if token.Format != biclient.FormatOpaque {
		return facts, nil, nil
	}
	info, err := client.Introspect(ctx, token.AccessToken)
	switch {
	case err != nil:
		return facts, []string{fmt.Sprintf("token_id is unknown: introspecting the opaque token failed: %v", err)}, nil
	case !info.Active:
		return facts, nil, logical.CodedError(http.StatusBadGateway,
			"Beyond Identity's introspection reports the token it has just issued inactive")
	}
	facts.id, facts.claims = info.ID, &info.Claims
	// Introspection can only widen what is known of the token's end: its
	// earliest end sooner, its latest later.
	if !info.ExpiresAt.IsZero() {
		facts.expiresAt = minTime(facts.expiresAt, info.ExpiresAt)
		facts.endsBy = maxTime(facts.endsBy, info.ExpiresAt)
	}
	if facts.id == "" {
		return facts, []string{"token_id is unknown: introspection did not give the opaque token's jti"}, nil
	}
	return facts, nil, nil
}

// checkToken learns a fresh token's facts and checks it against what was
// asked of it (trust.go). An error response (the operator's to fix) or an
// error means the token must be discarded.
func checkToken(ctx context.Context, client *biclient.Client, token *biclient.Token, want asked) (tokenFacts, []string, *logical.Response, error) {
	facts, warnings, err := learnToken(ctx, client, token)
	if err != nil {
		return facts, nil, nil, err
	}
	checkWarnings, errResp, err := checkGrant(want, facts.scopes, facts.claims, token.Format == biclient.FormatJWT)
	if errResp != nil || err != nil {
		return facts, nil, errResp, err
	}
	if facts.claims != nil && facts.claims.HasScopes {
		facts.scopes = facts.claims.Scopes
	}
	return facts, append(warnings, checkWarnings...), nil, nil
}

// scopeDifference lists what granted lacks of requested and what it has
// beyond it, or two empty strings when they are equal.
func scopeDifference(requested, granted []string) (missing, extra string) {
	lacking, beyond := scope.Missing(requested, granted), scope.Missing(granted, requested)
	if len(lacking) == 0 && len(beyond) == 0 {
		return "", ""
	}
	return listOrNone(lacking), listOrNone(beyond)
}

func listOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, " ")
}

// verifyConnection mints a short token with new credentials and revokes it
// at once, so credentials that do not work, or cannot revoke what they
// issue, are never saved. Its token is never recorded: the config is not
// saved yet, and the token ends on its own within verifyTokenLifetime.
func (b *backend) verifyConnection(ctx context.Context, client *biclient.Client) (*logical.Response, error) {
	const action = "verify_connection: minting a test token"
	token, err := mint(ctx, client, biclient.MintRequest{Lifetime: verifyTokenLifetime})
	if token == nil {
		return upstreamFailure(action, err)
	}
	// Revoke even if the request was cancelled meanwhile.
	revokeErr := client.Revoke(context.WithoutCancel(ctx), token.AccessToken)
	if revokeErr != nil {
		revokeErr = fmt.Errorf("%w; the test token expires on its own within %s", revokeErr, verifyTokenLifetime)
	}
	switch {
	case err != nil:
		return upstreamFailure(action, fmt.Errorf("%w; %s", err, discarded(revokeErr)))
	case revokeErr != nil:
		return upstreamFailure("verify_connection: a test token was minted but revoking it failed, so these "+
			"credentials cannot revoke what they issue", revokeErr)
	}
	b.Logger().Debug("verified connection", "token_url", biclient.TokenURL(client.Issuer()), "token_id", token.ID)
	return nil, nil
}

// upstreamFailure turns a client error into the plugin's answer. Beyond
// Identity refusing the request is the operator's to fix: 400. Anything else
// carries the status that says what went wrong upstream: 503 when Beyond
// Identity throttled or was unavailable past the retries, or every call slot
// stayed busy (try later); 504 on a timeout; 502 for a failed connection, a
// server or gateway error, or an answer that made no sense.
func upstreamFailure(action string, err error) (*logical.Response, error) {
	var apiErr *biclient.APIError
	if errors.As(err, &apiErr) && apiErr.Refused() {
		return logical.ErrorResponse("%s: %s", action, err), nil
	}
	return nil, logical.CodedError(upstreamStatus(err), fmt.Sprintf("%s: %v", action, err))
}

func upstreamStatus(err error) int {
	var apiErr *biclient.APIError
	var transportErr *biclient.TransportError
	var coded logical.HTTPCodedError
	switch {
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
