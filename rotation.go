package beyondidentity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// Backoff between attempts of a failing rotation: short, because the
// current token may be near its end.
const (
	rotationRetryBase = 10 * time.Second
	rotationRetryMax  = time.Minute
)

// lockStaticRole takes the lock of one static role: a write, a rotate-role
// and the background worker never work on the same role at once. It is
// held across the mint of a new token, so that a role never gets two.
func (b *backend) lockStaticRole(name string) func() {
	lock := locksutil.LockForKey(b.staticRoleLocks, name)
	lock.Lock()
	return lock.Unlock
}

// rotate mints a new token for the role and stores it as the current one,
// the previous current token retired to be revoked when its grace ends.
// The new token is stored in the same write that retires the old one, so a
// crash at any point leaves a working token in place. A failure leaves the
// role as it was, the new token discarded, and is returned as an error
// response (the operator's to fix) or an error. The caller holds the
// role's lock.
func (b *backend) rotate(ctx context.Context, s logical.Storage, name string, r *staticRole) (*logical.Response, error) {
	resp, err := b.replaceToken(ctx, s, name, r)
	if err != nil || resp.IsError() {
		if r.LastRotation.IsZero() {
			// A role being created whose first mint fails is not stored:
			// no role, no rotation to count (nor a label value for any name).
			return resp, err
		}
		b.metrics.rotations.WithLabelValues(name, "failed").Inc()
		b.event("static-rotate-failure", append([]string{"role", name}, failureMetadata(resp, err)...)...)
		return resp, err
	}
	b.metrics.rotations.WithLabelValues(name, "rotated").Inc()
	b.event("static-rotate", "role", name, "token_id", r.Current.TokenID, "next_rotation", r.NextRotation.UTC().Format(time.RFC3339))
	return resp, nil
}

// replaceToken is rotate's work, without the counting.
func (b *backend) replaceToken(ctx context.Context, s logical.Storage, name string, r *staticRole) (*logical.Response, error) {
	client, err := b.client(ctx, s)
	if errors.Is(err, errNotConfigured) {
		return logical.ErrorResponse("the mount is not configured: write its config first"), nil
	}
	if err != nil {
		return nil, err
	}
	who := fmt.Sprintf("static role %q", name)
	token, err := mint(ctx, client, biclient.MintRequest{Scopes: r.Scopes, Lifetime: r.tokenLifetime(), CustomClaims: r.CustomClaims})
	if token == nil {
		return upstreamFailure("minting a token for "+who, err)
	}
	minted := issuedToken{AccessToken: token.AccessToken, TokenID: token.ID, ExpiresAt: token.ExpiresAt.Unix(),
		EndsBy: token.LatestEnd.Unix(), Issuer: client.Issuer(), ClientID: client.ClientID(), Role: name}
	covered, coverErr := b.journal.cover(ctx, s, minted, entryStatic)
	switch {
	case coverErr != nil:
		return b.abandon(ctx, s, minted, ticket{}, nil, fmt.Errorf("recording the new token for %s: %w", who, coverErr))
	case err != nil:
		return b.abandon(ctx, s, minted, covered, nil, fmt.Errorf("minting a token for %s: %w", who, err))
	}
	facts, warnings, errResp, err := checkToken(ctx, client, token, r.Scopes, who)
	if errResp != nil || err != nil {
		return b.abandon(ctx, s, minted, covered, errResp, err)
	}
	minted.TokenID, minted.ExpiresAt, minted.EndsBy = facts.id, facts.expiresAt.Unix(), facts.endsBy.Unix()
	updated := r.withNewToken(staticToken{issuedToken: minted, Token: token.AccessToken.Reveal(),
		TokenType: token.TokenType, Scopes: facts.scopes}, b.clock.Now())
	if err := writeStaticRole(ctx, s, name, updated); err != nil {
		return b.abandon(ctx, s, minted, covered, nil, err)
	}
	*r = *updated
	b.journal.handOver(covered)
	b.schedule.set(staticRolePrefix+name, r.nextDue())
	b.Logger().Info("rotated static role", "role", name, "token_id", minted.TokenID, "next_rotation", r.NextRotation)
	return &logical.Response{Warnings: warnings}, nil
}

