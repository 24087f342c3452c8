//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// world is what the HA test knows once the load has stopped.
type world struct {
	killAt time.Time
	// beganIdx and killedIdx index the fake's tokens: the first minted for
	// the load, and the first minted after the kill.
	beganIdx, killedIdx int
	attempts            []attempt
	// stored is the mount's storage as the new leader found it.
	stored string
	// calls are the fake's calls up to the end of the load.
	calls   []fakebi.Call
	pending []*api.Secret
	// received maps the lease of every credential a client got to its token.
	received map[string]string
	postKill map[string]bool
}

func (w *world) receive(secret *api.Secret, afterKill bool) {
	w.received[secret.LeaseID] = accessToken(secret)
	if afterKill {
		w.postKill[secret.LeaseID] = true
	}
}

func (w *world) heldByClient(token string) bool {
	for _, held := range w.received {
		if held == token {
			return true
		}
	}
	return false
}

// orphans are the tokens minted from the load's start that no client got.
func (w *world) orphans(minted []fakebi.Token) []fakebi.Token {
	var orphans []fakebi.Token
	for _, token := range minted[w.beganIdx:] {
		if !w.heldByClient(token.Value) {
			orphans = append(orphans, token)
		}
	}
	return orphans
}

// covered reports whether the token was in the mount's storage at the
// failover: in a journal entry recovery acts on.
func (w *world) covered(token fakebi.Token) bool { return strings.Contains(w.stored, token.Value) }

// introspected reports whether the plugin introspected the token before
// the load ended: it had the token, and had covered it before asking.
func (w *world) introspected(token fakebi.Token) bool {
	for _, call := range w.calls {
		if call.Op == fakebi.OpIntrospect && call.Form.Get("token") == token.Value {
			return true
		}
	}
	return false
}

// renewAndRevokeLeasesFromBeforeTheKill renews and revokes, through the new
// leader, every lease of the role that Vault stored before the kill, those
// no client received included, and checks each revocation at the fake.
func (h *haCluster) renewAndRevokeLeasesFromBeforeTheKill(leader *vaulttest.Server, w *world) {
	h.t.Helper()
	const prefix = "beyondidentity/creds/r/"
	list, err := leader.Client.Logical().List("sys/leases/lookup/" + prefix)
	if err != nil || list == nil {
		h.t.Fatalf("listing leases on the new leader: %v", err)
	}
	skip := map[string]bool{}
	for _, creds := range w.pending {
		skip[creds.LeaseID] = true
	}
	var leases []string
	for _, key := range list.Data["keys"].([]any) {
		if id := prefix + key.(string); !skip[id] && !w.postKill[id] {
			leases = append(leases, id)
		}
	}
	if len(leases) < 100 {
		h.t.Fatalf("the new leader lists %d leases from before the kill; the load alone got 100", len(leases))
	}
	errs := make(chan error, len(leases))
	work := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				if renewed, err := leader.Client.Sys().Renew(id, 2400); err != nil || renewed.LeaseDuration < 1800 {
					errs <- fmt.Errorf("renewing %s on the new leader: %v", id, redactErr(err))
					continue
				}
				if err := leader.Client.Sys().RevokeWithOptions(&api.RevokeOptions{LeaseID: id, Sync: true}); err != nil {
					errs <- fmt.Errorf("revoking %s on the new leader: %v", id, redactErr(err))
				}
			}
		}()
	}
	for _, id := range leases {
		work <- id
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		h.t.Fatal(err)
	}

	revoked := map[string]int{}
	for _, call := range h.fake.CallsTo(fakebi.OpRevoke) {
		if call.Status == http.StatusOK {
			revoked[call.Form.Get("token")]++
		}
	}
	unreceived, unreceivedRevokes := 0, 0
	for _, id := range leases {
		token, ok := w.received[id]
		if !ok {
			unreceived++
			continue
		}
		if h.fake.IsActive(token) || revoked[token] != 1 {
			h.t.Fatalf("lease %s: token active %v after %d revoke calls answered 200, want one", id, h.fake.IsActive(token), revoked[token])
		}
	}
	// The tokens of leases no client received are known only to Vault:
	// count the other 200s, leaving out the background and rollback work.
	for token, n := range revoked {
		if !w.heldByClient(token) && !strings.Contains(w.stored, token) {
			unreceivedRevokes += n
		}
	}
	if unreceivedRevokes != unreceived {
		h.t.Fatalf("%d leases no client received were revoked with %d upstream revocations", unreceived, unreceivedRevokes)
	}
	h.t.Logf("leases from before the kill: %d renewed and revoked through %s, each token revoked upstream once "+
		"(%d of them leases whose answer no client received)", len(leases), leader.Name, unreceived)
}

