package beyondidentity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// Recovery of the journal: the active node's periodic function revokes the
// tokens of pages older than journalMinAge that no request handed over.

// recoverJournal revokes the tokens of journal pages older than journalMinAge:
// their requests died before handing them over. A token a static role
// holds is left alone. A revocation that fails is handed to the durable
// revocation records; a page keeps only what neither could settle.
func (b *backend) recoverJournal(ctx context.Context, s logical.Storage) error {
	return b.recoverJournalBefore(ctx, s, b.clock.Now().Add(-journalMinAge))
}

// recoverJournalBefore recovers the pages written before cutoff.
func (b *backend) recoverJournalBefore(ctx context.Context, s logical.Storage, cutoff time.Time) error {
	keys, err := s.List(ctx, journalPrefix)
	if err != nil {
		return fmt.Errorf("listing the journal of new tokens: %w", err)
	}
	var errs []error
	for _, key := range keys {
		errs = append(errs, b.recoverPage(ctx, s, key, cutoff))
	}
	return errors.Join(errs...)
}

// recoverPage settles the entries of a page written before cutoff, but for
// those this process handed over: their tokens are held, and only the
// entry is left to remove.
func (b *backend) recoverPage(ctx context.Context, s logical.Storage, key string, cutoff time.Time) error {
	j := b.journal
	handed, ok := j.claimForRecovery(key, cutoff)
	if !ok {
		return nil // too young, or a batch or the remover is at it
	}
	settled := false
	defer func() { j.endRecovery(key, settled) }()
	page := &journalPage{}
	found, err := getJSON(ctx, s, journalPrefix+key, "the journal of new tokens", page)
	if err != nil || !found || page.Created.After(cutoff) {
		return err
	}
	for id, entry := range page.Entries {
		if handed[id] || b.recoverEntry(ctx, s, entry) {
			delete(page.Entries, id)
		}
	}
	if len(page.Entries) > 0 {
		err = putJSON(ctx, s, journalPrefix+key, "the journal of new tokens", page)
	} else if err = s.Delete(ctx, journalPrefix+key); err != nil {
		err = fmt.Errorf("clearing the journal of new tokens: %w", err)
	}
	// Storage is as it was on an error, and so is what j.pages says of it.
	// Otherwise what is left is entries recovery could not settle, never to
	// be handed over: the page is recovery's now.
	settled = err == nil
	return err
}

// recoverEntry settles the token of a request that died, and reports
// whether it is settled: revoked, recorded for the background worker, or
// held by its static role.
func (b *backend) recoverEntry(ctx context.Context, s logical.Storage, entry journalEntry) bool {
	t := entry.issuedToken
	t.AccessToken = biclient.NewSecret(entry.Token)
	if entry.Kind == entryStatic {
		if held, err := b.staticRoleHolds(ctx, s, t); held || err != nil {
			return err == nil
		}
	}
	err := b.revokeToken(ctx, s, t)
	settled := revocationSettled(err)
	b.Logger().Info("recovered a token whose request never finished", "role", t.Role, "token_id", t.TokenID,
		"revoked", err == nil, "settled", settled)
	return settled
}

// claimForRecovery takes a page this process knows for recovery, and
// returns which of its entries are handed over. It reports false when the
// page was written after cutoff, or a batch or the remover is working on
// it: recovery leaves it for a later run.
func (j *journal) claimForRecovery(key string, cutoff time.Time) (handed map[string]bool, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	page := j.pages[key]
	if page == nil {
		return map[string]bool{}, true
	}
	if page.claimed || page.created.After(cutoff) {
		return nil, false
	}
	page.claimed = true
	handed = make(map[string]bool, len(page.handed))
	for id := range page.handed {
		handed[id] = true
	}
	return handed, true
}

// endRecovery forgets a page recovery has settled (settled) or puts it
// back as it was.
func (j *journal) endRecovery(key string, settled bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	page := j.pages[key]
	switch {
	case page == nil:
	case settled:
		delete(j.pages, key)
	case page.complete():
		j.release(key, page)
	default:
		page.claimed = false
	}
}
