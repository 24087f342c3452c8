package beyondidentity

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// The journal covers every fresh token from Beyond Identity's answer until
// Vault holds it: should the node die meanwhile, the active node (the same
// after a restart, a new one after a failover) finds the token in the
// journal and revokes it.
//
// It does what a write-ahead entry per token did, in fewer storage commits,
// and covers longer:
//   - Requests at once share one page: one commit covers them all, and each
//     waits for it before its answer can leave.
//   - A request hands its token over when it returns. Once every token of a
//     page is handed over, the page is deleted handoverDelay later, so that
//     Vault has long stored the leases of the answers (it does so right
//     after the plugin returns): one commit for the whole page, in the
//     background, that no request waits for.
//
// So every token is covered from the commit of its page until well after
// its lease is stored: the write-ahead entry's gap (a crash between deleting
// the entry and Vault storing the lease left a token nobody held) is
// closed. The price is on the other side: a crash within handoverDelay of
// an answer revokes that token although its lease lives; its consumer
// reads a new one, and the lease's own revocation later finds the token
// ended. A plugin that stops cleanly (seal, step-down, unmount, upgrade)
// removes the handed-over entries first.
//
// Tokens whose whole life is shorter than journalMinAge need no cover: they
// end before recovery could act.

// journalPrefix holds the pages: node-local (the cluster that minted a
// token revokes it) and seal-wrapped (they hold tokens).
const journalPrefix = "journal/"

// handoverDelay is how long a page stays after its last token was handed
// over.
const handoverDelay = 2 * time.Second

// handoverRetry is how long a failed deletion waits to be tried again.
const handoverRetry = 10 * time.Second

// Kinds of journal entries: what recovery must check before revoking.
const (
	entryCreds  = "creds"  // a creds request's token: revoke it
	entryStatic = "static" // a static role's new token: revoke it unless the role holds it
)

// journalEntry is one covered token.
type journalEntry struct {
	issuedToken
	Token string `json:"access_token"`
	Kind  string `json:"kind"`
}

// journalPage is the tokens of one batch of requests that are not handed
// over yet.
type journalPage struct {
	Created time.Time               `json:"created"`
	Entries map[string]journalEntry `json:"entries"`
}

// ticket names a covered token: its page and its entry in it. The zero
// ticket is a token that needed no cover.
type ticket struct{ page, entry string }

// pageState is what this process knows of a page it wrote: not the tokens,
// which only storage keeps, but which entries are handed over.
type pageState struct {
	s       logical.Storage
	entries int
	handed  map[string]bool
	// due is when the page may go, once every entry is handed over.
	due time.Time
}

func (p *pageState) complete() bool { return len(p.handed) == p.entries }

// journal writes the pages of one mount.
type journal struct {
	b      *backend
	covers batcher[*coverItem]

	// writeMu keeps the deletion of handed-over pages and recovery from
	// acting on a page at once.
	writeMu sync.Mutex

	mu sync.Mutex
	// pages are the pages this process wrote and that are still stored.
	pages map[string]*pageState
	// remover says whether the goroutine deleting complete pages runs;
	// wake hurries it.
	remover bool
	wake    chan struct{}
	// prefix and seq name pages uniquely across processes and nodes.
	prefix string
	seq    atomic.Uint64
}

type coverItem struct {
	ctx    context.Context
	s      logical.Storage
	entry  journalEntry
	ticket ticket
}

func newJournal(b *backend) *journal {
	j := &journal{b: b, pages: map[string]*pageState{}, wake: make(chan struct{}, 1),
		prefix: strconv.FormatInt(time.Now().UnixNano(), 36)}
	j.covers.run = j.writeCovers
	return j
}

// cover journals a fresh token, unless it ends before recovery could act,
// and returns once the entry is committed.
func (j *journal) cover(ctx context.Context, s logical.Storage, t issuedToken, kind string) (ticket, error) {
	if t.endsBy().Sub(j.b.clock.Now()) < journalMinAge {
		return ticket{}, nil
	}
	item, err := j.covers.do(&coverItem{ctx: ctx, s: s, entry: journalEntry{issuedToken: t, Token: t.AccessToken.Reveal(), Kind: kind}})
	return item.value.ticket, err
}

