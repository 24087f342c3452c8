package beyondidentity

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
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
	if len(key) > len(journalPrefix) && key[:len(journalPrefix)] == journalPrefix {
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
// working on it, recovery revokes the token. A static role's token the
// role holds is left alone.
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
	if _, err := e.b.journal.cover(ctx, e.storage, orphan.issuedToken, entryCreds); err != nil {
		t.Fatal(err)
	}
	heldEntry := orphan.issuedToken
	heldEntry.AccessToken, heldEntry.Role = secretOf(held.Value), "sync"
	if _, err := e.b.journal.cover(ctx, e.storage, heldEntry, entryStatic); err != nil {
		t.Fatal(err)
	}
	if pages := e.journalPages(); len(pages) != 2 {
		t.Fatalf("journal pages %v", pages)
	}

	fake.Advance(journalMinAge - time.Minute)
	if err := e.b.recoverJournal(ctx, e.storage); err != nil {
		t.Fatal(err)
	}
	if !e.fake.IsActive(orphan.AccessToken.Reveal()) || len(e.journalPages()) != 2 {
		t.Fatal("recovery acted on pages a request could still be working on")
	}
	// Nor does another process, which knows nothing of the pages (the
	// plugin restarted, or another node took over).
	if err := e.restartedBackend(fake).recoverJournal(ctx, e.storage); err != nil {
		t.Fatal(err)
	}
	if !e.fake.IsActive(orphan.AccessToken.Reveal()) || len(e.journalPages()) != 2 {
		t.Fatal("another process's recovery acted on pages a request could still be working on")
	}
	fake.Advance(2 * time.Minute)
	if err := e.b.recoverJournal(ctx, e.storage); err != nil {
		t.Fatal(err)
	}
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

// The batcher serves every caller, in batches no larger than its bound,
// whatever their number.
func TestBatcherServesEveryCaller(t *testing.T) {
	t.Parallel()
	const most = 16
	var batches, served, oversized atomic.Int32
	b := batcher[int]{most: most, run: func(items []*batchItem[int]) {
		batches.Add(1)
		if len(items) > most {
			oversized.Add(1)
		}
		time.Sleep(time.Millisecond)
		for _, item := range items {
			served.Add(1)
			item.finish(nil)
		}
	}}
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.do(i); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if served.Load() != 200 || batches.Load() >= 200 {
		t.Fatalf("%d callers served in %d batches", served.Load(), batches.Load())
	}
	if oversized.Load() > 0 {
		t.Fatalf("%d batches held more than %d items", oversized.Load(), most)
	}
	if b.busy || len(b.pending) != 0 {
		t.Fatal("the batcher did not come to rest")
	}
}

// Failures reach every caller of the batch.
func TestJournalWriteFailuresReachEveryRequest(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	prefix := journalPrefix
	e.withFailingStorage().failPut.Store(&prefix)
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Delay: 10 * time.Millisecond})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.request(logical.ReadOperation, "creds/sync", nil); err == nil {
				t.Error("a credential was issued although its token could not be journaled")
			}
		}()
	}
	wg.Wait()
	e.assertNothingLeft()
}

// A handed-over token stays in the journal for 2 s, as documented: long
// enough for Vault to store the lease of the answer; a page no batch writes
// over then goes within reuseWindow, without any request.
func TestHandedOverEntriesGoAfterTheDelay(t *testing.T) {
	t.Parallel()
	const documented = 2 * time.Second // README: "until 2 to 3 seconds after the credential is returned"
	e := newSyncRoleBackend(t)
	fake := e.useFakeClock()
	waiting := fake.TimerCreated()
	e.issue("sync", nil)
	awaitTimer(t, waiting, "the removal of a handed-over page")
	// What the remover does when it wakes, done here and now: whether it
	// woke or not, nothing may go yet.
	fake.Advance(documented - time.Millisecond)
	e.b.journal.removeDone(fake.Now())
	if len(e.storedJournalKeys()) != 1 {
		t.Fatal("the entry went before Vault could have stored the lease")
	}
	fake.Advance(reuseWindow)
	e.b.journal.removeDone(fake.Now())
	if len(e.storedJournalKeys()) != 1 {
		t.Fatal("a done page went before a batch could write over it")
	}
	fake.Advance(time.Millisecond)
	eventuallyTrue(t, func() bool { return len(e.storedJournalKeys()) == 0 })
}

