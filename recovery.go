package beyondidentity

import (
	"context"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
)

// The journal's recovery: a journal entry that no one handed over is the
// token of a request that died between its mint and its keeping (fresh.go).
// The active node's background work settles each such token: its static
// role holds it, or it is revoked, or recorded for the background work to
// revoke. Until then the entry stays, and the next run tries again.

// recoveryKey is the schedule's item for the journal's recovery.
const recoveryKey = journal.Prefix

// recoverJournal settles the tokens of requests that died, as the
// background work's recovery item.
func (b *backend) recoverJournal(ctx context.Context, s logical.Storage) {
	settle := func(ctx context.Context, entry journalEntry) bool { return b.recoverEntry(ctx, s, entry) }
	if err := b.journal.Recover(ctx, s, settle); err != nil {
		b.Logger().Warn("recovering the journal of new tokens failed; the next periodic run tries again", "error", err)
	}
}

// recoverEntry settles the token of a request that died, and reports
// whether it is settled: revoked, recorded for the background work, or
// held by its static role.
func (b *backend) recoverEntry(ctx context.Context, s logical.Storage, entry journalEntry) bool {
	t := entry.token()
	t.Static = t.staticBy(entry.Kind)
	if t.Static {
		if held, err := b.staticRoleHolds(ctx, s, t); held || err != nil {
			return err == nil
		}
	}
	err := b.revokeToken(ctx, s, t, kindRecovered)
	settled := revocationSettled(err)
	b.Logger().Info("recovered a token whose request never finished", "role", t.Role, "token_id", t.TokenID,
		"revoked", err == nil, "settled", settled)
	return settled
}

// staticRoleHolds reports whether a static role's record holds the token,
// as its current or a retired one: then the role, not recovery, owns it.
func (b *backend) staticRoleHolds(ctx context.Context, s logical.Storage, t issuedToken) (bool, error) {
	defer b.lockStaticRole(t.Role)()
	r, err := readStaticRole(ctx, s, t.Role)
	if err != nil || r == nil {
		return false, err
	}
	for _, held := range r.tokens() {
		if held.AccessToken.Reveal() == t.AccessToken.Reveal() {
			return true, nil
		}
	}
	return false, nil
}
