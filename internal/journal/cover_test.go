package journal_test

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
)

// A token that ends before recovery could act needs no cover; a longer one
// always gets one.
func TestNoCoverWhereRecoveryCouldNotAct(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		life  time.Duration
		cover bool
	}{
		{"ended", -time.Second, false},
		{"a third of MinAge", journal.MinAge / 3, false},
		{"just under MinAge", journal.MinAge - time.Second, false},
		{"MinAge", journal.MinAge, true},
		{"four times MinAge", 4 * journal.MinAge, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			counting := &countingStorage{Storage: e.s}
			ticket, err := e.j.Cover(context.Background(), counting, entry{Token: "tok", Kind: "creds"}, e.clock.Now().Add(c.life))
			if err != nil {
				t.Fatal(err)
			}
			if covered := ticket != (journal.Ticket{}); covered != c.cover || int(counting.puts.Load()) != len(e.keys()) {
				t.Fatalf("a token living %v got a ticket: %v, %d page writes, pages %v; want a cover: %v",
					c.life, covered, counting.puts.Load(), e.keys(), c.cover)
			}
			e.j.HandOver(ticket)
			e.j.Flush()
			if keys := e.keys(); len(keys) != 0 {
				t.Fatalf("pages left once the entry was handed over: %v", keys)
			}
		})
	}
}

// coverAtOnce covers tokens t1..tn in s, all at once: the first one's write
// is held until the others wait for the next batch, which they then share.
// It returns the tickets by token.
func (e *env) coverAtOnce(s logical.Storage, n int) (map[string]journal.Ticket, []error) {
	e.t.Helper()
	gate := newGate(e.t, s, false)
	outcomes := []<-chan covered{e.coverAsync(gate, "t1")}
	gate.awaitPut(e.t)
	for i := 2; i <= n; i++ {
		outcomes = append(outcomes, e.coverAsync(gate, fmt.Sprint("t", i)))
	}
	awaitPending(e.t, n-1)
	gate.openGate()
	tickets := map[string]journal.Ticket{}
	var errs []error
	for _, outcome := range outcomes {
		c := <-outcome
		tickets[c.token] = c.ticket
		errs = append(errs, c.err)
	}
	return tickets, errs
}

// Callers at once share page writes: with 16 callers at once, two writes
// (the first caller's, then one for the 15 that waited for it) rather than
// one each; every page goes once its entries are handed over, and
// Committed is told every write and every token.
func TestConcurrentCoversShareOnePageWrite(t *testing.T) { // not parallel: it counts goroutines
	e := newEnv(t)
	counting := &countingStorage{Storage: e.s}
	const callers = 16
	tickets, errs := e.coverAtOnce(counting, callers)
	seen := map[journal.Ticket]bool{}
	for token, ticket := range tickets {
		if ticket == (journal.Ticket{}) || seen[ticket] {
			t.Fatalf("token %s got ticket %v: want one of its own", token, ticket)
		}
		seen[ticket] = true
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if puts := counting.puts.Load(); puts != 2 {
		t.Fatalf("%d page writes for %d callers at once, want 2: the callers that waited should share one", puts, callers)
	}
	for _, ticket := range tickets {
		e.j.HandOver(ticket)
	}
	e.j.Flush()
	if keys := e.keys(); len(keys) != 0 {
		t.Fatalf("pages left once every entry was handed over and the journal flushed: %v", keys)
	}
	commits := e.committed()
	slices.SortFunc(commits, func(a, b commit) int {
		return cmp.Or(strings.Compare(a.op, b.op), cmp.Compare(a.commits, b.commits), cmp.Compare(a.tokens, b.tokens))
	})
	want := []commit{{"cover", 1, 1}, {"cover", 1, callers - 1}, {"handover", 1, 1}, {"handover", 1, callers - 1}}
	if !slices.Equal(commits, want) {
		t.Fatalf("Committed was told %v, want %v", commits, want)
	}
	if writes := counting.puts.Load() + counting.deletes.Load(); writes != 4 {
		t.Fatalf("storage saw %d writes, Committed 4", writes)
	}
}

// A page holds at most 128 entries, so that it stays far below what
// storage takes in one entry: callers beyond that wait for another page.
func TestAPageHoldsAtMost128Entries(t *testing.T) { // not parallel: it counts goroutines
	e := newEnv(t)
	counting := &countingStorage{Storage: e.s}
	_, errs := e.coverAtOnce(counting, 201)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var sizes []int
	for _, key := range e.keys() {
		sizes = append(sizes, len(e.stored(key)))
	}
	slices.Sort(sizes)
	if want := []int{1, 72, 128}; !slices.Equal(sizes, want) || counting.puts.Load() != 3 {
		t.Fatalf("%d page writes, pages of %v entries; want 3 of %v", counting.puts.Load(), sizes, want)
	}
}

// A failed page write reaches every caller of its batch, and leaves
// nothing stored.
func TestWriteFailuresReachEveryCallerOfABatch(t *testing.T) { // not parallel: it counts goroutines
	e := newEnv(t)
	failing := &countingStorage{Storage: e.s}
	failing.failPut.Store(true)
	tickets, errs := e.coverAtOnce(failing, 4)
	for _, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "writing the journal of new tokens: ") {
			t.Fatalf("err = %v: an entry was covered although its page could not be written", err)
		}
	}
	for token, ticket := range tickets {
		if ticket != (journal.Ticket{}) {
			t.Fatalf("token %s got a ticket although its cover failed", token)
		}
	}
	if puts := failing.puts.Load(); puts != 2 {
		t.Fatalf("%d page writes, want 2: the first caller's, then one for those that waited", puts)
	}
	if keys, commits := e.keys(), e.committed(); len(keys) != 0 || len(commits) != 0 {
		t.Fatalf("pages %v and commits %v after failed writes", keys, commits)
	}
}

