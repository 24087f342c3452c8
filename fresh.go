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
)

// The life of a fresh token, written once for creds and static rotations:
// from Beyond Identity's answer until something holds the token (a lease,
// or a static role's record) or it is discarded. mintFresh mints, covers
// and checks; keep hands the cover over once a lease or a role holds the
// token; discard revokes it, or records it for the background work to
// revoke, and settles its cover. Between the answer and either end the
// journal (internal/journal) covers the token, so that a request that dies
// leaves nothing valid that no one owns: recovery (recovery.go) settles
// it. See docs/architecture.md.
//
// One other mint passes outside this door: verify_connection's test token
// (verifyConnection, path_config.go). It is not journaled: the config
// write revokes it at once, before the config it tests is saved, and it
// ends on its own within verifyTokenLifetime, far sooner than the journal's
// minimum age: the journal covers no token whose whole life is that short.

// order is what a fresh token is minted to be.
type order struct {
	role string
	// static says role is a static role.
	static   bool
	scopes   []string
	claims   map[string]any
	lifetime time.Duration
}

// who names the order's role in messages.
func (o *order) who() string {
	if o.static {
		return fmt.Sprintf("static role %q", o.role)
	}
	return fmt.Sprintf("role %q", o.role)
}

// freshToken is a token Beyond Identity has just issued.
type freshToken struct {
	// issuedToken is what revoking the token takes: its id and ends are
	// the answer's, then what learn learnt, held here alone.
	issuedToken
	answer *biclient.Token
	// scopes and claims are what else learn learnt: the scopes granted,
	// and the token's own claims (a JWT's, or an opaque token's
	// introspection; nil when that failed).
	scopes   []string
	claims   *biclient.Claims
	warnings []string
	// ticket is the token's cover; zero while it needs none.
	ticket journal.Ticket
	// scrub removes the client's credentials and the token from text
	// quoted from Beyond Identity.
	scrub func(string) string
}

// mintFresh mints the order's token, covers it and checks it against the
// order. From the moment the token exists, a failure discards it before
// returning, and says what became of it.
func (b *backend) mintFresh(ctx context.Context, s logical.Storage, client *biclient.Client, o *order) (*freshToken, error) {
	action := "minting a token for " + o.who()
	tokens, err := mint(ctx, client, biclient.MintRequest{Scopes: o.scopes, Lifetime: o.lifetime, CustomClaims: o.claims})
	switch {
	case len(tokens) == 0:
		return nil, upstreamRefusal(action, err)
	case err != nil:
		return nil, b.discardEach(ctx, s, client, o, tokens, fmt.Errorf("%s: %w", action, err))
	}
	f := newFreshToken(client, tokens[0], o)
	if err := b.coverAndCheck(ctx, s, client, f, o); err != nil {
		return nil, b.discard(ctx, s, f, err)
	}
	return f, nil
}

func newFreshToken(client *biclient.Client, token *biclient.Token, o *order) *freshToken {
	return &freshToken{issuedToken: issuedFrom(client, token, o), answer: token,
		scrub: func(text string) string { return client.Scrub(text, token.AccessToken) }}
}

// mint runs the client-credentials grant; on success it returns the one
// token. Tokens that come back with an error are ones Beyond Identity
// issued, or may have (every access_token of an answer that is not plain
// JSON), but the plugin cannot use: the caller must discard every one.
// Without tokens, nothing is known to discard.
func mint(ctx context.Context, client *biclient.Client, req biclient.MintRequest) ([]*biclient.Token, error) {
	token, err := client.MintToken(ctx, req)
	var unusable *biclient.UnusableTokenError
	switch {
	case errors.As(err, &unusable):
		return unusable.Tokens(), refuse(http.StatusBadGateway, "%s", unusable.Error())
	case err != nil:
		return nil, err
	}
	return []*biclient.Token{token}, nil
}

// issuedFrom is what the answer says of a fresh token: enough to revoke it.
func issuedFrom(client *biclient.Client, token *biclient.Token, o *order) issuedToken {
	return issuedToken{AccessToken: token.AccessToken, TokenID: token.ID, ExpiresAt: token.ExpiresAt.Unix(),
		EndsBy: token.LatestEnd.Unix(), Issuer: client.Issuer(), ClientID: client.ClientID(), Role: o.role,
		Static: o.static, SecretFingerprint: client.SecretFingerprint()}
}

// coverAndCheck learns a fresh token's facts, checks it against the order
// (trust.go) and covers it with the journal: an opaque token before the
// introspection that learns them, a JWT once checked, since its facts are
// in the token itself.
func (b *backend) coverAndCheck(ctx context.Context, s logical.Storage, client *biclient.Client, f *freshToken, o *order) error {
	if err := b.coverWhileLearning(ctx, s, f); err != nil {
		return fmt.Errorf("recording the new token for %s: %w", o.who(), err)
	}
	if err := f.learn(ctx, client); err != nil {
		return err
	}
	checkWarnings, err := f.checkGrant(o)
	if err != nil {
		return err
	}
	f.warnings = append(f.warnings, checkWarnings...)
	if f.claims != nil && f.claims.HasScopes {
		f.scopes = f.claims.Scopes
	}
	if f.ticket != (journal.Ticket{}) {
		return nil
	}
	if err := b.cover(ctx, s, f); err != nil {
		return fmt.Errorf("recording the new token for %s: %w", o.who(), err)
	}
	return nil
}

