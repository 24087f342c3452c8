package beyondidentity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// Revocation records (revocationPrefix) hold the tokens whose revocation
// failed and that the plugin keeps revoking in the background, and, once
// that succeeded, a record without the token until the token's end, so
// that Vault's next attempt on the lease succeeds at once. Entries are
// node-local (each cluster revokes its own leases) and seal-wrapped.

// Backoff between background revocation attempts: short enough that a
// revocation completes within about a minute of Beyond Identity's recovery.
const (
	revocationRetryBase = 10 * time.Second
	revocationRetryMax  = time.Minute
)

// What a token to revoke was, for operators reading revocations/.
const (
	kindLease     = "lease"     // a creds token: its lease's revocation, or a failed request's token
	kindStatic    = "static"    // a static role's token: retired, replaced, or of a deleted role
	kindRecovered = "recovered" // a token the journal's recovery found: its request died
)

// revocationRecord is a token the plugin owes a revocation, or, once
// revoked (Token empty), proof of it.
type revocationRecord struct {
	storedToken
	Kind      string `json:"kind,omitempty"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error,omitempty"`
	// Next is when to try again; for a revoked record, when to forget it.
	Next      time.Time `json:"next"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

func (r *revocationRecord) revoked() bool { return !r.RevokedAt.IsZero() }

// staticRoleOf is the static role whose token a record is, or "".
func (r *revocationRecord) staticRoleOf() string {
	if r.staticBy(r.Kind) {
		return r.Role
	}
	return ""
}

// revocationKey names a token's record without revealing the token.
func revocationKey(token biclient.Secret) string {
	sum := sha256.Sum256([]byte(token.Reveal()))
	return hex.EncodeToString(sum[:])
}

// revocationError is a revocation that failed now; queued says whether the
// plugin recorded the token to keep trying in the background.
type revocationError struct {
	err    error
	queued bool
	endsBy time.Time
}

// revocationSettled reports whether a revocation needs nothing more of its
// caller: it is done, or recorded for the background work to finish.
func revocationSettled(err error) bool {
	var pending *revocationError
	return err == nil || (errors.As(err, &pending) && pending.queued)
}

func (e *revocationError) Error() string {
	if e.queued {
		return fmt.Sprintf("%v; the plugin keeps retrying the revocation in the background until it succeeds "+
			"or the token ends at %s", e.err, e.endsBy.Format(time.RFC3339))
	}
	return fmt.Sprintf("%v; the token stays valid until it ends, at the latest %s", e.err, e.endsBy.Format(time.RFC3339))
}

func (e *revocationError) Unwrap() error { return e.err }

// revokeToken revokes a token at Beyond Identity. Its nil error is a promise
// that the token no longer works. When the revocation fails, the token is
// recorded (as kind) and the plugin keeps revoking it in the background,
// and the error still goes back to the caller, so that Vault, too, keeps
// the lease and retries. No lock is held across the call to Beyond
// Identity: the record's lock guards only its reads and writes, and two
// attempts at once on one token at worst revoke it twice, which is safe.
func (b *backend) revokeToken(ctx context.Context, s logical.Storage, t issuedToken, kind string) error {
	key := revocationKey(t.AccessToken)
	record, readErr := readRevocation(ctx, s, key)
	if readErr != nil {
		b.Logger().Warn("reading a revocation record failed; revoking anyway", "token_id", t.TokenID, "error", readErr)
	}
	if record != nil && record.revoked() {
		// The plugin revoked it in the background: Vault's attempt on the
		// lease is done at once, and the record has served its purpose.
		b.forgetRevocation(ctx, s, key)
		return nil
	}
	err := b.revokeUpstream(ctx, s, t)
	switch {
	case err == nil:
		b.revoked(t, "revoked")
		if record != nil {
			b.forgetRevocation(ctx, s, key)
		}
		return nil
	case t.surelyExpired(b.clock.Now()):
		b.Logger().Info("token already ended; nothing to revoke", "role", t.Role, "token_id", t.TokenID, "reason", err)
		b.revoked(t, "ended")
		if record != nil {
			b.forgetRevocation(ctx, s, key)
		}
		return nil
	}
	failure := &revocationError{err: err, endsBy: t.endsBy()}
	var noCredentials *noCredentialsError
	if !errors.As(err, &noCredentials) {
		failure.queued = b.recordRevocation(ctx, s, key, t, kind, err) == nil
	}
	b.Logger().Warn("revocation failed", "role", t.Role, "token_id", t.TokenID, "error", err, "retried_in_background", failure.queued)
	outcome := "failed"
	if failure.queued {
		outcome = "retrying"
	}
	b.countRevocation(outcome)
	b.event("revoke-failure", false, "role", t.Role, "token_id", t.TokenID, "retrying", strconv.FormatBool(failure.queued),
		"error", biclient.CleanText(err.Error(), 512))
	return failure
}

// countRevocation counts one revocation attempt by its outcome: revoked,
// ended, retrying or failed.
func (b *backend) countRevocation(outcome string) {
	b.metrics.revocations.WithLabelValues(outcome).Inc()
}

// revoked counts a revocation that is done, and says so in an event.
func (b *backend) revoked(t issuedToken, outcome string) {
	b.countRevocation(outcome)
	b.event("revoke", false, "role", t.Role, "token_id", t.TokenID, "outcome", outcome)
}

// revokeUpstream revokes a token with the credentials of the application
// and client that issued it: Beyond Identity answers 200 to a revocation by
// another application and leaves the token alone, so only those will do.
// The client's current secret goes first; when Beyond Identity refuses a
// secret as invalid_client (it was rotated, or a bad one was written), the
// retained secret that minted the token follows (clientsFor).
func (b *backend) revokeUpstream(ctx context.Context, s logical.Storage, t issuedToken) error {
	clients, err := b.clientsFor(ctx, s, t)
	if err != nil {
		return fmt.Errorf("revoking %s: %w", t.describe(), err)
	}
	var refused error
	for _, client := range clients {
		err := client.Revoke(ctx, t.AccessToken)
		var apiErr *biclient.APIError
		if errors.As(err, &apiErr) && apiErr.InvalidClient() {
			refused = err
			continue
		}
		if err != nil {
			return &tokenScrubbed{fmt.Errorf("revoking %s: %w", t.describe(), err), t.AccessToken}
		}
		return nil
	}
	return &tokenScrubbed{fmt.Errorf("revoking %s: Beyond Identity refused each of the %d secrets the plugin holds for client %s "+
		"(write the client's current secret to config): %w", t.describe(), len(clients), t.ClientID, refused), t.AccessToken}
}

// tokenScrubbed is an error whose text never holds the token it is about,
// in any form an upstream may echo it: the client scrubs what it reads, and
// this keeps the promise wherever the error's text goes next (the log,
// revocations/, an event).
type tokenScrubbed struct {
	err   error
	token biclient.Secret
}

func (e *tokenScrubbed) Error() string { return biclient.Scrub(e.err.Error(), e.token) }
func (e *tokenScrubbed) Unwrap() error { return e.err }

// recordRevocation records a failed revocation durably (or counts one more
// failure of a recorded one) and schedules the next attempt. A record that
// another attempt has meanwhile marked revoked stays as it is.
func (b *backend) recordRevocation(ctx context.Context, s logical.Storage, key string, t issuedToken, kind string, cause error) error {
	defer b.lockRevocation(key)()
	record, err := readRevocation(ctx, s, key)
	switch {
	case err != nil:
		b.Logger().Warn("reading a revocation record failed; writing it anew", "token_id", t.TokenID, "error", err)
		record = nil
	case record != nil && record.revoked():
		return nil
	}
	if record == nil {
		record = &revocationRecord{storedToken: stored(t), Kind: kind}
	}
	record.Attempts++
	// Scrubbed again here, whatever the cause: revocations/ must never
	// hold the token, even should a caller pass an error that was not.
	record.LastError = biclient.CleanText(biclient.Scrub(cause.Error(), t.AccessToken), 512)
	record.Next = b.clock.Now().Add(revocationBackoff(record.Attempts))
	if err := writeRevocation(ctx, s, key, record); err != nil {
		b.Logger().Error("recording a failed revocation failed", "token_id", t.TokenID, "error", err)
		return err
	}
	b.pushItem(revocationPrefix+key, record.Next)
	b.pendingRevocations.add(key, record.staticRoleOf())
	return nil
}

// forgetRevocation deletes a record that is no longer needed. A failure
// leaves it for the background work, which finds nothing to do.
func (b *backend) forgetRevocation(ctx context.Context, s logical.Storage, key string) {
	defer b.lockRevocation(key)()
	if err := s.Delete(ctx, revocationPrefix+key); err != nil {
		b.Logger().Warn("deleting a revocation record failed", "error", err)
		return
	}
	b.popFromQueueByKey(revocationPrefix + key)
	b.pendingRevocations.remove(key)
}

// revocationBackoff is the wait before attempt n+1: doubling from
// revocationRetryBase up to revocationRetryMax, less up to a fifth at
// random so that records that failed together do not retry together.
func revocationBackoff(attempts int) time.Duration {
	delay := backoff(revocationRetryBase, revocationRetryMax, attempts)
	return delay - rand.N(delay/5+1)
}

// retryRevocation is the background work's attempt on one record.
func (b *backend) retryRevocation(ctx context.Context, s logical.Storage, key string) {
	now := b.clock.Now()
	record, err := readRevocation(ctx, s, key)
	switch {
	case err != nil:
		b.Logger().Warn("reading a revocation record failed; trying again later", "error", err)
		b.pushItem(revocationPrefix+key, now.Add(revocationRetryMax))
		return
	case record == nil:
		b.pendingRevocations.remove(key)
		return
	case record.revoked():
		if now.Before(record.Next) {
			b.pushItem(revocationPrefix+key, record.Next)
			return
		}
		b.forgetRevocation(ctx, s, key)
		return
	}
	t := record.token()
	revokeErr := b.revokeUpstream(ctx, s, t)
	switch {
	case revokeErr == nil:
		b.Logger().Info("revoked a token in the background", "role", t.Role, "token_id", t.TokenID, "attempts", record.Attempts+1)
		b.revoked(t, "revoked")
		b.keepProofOfRevocation(ctx, s, key, record, now)
	case t.surelyExpired(now):
		b.Logger().Info("token ended before its revocation could be done", "role", t.Role, "token_id", t.TokenID)
		b.revoked(t, "ended")
		b.forgetRevocation(ctx, s, key)
	default:
		b.Logger().Warn("background revocation failed; will retry", "role", t.Role, "token_id", t.TokenID,
			"attempts", record.Attempts+1, "error", revokeErr)
		b.countRevocation("retrying")
		if err := b.recordRevocation(ctx, s, key, t, record.Kind, revokeErr); err != nil {
			b.pushItem(revocationPrefix+key, now.Add(revocationRetryMax))
		}
	}
}

// keepProofOfRevocation replaces a revoked token's record with one without
// the token, kept until the token would have ended, so that Vault's next
// attempt on its lease succeeds at once.
func (b *backend) keepProofOfRevocation(ctx context.Context, s logical.Storage, key string, record *revocationRecord, now time.Time) {
	unlock := b.lockRevocation(key)
	b.pendingRevocations.remove(key)
	record.AccessToken, record.RevokedAt, record.LastError = storedSecret{}, now, ""
	record.Next = record.endsBy().Add(expiredMargin)
	err := writeRevocation(ctx, s, key, record)
	unlock()
	if err != nil {
		// Without the proof, Vault's next attempt revokes again: harmless.
		b.forgetRevocation(ctx, s, key)
		return
	}
	b.pushItem(revocationPrefix+key, record.Next)
}

// revocationDue is when populateQueue schedules a record found in storage.
func (b *backend) revocationDue(ctx context.Context, s logical.Storage, key string) (time.Time, bool, error) {
	record, err := readRevocation(ctx, s, key)
	if err != nil || record == nil {
		return time.Time{}, false, err
	}
	if !record.revoked() {
		b.pendingRevocations.add(key, record.staticRoleOf())
	}
	return record.Next, true, nil
}

func readRevocation(ctx context.Context, s logical.Storage, key string) (*revocationRecord, error) {
	record := &revocationRecord{}
	if found, err := getJSON(ctx, s, revocationPrefix+key, "revocation record", record); !found || err != nil {
		return nil, err
	}
	return record, nil
}

func writeRevocation(ctx context.Context, s logical.Storage, key string, record *revocationRecord) error {
	return putJSON(ctx, s, revocationPrefix+key, "revocation record", record)
}

// staticBy reports whether the token is a static role's: as it says, or,
// for a record written before tokens said so, as the record's kind says
// (kindStatic). The one way to read an old record's static-ness.
func (t issuedToken) staticBy(kind string) bool {
	return t.Static || kind == kindStatic
}

// pendingOfStaticRole counts the pending revocations of a static role's
// tokens, loading them from storage first if the background loop has not.
func (b *backend) pendingOfStaticRole(ctx context.Context, s logical.Storage, name string) (int, error) {
	if n, loaded := b.pendingRevocations.ofStaticRole(name); loaded {
		return n, nil
	}
	keys, err := s.List(ctx, revocationPrefix)
	if err != nil {
		return 0, fmt.Errorf("listing the pending revocations: %w", err)
	}
	for _, key := range keys {
		if record, err := readRevocation(ctx, s, key); err == nil && record != nil && !record.revoked() {
			b.pendingRevocations.add(key, record.staticRoleOf())
		}
	}
	b.pendingRevocations.markLoaded()
	n, _ := b.pendingRevocations.ofStaticRole(name)
	return n, nil
}