// withNewToken is the role with token as its current one since now, the
// previous current token retired for the grace period.
func (r *staticRole) withNewToken(token staticToken, now time.Time) *staticRole {
	updated := *r
	updated.Retired = slices.Clone(r.Retired)
	if r.Current != nil {
		retired := *r.Current
		retired.RevokeAt = now.Add(r.grace())
		updated.Retired = append(updated.Retired, retired)
	}
	updated.Current = &token
	updated.LastRotation = now
	updated.NextRotation = r.nextRotation(now, token.expiresAt())
	updated.LastRotationError, updated.FailedRotations = "", 0
	return &updated
}

// nextRotation is when a token minted now, which ends at end, is to be
// replaced: after the rotation period, or sooner if Beyond Identity gave it
// a shorter life, so that it still outlives its grace.
func (r *staticRole) nextRotation(now, end time.Time) time.Time {
	next := now.Add(r.RotationPeriod)
	if latest := end.Add(-r.grace()); latest.Before(next) {
		next = latest
	}
	if floor := now.Add(minRotationPeriod / 2); next.Before(floor) {
		next = floor
	}
	return next
}

// runStaticRole is the background worker's turn on a static role: it
// revokes the retired tokens whose grace has ended and rotates the role
// when due, retrying a failed rotation with backoff.
func (b *backend) runStaticRole(ctx context.Context, s logical.Storage, name string) {
	defer b.lockStaticRole(name)()
	r, err := readStaticRole(ctx, s, name)
	switch {
	case err != nil:
		b.Logger().Warn("reading a static role failed; trying again later", "role", name, "error", err)
		b.schedule.set(staticRolePrefix+name, b.clock.Now().Add(rotationRetryMax))
		return
	case r == nil:
		b.schedule.remove(staticRolePrefix + name)
		return
	}
	now := b.clock.Now()
	changed := b.revokeRetired(ctx, s, r, now)
	if !r.NextRotation.After(now) {
		resp, err := b.rotate(ctx, s, name, r)
		if err == nil && !resp.IsError() {
			return // stored and scheduled, retired tokens included
		}
		r.FailedRotations++
		r.LastRotationError = failureText(resp, err)
		r.NextRotation = now.Add(min(rotationRetryBase<<min(r.FailedRotations-1, 8), rotationRetryMax))
		changed = true
		b.Logger().Error("static role rotation failed; will retry", "role", name, "attempts", r.FailedRotations,
			"next_attempt", r.NextRotation, "error", r.LastRotationError)
	}
	if changed {
		if err := writeStaticRole(ctx, s, name, r); err != nil {
			b.Logger().Error("saving a static role failed", "role", name, "error", err)
		}
	}
	b.schedule.set(staticRolePrefix+name, r.nextDue())
}

// revokeRetired revokes the retired tokens whose grace has ended, and
// reports whether the role changed. A revocation that fails is handed to the
// durable revocation records, or, failing that, tried again later.
func (b *backend) revokeRetired(ctx context.Context, s logical.Storage, r *staticRole, now time.Time) bool {
	kept := r.Retired[:0:0]
	for _, t := range r.Retired {
		if t.RevokeAt.After(now) {
			kept = append(kept, t)
			continue
		}
		err := b.revokeToken(ctx, s, t.issued())
		if !revocationSettled(err) {
			t.RevokeAt = now.Add(revocationRetryMax)
			kept = append(kept, t)
		}
	}
	changed := len(kept) != len(r.Retired)
	r.Retired = kept
	return changed
}

// failureText is the message of a failure given as an error response or an
// error.
func failureText(resp *logical.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Error().Error()
}

// revokeStaticRoleTokens revokes every token of a static role being deleted.
// A revocation that fails is handed to the durable revocation records; if
// even that fails, the error is returned and the role must stay.
func (b *backend) revokeStaticRoleTokens(ctx context.Context, s logical.Storage, r *staticRole) error {
	for _, t := range r.tokens() {
		err := b.revokeToken(ctx, s, t.issued())
		if !revocationSettled(err) {
			return err
		}
	}
	return nil
}

// loadStaticRoles schedules every static role. Rotation runs on the primary
// cluster only: a performance secondary serves the tokens it replicates.
func (b *backend) loadStaticRoles(ctx context.Context, s logical.Storage) error {
	if b.System().ReplicationState().HasState(consts.ReplicationPerformanceSecondary) {
		return nil
	}
	names, err := s.List(ctx, staticRolePrefix)
	if err != nil {
		return fmt.Errorf("listing static roles: %w", err)
	}
	for _, name := range names {
		r, err := readStaticRole(ctx, s, name)
		if err != nil {
			return err
		}
		if r != nil {
			b.schedule.set(staticRolePrefix+name, r.nextDue())
		}
	}
	return nil
}