// pendingRevocationsCompleted waits for the new leader's background worker
// to revoke the tokens whose revocation failed before the kill, then
// checks that Vault's own revocation of their leases now succeeds at once.
func (h *haCluster) pendingRevocationsCompleted(leader *vaulttest.Server, pending []*api.Secret, recovered time.Time) {
	h.t.Helper()
	eventually(h.t, 2*time.Minute, "the new leader revoking the pending tokens", func() bool {
		for _, creds := range pending {
			if h.fake.IsActive(accessToken(creds)) {
				return false
			}
		}
		return true
	})
	if !strings.Contains(leader.LogText(), "revoked a token in the background") {
		h.t.Fatal("the new leader's log does not show the background revocations")
	}
	for _, creds := range pending {
		if err := leader.Client.Sys().RevokeWithOptions(&api.RevokeOptions{LeaseID: creds.LeaseID, Sync: true}); err != nil {
			h.t.Fatalf("revoking a lease the plugin had revoked: %v", redactErr(err))
		}
	}
	h.t.Logf("revocations pending before the kill: %d completed by %s, seen %s after Beyond Identity recovered",
		len(pending), leader.Name, time.Since(recovered).Round(time.Second))
}

// coveredOrphansRolledBack waits for the new leader's recovery to revoke
// every token that a journal entry covered at the failover and no
// client received.
func (h *haCluster) coveredOrphansRolledBack(leader *vaulttest.Server, w *world, tookOver time.Time) {
	h.t.Helper()
	var covered []fakebi.Token
	for _, token := range w.orphans(h.fake.Tokens()) {
		if w.covered(token) {
			covered = append(covered, token)
		}
	}
	if len(covered) == 0 {
		h.t.Fatal("no token of a request in flight at the kill was covered by a journal entry: recovery went untested")
	}
	eventually(h.t, 3*time.Minute, "the new leader's recovery revoking the covered tokens", func() bool {
		for _, token := range covered {
			if h.fake.IsActive(token.Value) {
				return false
			}
		}
		return true
	})
	if !strings.Contains(leader.LogText(), "recovered a token whose request never finished") {
		h.t.Fatal("the new leader's log does not show the recovery")
	}
	h.t.Logf("recovery: %d covered tokens revoked by %s, seen %s after it took over", len(covered), leader.Name,
		time.Since(tookOver).Round(time.Second))
}

// logOutcomes reports what became of the requests in flight at the kill
// and of every token minted that no client received.
func (w *world) logOutcomes(t *testing.T, fake *fakebi.Server) {
	inFlight, leased := 0, 0
	for _, a := range w.attempts {
		if a.inFlightAt(w.killAt) {
			inFlight++
			if a.ok() {
				leased++
			}
		}
	}
	unansweredMints := 0
	for _, call := range w.calls {
		if call.Op == fakebi.OpToken && call.Status == 0 && call.At.Before(w.killAt) {
			unansweredMints++
		}
	}
	minted, beforeKill := fake.Tokens(), 0
	for i := w.beganIdx; i < len(minted); i++ {
		token := minted[i]
		if w.heldByClient(token.Value) {
			continue
		}
		when := "after"
		if i < w.killedIdx {
			when = "before"
			beforeKill++
		}
		t.Logf("orphan token %s, minted %s the kill: %s", token.ID, when, w.outcome(token, fake))
	}
	t.Logf("requests in flight at the kill: %d; %d minted and leased to their client, %d minted and orphaned "+
		"(above), %d never minted; token calls unanswered at the kill: %d",
		inFlight, leased, beforeKill, max(inFlight-leased-beforeKill, 0), unansweredMints)
}

func (w *world) outcome(token fakebi.Token, fake *fakebi.Server) string {
	active := fake.IsActive(token.Value)
	switch {
	case w.covered(token) && !active:
		return "covered by a journal entry; revoked by the new leader's recovery"
	case w.covered(token):
		return "covered by a journal entry; STILL ACTIVE"
	case w.introspected(token) && !active:
		return "finished by the plugin and leased by Vault, answer lost with the node; revoked with its lease"
	case w.introspected(token):
		return "finished by the plugin, its journal page gone and no lease stored (a leak the journal should prevent); expires on its own at " +
			token.ExpiresAt.Format(time.RFC3339)
	case active:
		// Most often its answer was still on the way: see the count of
		// token calls unanswered at the kill.
		return "never covered: the node died before its journal entry was stored; expires on its own at " +
			token.ExpiresAt.Format(time.RFC3339)
	}
	return "never covered, but revoked"
}