// learn gathers what a fresh token's answer does not hold: a JWT's are in
// its claims, and an opaque token's come from one introspection. Failing to
// learn an opaque token's id is worth a warning, not a failure; a fresh
// token that introspection reports inactive is a failure: it would be a
// credential that does not work.
func (f *freshToken) learn(ctx context.Context, client *biclient.Client) error {
	token := f.answer
	f.scopes, f.claims = token.Scopes, token.Claims
	if token.Format != biclient.FormatOpaque {
		return nil
	}
	info, err := client.Introspect(ctx, token.AccessToken)
	switch {
	case err != nil:
		f.warnings = append(f.warnings, fmt.Sprintf("token_id is unknown: introspecting the opaque token failed: %v", err))
	case !info.Active:
		return refuse(http.StatusBadGateway, "Beyond Identity's introspection reports the token it has just issued inactive")
	default:
		f.TokenID, f.claims = info.ID, &info.Claims
		f.widenEnds(info.ExpiresAt)
		if f.TokenID == "" {
			f.warnings = append(f.warnings, "token_id is unknown: introspection did not give the opaque token's jti")
		}
	}
	return nil
}

// widenEnds takes in an end introspection reports, which can only widen
// what is known of the token's end: its earliest end sooner, its latest
// later. Ends are whole seconds (biclient's, and exp's), so the seconds
// issuedToken keeps lose nothing.
func (f *freshToken) widenEnds(end time.Time) {
	if end.IsZero() {
		return
	}
	f.ExpiresAt = min(f.ExpiresAt, end.Unix())
	f.EndsBy = max(f.EndsBy, end.Unix())
}

// keep hands a fresh token's cover over: a lease or a static role holds
// the token now.
func (b *backend) keep(f *freshToken) {
	b.journal.HandOver(f.ticket)
}

// discard revokes a fresh token that cannot be kept, and returns cause
// with what became of the token. The token's cover goes once the token is
// revoked or recorded for the plugin to keep revoking; while neither could
// be done, the cover stays for recovery to retry, and a token not covered
// yet is covered now. It runs even when the request was cancelled, bounded
// by the client's own timeout.
func (b *backend) discard(ctx context.Context, s logical.Storage, f *freshToken, cause error) error {
	return withOutcome(cause, b.settle(ctx, s, f))
}

// discardEach discards the tokens of an unusable answer, and returns cause
// with what became of each.
func (b *backend) discardEach(ctx context.Context, s logical.Storage, client *biclient.Client, o *order, tokens []*biclient.Token, cause error) error {
	outcomes := make([]string, len(tokens))
	for i, token := range tokens {
		outcomes[i] = b.settle(ctx, s, newFreshToken(client, token, o))
		if len(tokens) > 1 {
			outcomes[i] = fmt.Sprintf("candidate %d of %d: %s", i+1, len(tokens), outcomes[i])
		}
	}
	return withOutcome(cause, strings.Join(outcomes, "; "))
}

// settle revokes a fresh token that cannot be kept (see discard), and says
// what became of it.
func (b *backend) settle(ctx context.Context, s logical.Storage, f *freshToken) string {
	ctx = context.WithoutCancel(ctx)
	revokeErr := b.revokeToken(ctx, s, f.issuedToken, f.revocationKind())
	settled := revocationSettled(revokeErr)
	outcome := discarded(revokeErr)
	if !settled && f.ticket == (journal.Ticket{}) {
		_ = b.cover(ctx, s, f)
	}
	switch {
	case settled:
		b.journal.HandOver(f.ticket)
	case f.ticket != (journal.Ticket{}):
		outcome += "; the plugin's recovery retries it"
	}
	return outcome
}

// discarded says what became of a token the plugin had to discard.
func discarded(revokeErr error) string {
	if revokeErr == nil {
		return "the token was revoked"
	}
	return "revoking the token failed: " + revokeErr.Error()
}

// revocationKind is what revocations/ calls the token, should its
// revocation fail.
func (t issuedToken) revocationKind() string {
	if t.Static {
		return kindStatic
	}
	return kindLease
}

// journalEntry is one covered token, as the journal's pages store it. Kind
// is its revocation kind; pages written before tokens said whether they
// were static carry "static" or "creds" there.
type journalEntry struct {
	storedToken
	Kind string `json:"kind"`
}

// cover journals a fresh token until it is handed over. A token that ends
// before recovery could act needs no cover (the zero ticket).
func (b *backend) cover(ctx context.Context, s logical.Storage, f *freshToken) error {
	ticket, err := b.coverUntil(ctx, s, f, f.endsBy())
	f.ticket = ticket
	return err
}

func (b *backend) coverUntil(ctx context.Context, s logical.Storage, f *freshToken, endsBy time.Time) (journal.Ticket, error) {
	entry := journalEntry{storedToken: stored(f.issuedToken), Kind: f.revocationKind()}
	entry.EndsBy = max(entry.EndsBy, endsBy.Unix())
	return b.journal.Cover(ctx, s, entry, endsBy)
}

// coverWhileLearning covers an opaque token before the plugin introspects
// it, since that call may take as long as request_timeout and the node may
// die meanwhile. Until introspection says otherwise, the token may live as
// long as any Beyond Identity token, so that is the end its entry records:
// recovery never counts it ended too soon. A JWT's facts are in the token
// itself, known at once: it is covered once checked.
func (b *backend) coverWhileLearning(ctx context.Context, s logical.Storage, f *freshToken) error {
	if f.answer.Format != biclient.FormatOpaque {
		return nil
	}
	ticket, err := b.coverUntil(ctx, s, f, maxTime(f.endsBy(), f.answer.SentAt.Add(biclient.MaxTokenLifetime)))
	f.ticket = ticket
	return err
}