// A page is stored as earlier versions stored it, byte for byte:
// {"created": <time>, "entries": {"<id>": <entry as JSON>}}, its key and
// entry ids a prefix (the process's start time in base 36), "-", and a
// sequence number in base 36.
func TestPagesKeepTheirFormat(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.cover(e.s, "tok")
	keys := e.keys()
	if len(keys) != 1 {
		t.Fatalf("pages %v, want one", keys)
	}
	key := keys[0]
	var id string
	for id = range e.stored(key) {
	}
	raw, err := e.s.Get(context.Background(), journal.Prefix+key)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"created":"2025-01-02T03:04:05.000000006Z","entries":{"` + id + `":{"access_token":"tok","kind":"creds"}}}`
	if string(raw.Value) != want {
		t.Fatalf("stored page\n%s\nwant\n%s", raw.Value, want)
	}
	scheme := regexp.MustCompile(`^([0-9a-z]+)-[0-9a-z]+$`)
	keyParts, idParts := scheme.FindStringSubmatch(key), scheme.FindStringSubmatch(id)
	if keyParts == nil || idParts == nil || key == id || keyParts[1] != idParts[1] {
		t.Fatalf("page %q and entry %q do not follow the naming scheme", key, id)
	}
	nanos, err := strconv.ParseInt(keyParts[1], 36, 64)
	if started := time.Unix(0, nanos); err != nil || started.After(time.Now()) || time.Since(started) > time.Hour {
		t.Fatalf("prefix %q is not the process's start time (%v)", keyParts[1], err)
	}
}

// A batch's write is every caller's: the caller that leads it, cancelled,
// does not fail the others.
func TestACancelledLeaderDoesNotFailItsBatch(t *testing.T) { // not parallel: it counts goroutines
	e := newEnv(t)
	s := ctxStorage{e.s}
	gate := newGate(t, s, false)
	lead := e.coverAsync(gate, "lead")
	gate.awaitPut(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	leader := make(chan error, 1)
	go func() {
		_, err := e.j.Cover(cancelled, gate, entry{Token: "cancelled"}, e.endsBy())
		leader <- err
	}()
	awaitPending(t, 1) // it leads the next batch
	other := e.coverAsync(gate, "other")
	awaitPending(t, 2)
	gate.openGate()
	for _, c := range []covered{<-lead, <-other} {
		if c.err != nil {
			t.Fatalf("%s: %v", c.token, c.err)
		}
	}
	if err := <-leader; err != nil {
		t.Fatalf("the cancelled leader's batch failed: %v", err)
	}
}
