package journal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/jsonstore"
	"github.com/hashicorp/vault/sdk/logical"
)

// Recover settles the entries of the pages written more than MinAge ago
// (by the journal's clock) that no caller handed over: their callers died
// before they could. settle is called per entry and reports whether the
// entry is settled; a page keeps only the entries settle could not settle,
// for a later run. Pages this process wrote more recently, or that a batch
// or the remover is working on, are left alone. It runs on the active node,
// periodically, and returns the errors of every page.
func (j *Journal[E]) Recover(ctx context.Context, s logical.Storage, settle func(context.Context, E) bool) error {
	cutoff := j.clock.Now().Add(-MinAge)
	keys, err := s.List(ctx, Prefix)
	if err != nil {
		return fmt.Errorf("listing %s: %w", what, err)
	}
	var errs []error
	for _, key := range keys {
		errs = append(errs, j.recoverPage(ctx, s, key, cutoff, settle))
	}
	return errors.Join(errs...)
}

// recoverPage settles the entries of a page written before cutoff, but for
// those this process handed over: their tokens are held, and only the entry
// is left to remove.
func (j *Journal[E]) recoverPage(ctx context.Context, s logical.Storage, key string, cutoff time.Time,
	settle func(context.Context, E) bool) error {
	handed, ok := j.claimForRecovery(key, cutoff)
	if !ok {
		return nil // too young, or a batch or the remover is at it
	}
	settled := false
	defer func() { j.endRecovery(key, settled) }()
	p := &page[E]{}
	found, err := jsonstore.Get(ctx, s, Prefix+key, what, p)
	if err != nil || !found || p.Created.After(cutoff) {
		return err
	}
	for id, entry := range p.Entries {
		if handed[id] || settle(ctx, entry) {
			delete(p.Entries, id)
		}
	}
	if len(p.Entries) > 0 {
		err = jsonstore.Put(ctx, s, Prefix+key, what, p)
	} else if err = s.Delete(ctx, Prefix+key); err != nil {
		err = fmt.Errorf("clearing %s: %w", what, err)
	}
	// Storage is as it was on an error, and so is what j.pages says of it.
	// Otherwise what is left is entries recovery could not settle, never to
	// be handed over: the page is recovery's now.
	settled = err == nil
	return err
}

// claimForRecovery takes a page for recovery, and returns which of its
// entries this process handed over (none, for a page it does not know:
// another process's). It reports false when the page was written after
// cutoff, or a batch or the remover is working on it: recovery leaves it
// for a later run.
func (j *Journal[E]) claimForRecovery(key string, cutoff time.Time) (handed map[string]bool, ok bool) {
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

// endRecovery forgets a page recovery has settled (settled) or puts it back
// as it was.
func (j *Journal[E]) endRecovery(key string, settled bool) {
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
