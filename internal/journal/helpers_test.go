package journal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/clock"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
)

// entry is what the tests journal: a token, as the plugin's entries hold
// one.
type entry struct {
	Token string `json:"access_token"`
	Kind  string `json:"kind"`
}

var errInjected = errors.New("injected storage failure")

// env is a journal on in-memory storage and a fake clock, recording what it
// tells its owner.
type env struct {
	t     *testing.T
	clock *clock.Fake
	s     *logical.InmemStorage
	j     *journal.Journal[entry]
	logs  *syncBuffer

	mu      sync.Mutex
	commits []commit
}

// commit is one call of Config.Committed.
type commit struct {
	op              string
	commits, tokens int
}

// start is the fake clock's start: a fixed time, so that stored pages can
// be compared byte for byte.
var start = time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, clock: clock.NewFake(start), s: &logical.InmemStorage{}, logs: &syncBuffer{}}
	e.j = e.newJournal()
	return e
}

// newJournal is another journal on the env's storage and clock: the
// env's own, or another process's (a restart, or another node).
func (e *env) newJournal() *journal.Journal[entry] {
	j := journal.New[entry](journal.Config{
		Clock:  e.clock,
		Logger: hclog.New(&hclog.LoggerOptions{Output: e.logs, Level: hclog.Debug}),
		Committed: func(op string, commits, tokens int) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.commits = append(e.commits, commit{op, commits, tokens})
		},
	})
	e.t.Cleanup(j.Close)
	return j
}

// committed returns what Committed was told so far, and forgets it.
func (e *env) committed() []commit {
	e.mu.Lock()
	defer e.mu.Unlock()
	commits := e.commits
	e.commits = nil
	return commits
}

// endsBy is an end far enough that every entry needs a cover.
func (e *env) endsBy() time.Time { return e.clock.Now().Add(2 * journal.MinAge) }

// cover journals a creds token in s, alone in its batch.
func (e *env) cover(s logical.Storage, token string) journal.Ticket {
	e.t.Helper()
	ticket, err := e.j.Cover(context.Background(), s, entry{Token: token, Kind: "creds"}, e.endsBy())
	if err != nil {
		e.t.Fatal(err)
	}
	if ticket == (journal.Ticket{}) {
		e.t.Fatal("a token that needs a cover got none")
	}
	return ticket
}

// coverAsync journals a token in s on another goroutine, and returns where
// its outcome arrives.
func (e *env) coverAsync(s logical.Storage, token string) <-chan covered {
	done := make(chan covered, 1)
	go func() {
		ticket, err := e.j.Cover(context.Background(), s, entry{Token: token, Kind: "creds"}, e.endsBy())
		done <- covered{token, ticket, err}
	}()
	return done
}

type covered struct {
	token  string
	ticket journal.Ticket
	err    error
}

// keys lists the stored pages, sorted.
func (e *env) keys() []string {
	e.t.Helper()
	keys, err := e.s.List(context.Background(), journal.Prefix)
	if err != nil {
		e.t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

// stored decodes the stored page at key (without the prefix).
func (e *env) stored(key string) map[string]entry {
	e.t.Helper()
	raw, err := e.s.Get(context.Background(), journal.Prefix+key)
	if err != nil || raw == nil {
		e.t.Fatalf("page %s: %v, %v", key, raw, err)
	}
	var p struct {
		Entries map[string]entry `json:"entries"`
	}
	if err := json.Unmarshal(raw.Value, &p); err != nil {
		e.t.Fatal(err)
	}
	return p.Entries
}

// newKey returns the one key of after that is not in before.
func newKey(t *testing.T, before, after []string) string {
	t.Helper()
	var added []string
	for _, key := range after {
		if !slices.Contains(before, key) {
			added = append(added, key)
		}
	}
	if len(added) != 1 {
		t.Fatalf("pages %v, then %v: want one new page", before, after)
	}
	return added[0]
}

// recoverNow runs recovery on the env's storage with a fresh settler, and
// returns what it settled.
func (e *env) recoverNow(j *journal.Journal[entry]) []string {
	e.t.Helper()
	var r settler
	if err := j.Recover(context.Background(), e.s, r.settle); err != nil {
		e.t.Fatal(err)
	}
	return r.tokens()
}

// settler settles entries for recovery, as revoking their tokens would,
// and records which; it refuses those in refuse, as a revocation that fails.
type settler struct {
	mu      sync.Mutex
	refuse  map[string]bool
	settled []string
}

func (r *settler) settle(_ context.Context, e entry) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse[e.Token] {
		return false
	}
	r.settled = append(r.settled, e.Token)
	return true
}

// tokens returns the tokens settled, sorted.
func (r *settler) tokens() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(slices.Values(r.settled))
}

// syncBuffer is a log output that tests read while the journal writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
