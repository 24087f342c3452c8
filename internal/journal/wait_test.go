package journal_test

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Waiting for the journal's goroutines: for a channel, the fake clock, or
// what their stacks say. A poll is bounded at 10 s.

// await waits for ch to close, or fails with what.
func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal(what)
	}
}

// awaitTimer waits until a timer of the fake clock is created after
// created was taken, as the journal's remover creates one before it
// sleeps.
func awaitTimer(t *testing.T, created <-chan struct{}) {
	t.Helper()
	await(t, created, "the remover never waited on the clock")
}

// eventually polls cond for up to 10 s, and fails with what if it never
// holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
	}
}

// pkg is the journal's package path, as stack traces name its functions.
const pkg = "github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal."

// goroutines returns the stacks of every goroutine.
func goroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(string(buf[:n]), "\n\n")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// journalGoroutines counts the goroutines the journal started (its
// remover): tests that call it do not run in parallel with others.
func journalGoroutines() int {
	n := 0
	for _, stack := range goroutines() {
		if strings.Contains(stack, "\ncreated by "+pkg) {
			n++
		}
	}
	return n
}

// pendingCovers counts the callers of Cover waiting for a batch to take
// their entry: tests that call it do not run in parallel with others.
func pendingCovers() int {
	n := 0
	for _, stack := range goroutines() {
		lines := strings.SplitN(stack, "\n", 3)
		if len(lines) > 1 && strings.HasPrefix(lines[1], pkg+"(*batcher[") && strings.Contains(lines[1], ").do(") {
			n++
		}
	}
	return n
}

// awaitPending waits until n callers of Cover wait for the next batch.
func awaitPending(t *testing.T, n int) {
	t.Helper()
	eventually(t, "the callers of Cover never all waited for a batch", func() bool { return pendingCovers() == n })
}

// awaitNoJournalGoroutine waits until no goroutine of the journal runs.
func awaitNoJournalGoroutine(t *testing.T, what string) {
	t.Helper()
	eventually(t, what, func() bool { return journalGoroutines() == 0 })
}
