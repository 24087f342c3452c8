package journal_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/clock"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
)

// A caller that dies after the upstream answer leaves its entry in the
// journal; once the page is old enough that no caller can still be working
// on it, recovery settles the entry. Younger pages are left alone: this
// process's unread, and another process's (which knows nothing of the
// pages: the plugin restarted, or another node took over) too.
func TestRecoveryActsOnlyOnOldPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	counting := &countingStorage{Storage: e.s}
	e.cover(counting, "orphan")
	e.cover(counting, "other")
	if keys := e.keys(); len(keys) != 2 {
		t.Fatalf("pages %v", keys)
	}

	e.clock.Advance(journal.MinAge - time.Second)
	reads := counting.gets.Load()
	var r settler
	if err := e.j.Recover(context.Background(), counting, r.settle); err != nil {
		t.Fatal(err)
	}
	if settled := r.tokens(); len(settled) != 0 || len(e.keys()) != 2 {
		t.Fatalf("recovery settled %v on pages a caller could still be working on", settled)
	}
	if counting.gets.Load() != reads {
		t.Fatal("recovery read the young pages of its own process")
	}
	if err := e.newJournal().Recover(context.Background(), counting, r.settle); err != nil {
		t.Fatal(err)
	}
	if settled := r.tokens(); len(settled) != 0 || len(e.keys()) != 2 {
		t.Fatalf("another process's recovery settled %v on pages a caller could still be working on", settled)
	}
	if counting.gets.Load() == reads {
		t.Fatal("another process's recovery did not read the pages to learn their age")
	}
	e.clock.Advance(2 * time.Second)
	if settled := e.recoverNow(e.j); !slices.Equal(settled, []string{"orphan", "other"}) {
		t.Fatalf("recovery settled %v: it left the entries of dead callers", settled)
	}
	if keys := e.keys(); len(keys) != 0 {
		t.Fatalf("pages left after recovery: %v", keys)
	}
}

// Another process settles what a process that died left, handed over or
// not: it cannot know. That is the documented price of a crash within the
// handover delay.
func TestAnotherProcessSettlesWhatADeadOneLeft(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.j.HandOver(e.cover(e.s, "handed")) // the process dies before the page goes
	e.cover(e.s, "orphan")
	later := journal.New[entry](journal.Config{Clock: clock.NewFake(e.clock.Now().Add(journal.MinAge))})
	t.Cleanup(later.Close)
	if settled := e.recoverNow(later); !slices.Equal(settled, []string{"handed", "orphan"}) {
		t.Fatalf("another process settled %v", settled)
	}
	if keys := e.keys(); len(keys) != 0 {
		t.Fatalf("pages left after recovery: %v", keys)
	}
}

// Recovery of a page this process wrote settles only the entries it did
// not hand over: those handed over are held by their leases.
func TestRecoverySparesTheHandedOverEntriesOfAPage(t *testing.T) { // not parallel: it counts goroutines
	e := newEnv(t)
	tickets, errs := e.coverAtOnce(e.s, 3) // t2 and t3 share a page
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var shared []string
	for _, key := range e.keys() {
		if entries := e.stored(key); len(entries) == 2 {
			shared = append(shared, key)
		}
	}
	if len(shared) != 1 {
		t.Fatalf("pages %v: the callers that waited did not share one", e.keys())
	}
	e.j.HandOver(tickets["t1"])
	e.j.HandOver(tickets["t2"])
	e.clock.Advance(journal.MinAge)
	if settled := e.recoverNow(e.j); !slices.Equal(settled, []string{"t3"}) {
		t.Fatalf("recovery settled %v, want t3 alone: it settled an entry handed over, or left that of a caller "+
			"that never finished", settled)
	}
	eventually(t, "pages left after recovery", func() bool { return len(e.keys()) == 0 })
}

// Recovery leaves alone a page a batch is writing over: were it to read the
// done page and delete it after the batch's write, the new entry would lose
// its cover.
func TestRecoveryLeavesAPageABatchIsWritingOver(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	held, second := e.cover(e.s, "held"), e.cover(e.s, "second")
	e.clock.Advance(journal.MinAge) // the pages are old
	e.j.HandOver(held)
	e.j.HandOver(second)
	e.clock.Advance(2 * time.Second) // both pages are done, neither deleted yet

	// The entry of a caller that dies once its batch has written over a
	// done page.
	gate := newGate(t, e.s, false)
	outcome := e.coverAsync(gate, "orphan")
	select {
	case <-gate.putEntered:
	case c := <-outcome:
		t.Fatalf("the entry was covered without a page write (err %v)", c.err)
	case <-time.After(10 * time.Second):
		t.Fatal("no page write began")
	}
	var r settler
	recovered := make(chan error, 1)
	go func() { recovered <- e.j.Recover(context.Background(), gate, r.settle) }()
	var recoveryErr error
	finished := false
	select {
	case recoveryErr = <-recovered: // it left the page alone
		finished = true
	case <-gate.deleteEntered: // it deletes the page the batch is writing
	case <-time.After(10 * time.Second):
		t.Fatal("recovery neither finished nor deleted the page")
	}
	gate.openGate()
	if c := <-outcome; c.err != nil {
		t.Fatal(c.err)
	}
	if !finished {
		recoveryErr = <-recovered
	}
	if recoveryErr != nil {
		t.Fatal(recoveryErr)
	}
	if settled := r.tokens(); len(settled) != 0 {
		t.Fatalf("recovery settled %v, handed over", settled)
	}
	e.clock.Advance(journal.MinAge)
	if settled := e.recoverNow(e.j); !slices.Equal(settled, []string{"orphan"}) {
		t.Fatalf("recovery settled %v: it deleted a page while a batch wrote over it, and the new entry lost its cover", settled)
	}
}

