package beyondidentity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// revocationPrefix holds the tokens whose revocation failed and that the
// plugin keeps revoking in the background, and, once that succeeded, a
// record without the token until the token's end, so that Vault's next
// attempt on the lease succeeds at once. Entries are node-local (each
// cluster revokes its own leases) and seal-wrapped.
const revocationPrefix = "revocations/"

// Backoff between background revocation attempts: short enough that a
// revocation completes within about a minute of Beyond Identity's recovery.
const (
	revocationRetryBase = 10 * time.Second
	revocationRetryMax  = time.Minute
)

// revocationRecord is a token the plugin owes a revocation, or, once
// revoked (Token empty), proof of it.
type revocationRecord struct {
	issuedToken
	Token     string `json:"access_token,omitempty"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error,omitempty"`
	// Next is when to try again; for a revoked record, when to forget it.
	Next      time.Time `json:"next"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

func (r *revocationRecord) revoked() bool { return !r.RevokedAt.IsZero() }

// keySet is a set of keys safe for concurrent use: the revocations pending
// in the background, for the metrics.
type keySet struct {
	mu   sync.Mutex
	keys map[string]struct{}
}

func (k *keySet) add(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys == nil {
		k.keys = map[string]struct{}{}
	}
	k.keys[key] = struct{}{}
}

func (k *keySet) remove(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.keys, key)
}

func (k *keySet) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.keys)
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
// caller: it is done, or recorded for the background worker to finish.
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
// recorded and the plugin keeps revoking it in the background, and the error
// still goes back to the caller, so that Vault, too, keeps the lease and
// retries.
func (b *backend) revokeToken(ctx context.Context, s logical.Storage, t issuedToken) error {
	key := revocationKey(t.AccessToken)
	lock := locksutil.LockForKey(b.revocationLocks, key)
	lock.Lock()
	defer lock.Unlock()

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
		failure.queued = b.queueRevocation(ctx, s, key, t, record, err) == nil
	}
	b.Logger().Warn("revocation failed", "role", t.Role, "token_id", t.TokenID, "error", err, "retried_in_background", failure.queued)
	outcome := "failed"
	if failure.queued {
		outcome = "retrying"
	}
	b.metrics.revocations.WithLabelValues(outcome).Inc()
	b.event("revoke-failure", "role", t.Role, "token_id", t.TokenID, "retrying", strconv.FormatBool(failure.queued),
		"error", biclient.CleanText(err.Error(), 512))
	return failure
}

// revoked counts a revocation that is done, and says so in an event.
func (b *backend) revoked(t issuedToken, outcome string) {
	b.metrics.revocations.WithLabelValues(outcome).Inc()
	b.event("revoke", "role", t.Role, "token_id", t.TokenID, "outcome", outcome)
}

// revokeUpstream revokes a token with the credentials of the application
// that issued it. Beyond Identity answers 200 to a revocation by another
// application and leaves the token alone, so only those credentials will do.
func (b *backend) revokeUpstream(ctx context.Context, s logical.Storage, t issuedToken) error {
	client, err := b.clientFor(ctx, s, t.Issuer, t.ClientID)
	if err != nil {
		return fmt.Errorf("revoking %s: %w", t.describe(), err)
	}
	if err := client.Revoke(ctx, t.AccessToken); err != nil {
		return fmt.Errorf("revoking %s: %w", t.describe(), err)
	}
	return nil
}

// queueRevocation records a failed revocation durably and schedules the
// next attempt. The caller holds the token's lock.
func (b *backend) queueRevocation(ctx context.Context, s logical.Storage, key string, t issuedToken,
	record *revocationRecord, cause error) error {
	if record == nil {
		record = &revocationRecord{issuedToken: t, Token: t.AccessToken.Reveal()}
	}
	record.Attempts++
	record.LastError = biclient.CleanText(cause.Error(), 512)
	record.Next = b.clock.Now().Add(revocationBackoff(record.Attempts))
	if err := writeRevocation(ctx, s, key, record); err != nil {
		b.Logger().Error("recording a failed revocation failed", "token_id", t.TokenID, "error", err)
		return err
	}
	b.schedule.set(revocationPrefix+key, record.Next)
	b.pendingRevocations.add(key)
	return nil
}

// forgetRevocation deletes a record that is no longer needed. A failure
// leaves it for the background worker, which finds nothing to do.
func (b *backend) forgetRevocation(ctx context.Context, s logical.Storage, key string) {
	if err := s.Delete(ctx, revocationPrefix+key); err != nil {
		b.Logger().Warn("deleting a revocation record failed", "error", err)
		return
	}
	b.schedule.remove(revocationPrefix + key)
	b.pendingRevocations.remove(key)
}

// revocationBackoff is the wait before attempt n+1: doubling from
// revocationRetryBase up to revocationRetryMax, less up to a fifth at
// random so that records that failed together do not retry together.
func revocationBackoff(attempts int) time.Duration {
	delay := min(revocationRetryBase<<min(attempts-1, 8), revocationRetryMax)
	return delay - rand.N(delay/5+1)
}

// retryRevocation is the background worker's attempt on one record.
func (b *backend) retryRevocation(ctx context.Context, s logical.Storage, key string) {
	lock := locksutil.LockForKey(b.revocationLocks, key)
	lock.Lock()
	defer lock.Unlock()

	now := b.clock.Now()
	record, err := readRevocation(ctx, s, key)
	switch {
	case err != nil:
		b.Logger().Warn("reading a revocation record failed; trying again later", "error", err)
		b.schedule.set(revocationPrefix+key, now.Add(revocationRetryMax))
		return
	case record == nil:
		b.schedule.remove(revocationPrefix + key)
		return
	case record.revoked():
		if now.Before(record.Next) {
			b.schedule.set(revocationPrefix+key, record.Next)
			return
		}
		b.forgetRevocation(ctx, s, key)
		return
	}
	t := record.issuedToken
	t.AccessToken = biclient.NewSecret(record.Token)
	revokeErr := b.revokeUpstream(ctx, s, t)
	switch {
	case revokeErr == nil:
		b.Logger().Info("revoked a token in the background", "role", t.Role, "token_id", t.TokenID, "attempts", record.Attempts+1)
		b.revoked(t, "revoked")
		b.pendingRevocations.remove(key)
		record.Token, record.RevokedAt, record.LastError = "", now, ""
		record.Next = t.endsBy().Add(expiredMargin)
		if err := writeRevocation(ctx, s, key, record); err != nil {
			// Without the proof, Vault's next attempt revokes again: harmless.
			b.forgetRevocation(ctx, s, key)
			return
		}
		b.schedule.set(revocationPrefix+key, record.Next)
	case t.surelyExpired(now):
		b.Logger().Info("token ended before its revocation could be done", "role", t.Role, "token_id", t.TokenID)
		b.revoked(t, "ended")
		b.forgetRevocation(ctx, s, key)
	default:
		b.Logger().Warn("background revocation failed; will retry", "role", t.Role, "token_id", t.TokenID,
			"attempts", record.Attempts+1, "error", revokeErr)
		b.metrics.revocations.WithLabelValues("retrying").Inc()
		if err := b.queueRevocation(ctx, s, key, t, record, revokeErr); err != nil {
			b.schedule.set(revocationPrefix+key, now.Add(revocationRetryMax))
		}
	}
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

// loadRevocations schedules the records a previous process or another node
// left.
func (b *backend) loadRevocations(ctx context.Context, s logical.Storage) error {
	keys, err := s.List(ctx, revocationPrefix)
	if err != nil {
		return fmt.Errorf("listing revocation records: %w", err)
	}
	for _, key := range keys {
		record, err := readRevocation(ctx, s, key)
		if err != nil {
			return err
		}
		if record != nil {
			b.schedule.set(revocationPrefix+key, record.Next)
			if !record.revoked() {
				b.pendingRevocations.add(key)
			}
		}
	}
	return nil
}