// A busy mount deletes no pages: the next batch writes over a done page,
// and only over a done one. The tokens of the page written over keep their
// credentials, and a token of the new batch is still covered.
func TestTheNextBatchWritesOverADonePage(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	fake := e.useFakeClock()
	waiting := fake.TimerCreated()
	first := e.issue("sync", nil).Data["access_token"].(string)
	awaitTimer(t, waiting, "the removal of a handed-over page")
	fake.Advance(2*time.Second - time.Millisecond) // handoverDelay, as documented
	lease, err := leaseFromInternal(e.issue("sync", nil).Secret.InternalData)
	if err != nil {
		t.Fatal(err)
	}
	keys := e.storedJournalKeys()
	if len(keys) != 2 {
		t.Fatalf("journal pages %v: a batch wrote over a page whose tokens were handed over less than handoverDelay ago", keys)
	}
	fake.Advance(time.Millisecond) // the first page is done

	// The next batch: a request that dies once its page is written, so
	// that its token is never handed over and recovery must find it.
	orphan := lease.issuedToken
	if _, err := e.b.journal.cover(context.Background(), e.storage, orphan, entryCreds); err != nil {
		t.Fatal(err)
	}
	if after := e.storedJournalKeys(); !slices.Equal(after, keys) {
		t.Fatalf("journal pages %v, then %v: the new batches should have written over the done page", keys, after)
	}
	if !e.fake.IsActive(first) {
		t.Fatal("writing over a done page revoked the token of its credential")
	}
	fake.Advance(journalMinAge)
	e.assertRecoveryRevokes(fake.Now().Add(-journalMinAge), orphan, first,
		"the token of a request that died was lost when its batch wrote over a done page")
}

// Recovery of a page this process wrote revokes only the tokens it did not
// hand over: those handed over are held by their leases.
func TestRecoverySparesTheHandedOverTokensOfAPage(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	var items []*batchItem[*coverItem]
	var tokens []string
	for range 2 {
		lease, err := leaseFromInternal(e.issue("sync", nil).Secret.InternalData)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, lease.AccessToken.Reveal())
		entry := journalEntry{issuedToken: lease.issuedToken, Token: lease.AccessToken.Reveal(), Kind: entryCreds}
		items = append(items, &batchItem[*coverItem]{done: make(chan struct{}),
			value: &coverItem{ctx: context.Background(), s: e.storage, entry: entry}})
	}
	e.settleJournal()
	e.b.journal.writeCovers(items) // one page for both, as for requests at once
	e.b.journal.handOver(items[0].value.ticket)
	e.rollback()
	if !e.fake.IsActive(tokens[0]) {
		t.Fatal("recovery revoked a token its request handed over")
	}
	if e.fake.IsActive(tokens[1]) {
		t.Fatal("recovery left the token of a request that never finished")
	}
	if pages := e.journalPages(); len(pages) != 0 {
		t.Fatalf("journal pages left: %v", pages)
	}
}

// gatedJournal holds the first journal write, once armed, until the test
// opens the gate, and holds a deletion of the page being written until that
// write is done.
type gatedJournal struct {
	logical.Storage
	armed                     atomic.Bool
	putKey                    atomic.Pointer[string]
	putEntered, open, putDone chan struct{}
	deleteEntered             chan struct{}
	putOnce, deleteOnce       sync.Once
	// failPut makes the held write fail once the gate opens.
	failPut bool
}

func (g *gatedJournal) Put(ctx context.Context, entry *logical.StorageEntry) error {
	if !g.armed.Load() || !strings.HasPrefix(entry.Key, journalPrefix) {
		return g.Storage.Put(ctx, entry)
	}
	gated := false
	g.putOnce.Do(func() { gated = true })
	if !gated {
		return g.Storage.Put(ctx, entry)
	}
	g.putKey.Store(&entry.Key)
	close(g.putEntered)
	<-g.open
	defer close(g.putDone)
	if g.failPut {
		return errInjected
	}
	return g.Storage.Put(ctx, entry)
}

func (g *gatedJournal) Delete(ctx context.Context, key string) error {
	if written := g.putKey.Load(); g.armed.Load() && written != nil && *written == key {
		g.deleteOnce.Do(func() { close(g.deleteEntered) })
		<-g.putDone
	}
	return g.Storage.Delete(ctx, key)
}