// A batch leaves alone a done page recovery is working on: were it to write
// over the page while recovery holds its old content, recovery would delete
// the new entry's cover.
func TestABatchLeavesAPageRecoveryIsWorkingOn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	held := e.cover(e.s, "held")
	first := e.keys()[0]
	other := e.cover(e.s, "other")
	e.clock.Advance(journal.MinAge) // the pages are old
	e.j.HandOver(held)              // the first page done: the one a batch takes first
	e.clock.Advance(time.Millisecond)
	e.j.HandOver(other)
	e.clock.Advance(2 * time.Second) // both pages are done, neither deleted yet

	reads := newHeldReads(t, e.s, journal.Prefix+first)
	var r settler
	recovered := make(chan error, 1)
	go func() { recovered <- e.j.Recover(context.Background(), reads, r.settle) }()
	await(t, reads.read, "recovery never read the done page") // recovery holds its content
	// The entry of a caller that dies once its batch is written.
	_, err := e.j.Cover(context.Background(), e.s, entry{Token: "orphan", Kind: "creds"}, e.endsBy())
	reads.free()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-recovered; err != nil {
		t.Fatal(err)
	}
	if settled := r.tokens(); len(settled) != 0 {
		t.Fatalf("recovery settled %v, handed over", settled)
	}
	e.clock.Advance(journal.MinAge)
	if settled := e.recoverNow(e.j); !slices.Equal(settled, []string{"orphan"}) {
		t.Fatalf("recovery settled %v: a batch wrote over a page recovery was working on, and the new entry lost its cover", settled)
	}
}

// A page keeps only the entries recovery could not settle, for a later
// run; the page is recovery's then, whatever the caller hands over. Pages
// in the stored format of earlier versions are read as they are.
func TestRecoveryKeepsWhatItCouldNotSettle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	created := e.clock.Now().Add(-journal.MinAge).Format(time.RFC3339Nano)
	page := fmt.Sprintf(`{"created":%q,"entries":{"old-1":{"access_token":"settled","kind":"creds"},`+
		`"old-2":{"access_token":"failing","kind":"static"}}}`, created)
	if err := e.s.Put(context.Background(), &logical.StorageEntry{Key: journal.Prefix + "old-0", Value: []byte(page)}); err != nil {
		t.Fatal(err)
	}
	ticket := e.cover(e.s, "mine")
	e.clock.Advance(journal.MinAge)
	r := &settler{refuse: map[string]bool{"failing": true, "mine": true}}
	if err := e.j.Recover(context.Background(), e.s, r.settle); err != nil {
		t.Fatal(err)
	}
	if settled := r.tokens(); !slices.Equal(settled, []string{"settled"}) {
		t.Fatalf("recovery settled %v", settled)
	}
	kept := e.stored("old-0")
	if want := map[string]entry{"old-2": {Token: "failing", Kind: "static"}}; !maps.Equal(kept, want) {
		t.Fatalf("the page kept %v, want %v", kept, want)
	}
	raw, err := e.s.Get(context.Background(), journal.Prefix+"old-0")
	if err != nil || !strings.Contains(string(raw.Value), fmt.Sprintf(`"created":%q`, created)) {
		t.Fatalf("the page kept no longer says when it was written: %s (%v)", raw.Value, err)
	}
	e.j.HandOver(ticket) // too late: recovery already tried to settle it
	if settled := e.recoverNow(e.j); !slices.Equal(settled, []string{"failing", "mine"}) {
		t.Fatalf("the next recovery settled %v, want what the first could not", settled)
	}
	if keys := e.keys(); len(keys) != 0 {
		t.Fatalf("pages left after recovery: %v", keys)
	}
}

// A done page that recovery put back after failing to delete it is still
// removed, though the remover, finding it claimed, had stopped meanwhile.
func TestAPagePutBackByRecoveryIsStillRemoved(t *testing.T) { // not parallel: it counts goroutines
	awaitNoJournalGoroutine(t, "a journal of another test still runs")
	e := newEnv(t)
	held := e.cover(e.s, "held")
	e.clock.Advance(journal.MinAge) // the page is old
	created := e.clock.TimerCreated()
	e.j.HandOver(held)
	awaitTimer(t, created)
	e.clock.Advance(2 * time.Second) // the page is done
	failing := &countingStorage{Storage: e.s}
	failing.failDelete.Store(true)
	reads := newHeldReads(t, failing, journal.Prefix+e.keys()[0])
	recovered := make(chan error, 1)
	go func() { recovered <- e.j.Recover(context.Background(), reads, (&settler{}).settle) }()
	await(t, reads.read, "recovery never read the done page")
	e.clock.Advance(time.Second)
	awaitNoJournalGoroutine(t, "the remover, finding the page claimed, never stopped")
	reads.free()
	if err := <-recovered; err == nil {
		t.Fatal("recovery reported a page deleted although its deletion failed")
	}
	eventually(t, "a page put back by recovery after the remover stopped was never removed", func() bool { return len(e.keys()) == 0 })
}
