package journal_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
)

// A handed-over entry stays in the journal for 2 s, as documented: long
// enough for Vault to store the lease of the answer; a page no batch writes
// over then goes within 1 s, without any caller. Two pages handed over
// earlier wake the remover 2 s - 1 ms and 3 s - 1 ms after the last
// handover: whether it wakes or not, that page may not go yet.
func TestHandedOverEntriesGoAfterTheDelay(t *testing.T) {
	t.Parallel()
	// docs/operations.md: "until 2 to 3 seconds after the credential is returned"
	const documented, window = 2 * time.Second, time.Second
	e := newEnv(t)
	created := e.clock.TimerCreated()
	e.j.HandOver(e.cover(e.s, "x"))
	awaitTimer(t, created)
	x := e.keys()[0]
	e.clock.Advance(window)
	e.j.HandOver(e.cover(e.s, "y"))
	y := newKey(t, []string{x}, e.keys())
	e.clock.Advance(time.Millisecond)
	e.j.HandOver(e.cover(e.s, "last"))
	last := newKey(t, []string{x, y}, e.keys())

	created = e.clock.TimerCreated()
	e.clock.Advance(documented - time.Millisecond)
	awaitTimer(t, created) // the remover deleted x, and waits for y
	if keys := e.keys(); !slices.Contains(keys, last) {
		t.Fatal("the entry went before Vault could have stored the lease")
	} else if slices.Contains(keys, x) {
		t.Fatalf("pages %v: the remover, woken for %s, left it", keys, x)
	}
	created = e.clock.TimerCreated()
	e.clock.Advance(window)
	awaitTimer(t, created) // the remover deleted y, and waits for the last page
	if keys := e.keys(); !slices.Equal(keys, []string{last}) {
		t.Fatalf("pages %v, want %s: a done page went before a batch could write over it", keys, last)
	}
	e.clock.Advance(time.Millisecond)
	eventually(t, "a done page that no batch wrote over stayed", func() bool { return len(e.keys()) == 0 })
}

// A busy mount deletes no pages: the next batch writes over a done page,
// and only over a done one. The entries of the page written over are let
// go of, and an entry of the new batch is still covered.
func TestTheNextBatchWritesOverADonePage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	created := e.clock.TimerCreated()
	e.j.HandOver(e.cover(e.s, "first"))
	awaitTimer(t, created)
	e.clock.Advance(2*time.Second - time.Millisecond) // handoverDelay, as documented
	e.j.HandOver(e.cover(e.s, "second"))
	keys := e.keys()
	if len(keys) != 2 {
		t.Fatalf("pages %v: a batch wrote over a page whose entries were handed over less than 2 s ago", keys)
	}
	e.clock.Advance(time.Millisecond) // the first page is done
	e.committed()

	// The next batch: a caller that dies once its page is written, so that
	// its entry is never handed over and recovery must find it.
	e.cover(e.s, "orphan")
	if after := e.keys(); !slices.Equal(after, keys) {
		t.Fatalf("pages %v, then %v: the new batch should have written over the done page", keys, after)
	}
	if commits, want := e.committed(), []commit{{"cover", 1, 1}, {"handover", 0, 1}}; !slices.Equal(commits, want) {
		t.Fatalf("Committed was told %v, want %v: one write that took on one token and let one go", commits, want)
	}
	e.clock.Advance(journal.MinAge)
	if settled := e.recoverNow(e.j); !slices.Equal(settled, []string{"orphan"}) {
		t.Fatalf("recovery settled %v, want the orphan alone: an entry was lost, or one handed over came back, "+
			"when a batch wrote over a done page", settled)
	}
}

// A done page whose writing over fails stays done: it is deleted later,
// and its entries, handed over, are never settled.
func TestADonePageOutlivesAFailedWriteOverIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	created := e.clock.TimerCreated()
	e.j.HandOver(e.cover(e.s, "held"))
	awaitTimer(t, created)
	keys := e.keys()
	e.clock.Advance(2 * time.Second) // its page is done
	failing := &countingStorage{Storage: e.s}
	failing.failPut.Store(true)
	if _, err := e.j.Cover(context.Background(), failing, entry{Token: "orphan"}, e.endsBy()); err == nil {
		t.Fatal("an entry was covered although its page could not be written")
	}
	if after := e.keys(); !slices.Equal(after, keys) {
		t.Fatalf("pages %v, then %v after a failed write", keys, after)
	}
	e.clock.Advance(time.Second)
	eventually(t, "a done page is stranded after a failed write over it", func() bool { return len(e.keys()) == 0 })
	e.clock.Advance(journal.MinAge)
	if settled := e.recoverNow(e.j); len(settled) != 0 {
		t.Fatalf("recovery settled %v, handed over", settled)
	}
}

// A done page put back after a failed write over it is deleted in time,
// though the remover had stopped while the batch held the page.
func TestAPutBackPageIsStillRemoved(t *testing.T) { // not parallel: it counts goroutines
	awaitNoJournalGoroutine(t, "a journal of another test still runs")
	e := newEnv(t)
	created := e.clock.TimerCreated()
	e.j.HandOver(e.cover(e.s, "held"))
	awaitTimer(t, created)
	e.clock.Advance(2 * time.Second) // the page is done
	gate := newGate(t, e.s, true)
	outcome := e.coverAsync(gate, "orphan")
	gate.awaitPut(t) // the batch holds the done page
	e.clock.Advance(time.Second)
	awaitNoJournalGoroutine(t, "the remover, woken with nothing to delete, never stopped")
	gate.openGate()
	if c := <-outcome; c.err == nil {
		t.Fatal("the failed write was reported as done")
	}
	eventually(t, "a page put back after the remover stopped was never removed", func() bool { return len(e.keys()) == 0 })
}

// A handed-over page whose deletion fails keeps its entries from
// recovery: the deletion is logged and tried again 10 s later, and
// recovery meanwhile settles nothing.
func TestAFailedDeletionIsLoggedAndRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	failing := &countingStorage{Storage: e.s}
	failing.failDelete.Store(true)
	created := e.clock.TimerCreated()
	e.j.HandOver(e.cover(failing, "held"))
	awaitTimer(t, created)
	created = e.clock.TimerCreated()
	e.j.Flush()            // the deletion fails, and is put back for later
	awaitTimer(t, created) // the remover, woken, waits for the retry
	logs := e.logs.String()
	for _, want := range []string{"deleting a handed-over page of the journal failed; trying again", "tokens=1",
		"retry_in=10s", `error="injected storage failure"`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("the failed deletion was not logged with %q: %s", want, logs)
		}
	}
	created = e.clock.TimerCreated()
	e.clock.Advance(journal.MinAge) // the page is old; the remover fails again
	awaitTimer(t, created)
	var r settler
	err := e.j.Recover(context.Background(), failing, r.settle)
	if err == nil || !strings.Contains(err.Error(), "clearing the journal of new tokens: ") {
		t.Fatalf("recovery, unable to delete the page, returned %v", err)
	}
	if settled := r.tokens(); len(settled) != 0 || len(e.keys()) != 1 {
		t.Fatalf("recovery settled %v, pages %v: a handed-over entry whose deletion failed was settled", settled, e.keys())
	}
	failing.failDelete.Store(false)
	e.clock.Advance(10 * time.Second)
	eventually(t, "the deletion was not tried again once storage worked", func() bool { return len(e.keys()) == 0 })
}