// Recovery leaves alone a page a batch is writing over: were it to read
// the done page and delete it after the batch's write, the new token would
// lose its cover.
func TestRecoveryLeavesAPageABatchIsWritingOver(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	fake := e.useFakeClock()
	gate := &gatedJournal{Storage: e.storage, putEntered: make(chan struct{}), open: make(chan struct{}),
		putDone: make(chan struct{}), deleteEntered: make(chan struct{})}
	e.storage = gate
	held := e.issue("sync", nil).Data["access_token"].(string)
	lease, err := leaseFromInternal(e.issue("sync", nil).Secret.InternalData)
	if err != nil {
		t.Fatal(err)
	}
	fake.Advance(handoverDelay) // both pages are done, neither deleted yet

	// The token of a request that dies once its batch has written over a
	// done page.
	gate.armed.Store(true)
	orphan := lease.issuedToken
	covered := make(chan error, 1)
	go func() {
		_, err := e.b.journal.cover(context.Background(), gate, orphan, entryCreds)
		covered <- err
	}()
	select {
	case <-gate.putEntered:
	case err := <-covered:
		t.Fatalf("the token was covered without a journal write (err %v)", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no journal write began")
	}
	recovered := make(chan error, 1)
	farFuture := time.Now().Add(24 * time.Hour) // every page counts as old
	go func() { recovered <- e.b.recoverJournalBefore(context.Background(), gate, farFuture) }()
	var recoveryErr error
	finished := false
	select {
	case recoveryErr = <-recovered: // it left the page alone
		finished = true
	case <-gate.deleteEntered: // it deletes the page the batch is writing
	}
	close(gate.open)
	if err := <-covered; err != nil {
		t.Fatal(err)
	}
	if !finished {
		recoveryErr = <-recovered
	}
	if recoveryErr != nil {
		t.Fatal(recoveryErr)
	}
	gate.armed.Store(false)
	e.assertRecoveryRevokes(farFuture, orphan, held, "recovery deleted a page while a batch wrote over it: the new token lost its cover")
}

// A done page whose writing over fails stays done: it is written over or
// deleted later, and its tokens keep their credentials.
func TestADonePageOutlivesAFailedWriteOverIt(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	fake := e.useFakeClock()
	held := e.issue("sync", nil).Data["access_token"].(string)
	fake.Advance(2 * time.Second) // its page is done
	prefix := journalPrefix
	failing := e.withFailingStorage()
	failing.failPut.Store(&prefix)
	if _, err := e.request(logical.ReadOperation, "creds/sync", nil); err == nil {
		t.Fatal("a credential was issued although its token could not be journaled")
	}
	failing.failPut.Store(nil)
	if pages := e.journalPages(); len(pages) != 0 {
		t.Fatalf("journal pages left: %v: a done page is stranded after a failed write over it", pages)
	}
	if !e.fake.IsActive(held) {
		t.Fatal("the token of a credential was revoked")
	}
}

// heldReads holds, once armed, the first read of a journal page after it
// has read it, until released: a slow storage read.
type heldReads struct {
	logical.Storage
	armed         atomic.Bool
	read, release chan struct{}
	once          sync.Once
}

func (h *heldReads) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	entry, err := h.Storage.Get(ctx, key)
	if h.armed.Load() && strings.HasPrefix(key, journalPrefix) {
		h.once.Do(func() {
			close(h.read)
			<-h.release
		})
	}
	return entry, err
}

// A batch leaves alone a done page recovery is working on: were it to write
// over the page while recovery holds its old content, recovery would
// delete the new tokens' cover.
func TestABatchLeavesAPageRecoveryIsWorkingOn(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	fake := e.useFakeClock()
	held := e.issue("sync", nil).Data["access_token"].(string)
	orphan := e.freshToken(t)
	fake.Advance(2 * time.Second) // both pages are done

	reads := &heldReads{Storage: e.storage, read: make(chan struct{}), release: make(chan struct{})}
	reads.armed.Store(true)
	farFuture := time.Now().Add(24 * time.Hour) // every page counts as old
	recovered := make(chan error, 1)
	go func() { recovered <- e.b.recoverJournalBefore(context.Background(), reads, farFuture) }()
	select {
	case <-reads.read: // recovery holds the done page's content
	case <-time.After(10 * time.Second):
		t.Fatal("recovery never read the done page")
	}
	// The token of a request that dies once its batch is written.
	_, err := e.b.journal.cover(context.Background(), e.storage, orphan, entryCreds)
	close(reads.release)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-recovered; err != nil {
		t.Fatal(err)
	}
	e.assertRecoveryRevokes(farFuture, orphan, held, "a batch wrote over a page recovery was working on: the new token lost its cover")
}

// freshToken issues a credential and returns its token as the plugin
// recorded it, for a test to journal as if a request had died with it.
func (e *testEnv) freshToken(t *testing.T) issuedToken {
	t.Helper()
	lease, err := leaseFromInternal(e.issue("sync", nil).Secret.InternalData)
	if err != nil {
		t.Fatal(err)
	}
	return lease.issuedToken
}

// A done page put back after a failed write over it is deleted in time,
// though the remover had stopped while the batch held the page.
func TestAPutBackPageIsStillRemoved(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	fake := e.useFakeClock()
	waiting := fake.TimerCreated()
	orphan := e.freshToken(t)
	awaitTimer(t, waiting, "the removal of a handed-over page")
	fake.Advance(handoverDelay) // the page is done
	gate := &gatedJournal{Storage: e.storage, putEntered: make(chan struct{}), open: make(chan struct{}),
		putDone: make(chan struct{}), deleteEntered: make(chan struct{}), failPut: true}
	gate.armed.Store(true)
	covered := make(chan error, 1)
	go func() {
		_, err := e.b.journal.cover(context.Background(), gate, orphan, entryCreds)
		covered <- err
	}()
	select {
	case <-gate.putEntered: // the batch holds the done page
	case <-time.After(10 * time.Second):
		t.Fatal("no journal write began")
	}
	fake.Advance(reuseWindow) // the remover wakes, finds nothing to delete, and stops
	eventuallyTrue(t, func() bool {
		e.b.journal.mu.Lock()
		defer e.b.journal.mu.Unlock()
		return !e.b.journal.remover
	})
	close(gate.open)
	if err := <-covered; err == nil {
		t.Fatal("the failed write was reported as done")
	}
	eventuallyTrue(t, func() bool { return len(e.storedJournalKeys()) == 0 })
}
