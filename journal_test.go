package beyondidentity

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
)

// slowJournal makes every journal write take a few milliseconds, as a
// commit on integrated storage does, and counts them.
type slowJournal struct {
	logical.Storage
	writes atomic.Int32
}

func (s *slowJournal) Put(ctx context.Context, entry *logical.StorageEntry) error {
	s.slow(entry.Key)
	return s.Storage.Put(ctx, entry)
}

func (s *slowJournal) Delete(ctx context.Context, key string) error {
	s.slow(key)
	return s.Storage.Delete(ctx, key)
}

func (s *slowJournal) slow(key string) {
	if strings.HasPrefix(key, journal.Prefix) {
		s.writes.Add(1)
		time.Sleep(5 * time.Millisecond)
	}
}

// Credentials issued at once share journal writes: with 16 requests at
// once, far fewer than the two writes per credential a write-ahead entry
// each would cost; and every page is gone when they are done.
func TestConcurrentCredentialsShareJournalWrites(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	slow := &slowJournal{Storage: e.storage}
	e.storage = slow
	const requests = 16
	var wg sync.WaitGroup
	for i := 0; i < requests; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := e.request(logical.ReadOperation, "creds/sync", nil); err != nil || resp.IsError() {
				t.Errorf("issue: %v %s", err, errorText(resp))
			}
		}()
	}
	wg.Wait()
	if writes := slow.writes.Load(); writes >= requests {
		t.Fatalf("%d journal writes for %d credentials issued at once: they should share writes", writes, requests)
	}
	if pages := e.journalPages(); len(pages) != 0 {
		t.Fatalf("journal pages left: %v", pages)
	}
	// The metrics tell operators the same: every write, every token.
	families := e.scrape()
	commits := value(families, "beyondidentity_journal_commits_total", map[string]string{"op": "cover"}) +
		value(families, "beyondidentity_journal_commits_total", map[string]string{"op": "handover"})
	for _, op := range []string{"cover", "handover"} {
		if tokens := value(families, "beyondidentity_journal_tokens_total", map[string]string{"op": op}); tokens != requests {
			t.Errorf("journal_tokens_total{op=%q} = %v, want %d", op, tokens, requests)
		}
	}
	if commits != float64(slow.writes.Load()) {
		t.Errorf("journal_commits_total = %v, the storage saw %d writes", commits, slow.writes.Load())
	}
	t.Logf("%d credentials issued at once cost %d journal writes", requests, slow.writes.Load())
}

// A request that dies after Beyond Identity answered leaves its token in
// the journal; once the page is old enough that no request can still be
// working on it, the background work's recovery revokes the token. A
// static role's token the role holds is left alone.
func TestJournalRecoveryRevokesWhatADeadRequestLeft(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	held, _ := e.fake.TokenByValue(e.staticToken())
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	// The request's journal entry, and then it dies: its token is never
	// handed over.
	resp := e.issue("sync", nil)
	orphan, err := leaseFromInternal(resp.Secret.InternalData)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.b.cover(ctx, e.storage, &freshToken{issuedToken: orphan.issuedToken}); err != nil {
		t.Fatal(err)
	}
	heldEntry := orphan.issuedToken
	heldEntry.AccessToken, heldEntry.Role, heldEntry.Static = secretOf(held.Value), "sync", true
	if err := e.b.cover(ctx, e.storage, &freshToken{issuedToken: heldEntry}); err != nil {
		t.Fatal(err)
	}
	if pages := e.journalPages(); len(pages) != 2 {
		t.Fatalf("journal pages %v", pages)
	}

	fake.Advance(journal.MinAge - time.Minute)
	e.rollback()
	if !e.fake.IsActive(orphan.AccessToken.Reveal()) || len(e.journalPages()) != 2 {
		t.Fatal("recovery acted on pages a request could still be working on")
	}
	fake.Advance(2 * time.Minute)
	e.rollback()
	if e.fake.IsActive(orphan.AccessToken.Reveal()) {
		t.Fatal("recovery left the dead request's token valid")
	}
	if !e.fake.IsActive(held.Value) {
		t.Fatal("recovery revoked the token a static role holds")
	}
	if pages := e.journalPages(); len(pages) != 0 {
		t.Fatalf("journal pages left after recovery: %v", pages)
	}
}