// writeCovers writes one page holding every token of the batch.
func (j *journal) writeCovers(items []*batchItem[*coverItem]) {
	key := fmt.Sprintf("%s-%d", j.prefix, j.seq.Add(1))
	page := &journalPage{Created: j.b.clock.Now(), Entries: make(map[string]journalEntry, len(items))}
	for i, item := range items {
		id := strconv.Itoa(i)
		page.Entries[id] = item.value.entry
		item.value.ticket = ticket{page: key, entry: id}
	}
	first := items[0].value
	err := putJSON(context.WithoutCancel(first.ctx), first.s, journalPrefix+key, "the journal of new tokens", page)
	if err == nil {
		j.mu.Lock()
		j.pages[key] = &pageState{s: first.s, entries: len(items), handed: map[string]bool{}}
		j.mu.Unlock()
		j.committed("cover", len(items))
	}
	for _, item := range items {
		item.finish(err)
	}
}

// handOver marks a token as no longer the journal's: held by a lease or a
// static role, or revoked. When that completes its page, the page goes
// handoverDelay later.
func (j *journal) handOver(t ticket) {
	if t == (ticket{}) {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	page := j.pages[t.page]
	if page == nil {
		return // recovery took care of the page
	}
	page.handed[t.entry] = true
	if !page.complete() {
		return
	}
	page.due = j.b.clock.Now().Add(handoverDelay)
	if !j.remover {
		j.remover = true
		go j.removeHandedOver()
	}
}

// removeHandedOver runs while complete pages wait: it sleeps until the
// earliest is due, deletes every page due, and stops when none is left.
func (j *journal) removeHandedOver() {
	for {
		next, ok := j.nextDue()
		if !ok {
			return
		}
		if wait := next.Sub(j.b.clock.Now()); wait > 0 {
			timer := j.b.clock.NewTimer(wait)
			select {
			case <-timer.C():
			case <-j.wake:
			}
			timer.Stop()
		}
		j.removeDue(j.b.clock.Now())
	}
}

// nextDue is when the earliest complete page is due; when there is none,
// the remover is marked stopped.
func (j *journal) nextDue() (time.Time, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var next time.Time
	for _, page := range j.pages {
		if page.complete() && (next.IsZero() || page.due.Before(next)) {
			next = page.due
		}
	}
	if next.IsZero() {
		j.remover = false
	}
	return next, !next.IsZero()
}

// removeDue deletes the complete pages due by now. A page whose deletion
// fails is tried again later.
func (j *journal) removeDue(now time.Time) {
	j.writeMu.Lock()
	defer j.writeMu.Unlock()
	due := map[string]*pageState{}
	j.mu.Lock()
	for key, page := range j.pages {
		if page.complete() && !page.due.After(now) {
			due[key] = page
		}
	}
	j.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for key, page := range due {
		err := page.s.Delete(ctx, journalPrefix+key)
		j.mu.Lock()
		if err == nil {
			delete(j.pages, key)
		} else {
			page.due = j.b.clock.Now().Add(handoverRetry)
		}
		j.mu.Unlock()
		if err != nil {
			j.b.Logger().Warn("deleting a handed-over page of the journal failed; trying again", "tokens", page.entries,
				"retry_in", handoverRetry, "error", err)
			continue
		}
		j.committed("handover", page.entries)
	}
}

// flush deletes every complete page now, due or not: the plugin is
// stopping cleanly, and Vault has stored the leases of every answer.
func (j *journal) flush() {
	j.removeDue(time.Unix(1<<40, 0))
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// handedOver reports which entries of a page this process handed over.
func (j *journal) handedOver(key string) map[string]bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	ids := map[string]bool{}
	if page := j.pages[key]; page != nil {
		for id := range page.handed {
			ids[id] = true
		}
	}
	return ids
}

// committed counts one storage write of the journal and its tokens.
func (j *journal) committed(op string, tokens int) {
	j.b.metrics.journalCommits.WithLabelValues(op).Inc()
	j.b.metrics.journalTokens.WithLabelValues(op).Add(float64(tokens))
}

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
	j.writeMu.Lock()
	defer j.writeMu.Unlock()
	page := &journalPage{}
	found, err := getJSON(ctx, s, journalPrefix+key, "the journal of new tokens", page)
	if err != nil || !found || page.Created.After(cutoff) {
		return err
	}
	handed := j.handedOver(key)
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
	if err != nil {
		return err // storage is as it was, and so is what j.pages says of it
	}
	// What is left is entries recovery could not settle, never to be
	// handed over: the page is recovery's now.
	j.mu.Lock()
	delete(j.pages, key)
	j.mu.Unlock()
	return nil
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
	var pending *revocationError
	settled := err == nil || (errors.As(err, &pending) && pending.queued)
	b.Logger().Info("recovered a token whose request never finished", "role", t.Role, "token_id", t.TokenID,
		"revoked", err == nil, "settled", settled)
	return settled
}
