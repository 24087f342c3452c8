package journal_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
)

// Close deletes the pages whose entries are all handed over, done or not,
// and leaves those a caller still works on; then no goroutine of the
// journal runs, Cover fails with ErrClosed, and a HandOver that completes a
// page deletes it at once, since no remover will.
func TestCloseFlushesAndStops(t *testing.T) { // not parallel: it counts goroutines
	awaitNoJournalGoroutine(t, "a journal of another test still runs")
	e := newEnv(t)
	e.j.HandOver(e.cover(e.s, "handed")) // not done for 2 s
	before := e.keys()
	kept := e.cover(e.s, "kept") // its caller still works on it
	keptKey := newKey(t, before, e.keys())
	if n := journalGoroutines(); n != 1 {
		t.Fatalf("%d goroutines of the journal run, want its remover", n)
	}
	e.committed()
	e.j.Close()
	awaitNoJournalGoroutine(t, "a goroutine of the journal still runs after Close")
	if keys := e.keys(); !slices.Equal(keys, []string{keptKey}) {
		t.Fatalf("pages %v after Close, want %s: a handed-over page stayed, or one a caller works on went", keys, keptKey)
	}
	if commits, want := e.committed(), []commit{{"handover", 1, 1}}; !slices.Equal(commits, want) {
		t.Fatalf("Committed was told %v, want %v", commits, want)
	}
	for _, endsBy := range []time.Time{e.endsBy(), e.clock.Now()} {
		if ticket, err := e.j.Cover(context.Background(), e.s, entry{Token: "late"}, endsBy); !errors.Is(err, journal.ErrClosed) ||
			ticket != (journal.Ticket{}) {
			t.Fatalf("Cover after Close returned %v, %v; want ErrClosed", ticket, err)
		}
	}
	e.j.HandOver(kept)
	if n := journalGoroutines(); n != 0 {
		t.Fatal("HandOver after Close started a goroutine")
	}
	if keys := e.keys(); len(keys) != 0 {
		t.Fatalf("pages %v: a HandOver after Close left its page for recovery to settle", keys)
	}
	e.j.Close() // again
}

// closeWaits reports whether a caller of Close waits for the remover.
func closeWaits() bool {
	for _, stack := range goroutines() {
		if strings.Contains(stack, "sync.(*WaitGroup).Wait") && strings.Contains(stack, pkg+"(*Journal[...]).Close") {
			return true
		}
	}
	return false
}

// Close waits for a deletion under way, and does not cut it short: the
// page, handed over, would otherwise be left for recovery to settle.
func TestCloseWaitsForADeletionUnderWay(t *testing.T) { // not parallel: it counts goroutines
	awaitNoJournalGoroutine(t, "a journal of another test still runs")
	e := newEnv(t)
	deletes := newHeldDeletes(t, e.s)
	created := e.clock.TimerCreated()
	e.j.HandOver(e.cover(deletes, "handed"))
	awaitTimer(t, created)
	e.clock.Advance(3 * time.Second) // 2 s until done, 1 s for a batch to write over it
	await(t, deletes.entered, "the remover never deleted the page")
	closed := make(chan struct{})
	go func() {
		e.j.Close()
		close(closed)
	}()
	eventually(t, "Close did not wait for its remover, which was deleting a page", closeWaits)
	deletes.free()
	await(t, closed, "Close never returned")
	deletes.mu.Lock()
	ctxErr := deletes.ctxErr
	deletes.mu.Unlock()
	if ctxErr != nil {
		t.Fatalf("Close cut short a deletion under way: %v", ctxErr)
	}
	if keys := e.keys(); len(keys) != 0 {
		t.Fatalf("pages %v: the deletion under way was lost", keys)
	}
	awaitNoJournalGoroutine(t, "a goroutine of the journal still runs after Close")
}

// A deletion that fails while the journal closes is not tried again: Close
// returns, no goroutine stays behind, and the page is left for recovery.
func TestCloseGivesUpAFailedDeletion(t *testing.T) { // not parallel: it counts goroutines
	awaitNoJournalGoroutine(t, "a journal of another test still runs")
	e := newEnv(t)
	failing := &countingStorage{Storage: e.s}
	failing.failDelete.Store(true)
	e.j.HandOver(e.cover(failing, "handed"))
	closed := make(chan struct{})
	go func() {
		e.j.Close()
		close(closed)
	}()
	await(t, closed, "Close never returned while the deletion of a page failed")
	awaitNoJournalGoroutine(t, "a goroutine of the journal still runs after Close")
	if keys := e.keys(); len(keys) != 1 || failing.deletes.Load() != 1 {
		t.Fatalf("pages %v after %d deletions, want the page left after one", keys, failing.deletes.Load())
	}
	if logs := e.logs.String(); !strings.Contains(logs, "deleting a handed-over page of the journal failed") {
		t.Fatalf("the failed deletion was not logged: %s", logs)
	}
}

// A caller still waiting for a batch when the journal closes gets
// ErrClosed: its page would never be removed. A batch whose write had
// begun completes.
func TestCoversWaitingAtCloseFail(t *testing.T) { // not parallel: it counts goroutines
	e := newEnv(t)
	gate := newGate(t, e.s, false)
	lead := e.coverAsync(gate, "lead")
	gate.awaitPut(t)
	waiting := e.coverAsync(gate, "waiting")
	awaitPending(t, 1)
	e.j.Close()
	gate.openGate()
	if c := <-lead; c.err != nil {
		t.Fatalf("the batch whose write had begun failed: %v", c.err)
	}
	if c := <-waiting; !errors.Is(c.err, journal.ErrClosed) || c.ticket != (journal.Ticket{}) {
		t.Fatalf("a caller waiting for a batch at Close got %v, %v; want ErrClosed", c.ticket, c.err)
	}
	if keys := e.keys(); len(keys) != 1 {
		t.Fatalf("pages %v, want the lead's alone", keys)
	}
}
