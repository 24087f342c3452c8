//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// TestHAClusterFailover runs the plugin in a three-node Vault cluster on
// integrated storage and kills the active node with SIGKILL under a steady
// creds load. It shows, with the fake's record of calls and tokens, that a
// standby forwards creds to the active node; that creds work again through
// the new active node within a bound; that every lease issued before the
// kill renews and revokes from the new active node; that revocations left
// pending by the old leader are completed by the new one; and that tokens
// minted by requests that died with the old leader are revoked by the new
// leader's recovery when a journal entry covered them, the rest
// counted and logged.
func TestHAClusterFailover(t *testing.T) {
	h := newHACluster(t)
	old := h.leader

	// A standby's client follows no redirect: this credential was
	// forwarded, and the active node holds its lease.
	standby := h.cluster.Standbys(old)[0]
	viaStandby := h.issueThrough(standby)
	if _, err := old.Client.Sys().Lookup(viaStandby.LeaseID); err != nil {
		t.Fatalf("the active node does not hold the lease issued through standby %s: %v", standby.Name, err)
	}
	pending := h.failRevocations(3)

	beganIdx := len(h.fake.Tokens())
	load := startCredsLoad(t, h.cluster.Nodes, 2, "r")
	began := time.Now()
	eventually(t, time.Minute, "a steady creds load", func() bool { return load.successesSince(began) >= 100 })
	// Slow answers hold requests in flight at the kill: a token is minted
	// and its answer comes late, then its introspection (after the plugin
	// has covered the token with a journal entry) comes later still.
	h.fake.SetFault(fakebi.OpToken, fakebi.Fault{Delay: 200 * time.Millisecond, AfterMint: true})
	h.fake.SetFault(fakebi.OpIntrospect, fakebi.Fault{Delay: 400 * time.Millisecond})
	eventually(t, 30*time.Second, "credentials waiting on their introspection", func() bool {
		return h.unanswered(fakebi.OpIntrospect) >= 2
	})
	killAt := time.Now()
	old.Kill()
	killedIdx := len(h.fake.Tokens())

	leader := h.cluster.Active(readyTimeout)
	activeAfter := time.Since(killAt)
	// What the new leader's recovery will find: read before its first run,
	// a minute after it took over.
	stored := h.storedText(leader)
	h.fake.ClearFaults()
	recovered := time.Now()
	var probe *api.Secret
	eventually(t, time.Minute-time.Since(killAt), "creds through the new active node", func() bool {
		secret, err := leader.Client.Logical().Read("beyondidentity/creds/r")
		probe = secret
		return err == nil && secret != nil && secret.LeaseID != ""
	})
	failover := time.Since(killAt)
	t.Logf("failover: %s killed; %s active after %s; creds through it after %s", old.Name, leader.Name,
		activeAfter.Round(time.Millisecond), failover.Round(time.Millisecond))
	resumed := time.Now()
	eventually(t, 30*time.Second, "the load succeeding again", func() bool { return load.successesSince(resumed) >= 10 })
	load.stopAndWait()

	w := &world{killAt: killAt, beganIdx: beganIdx, killedIdx: killedIdx, attempts: load.results(),
		stored: stored, calls: h.fake.Calls(), pending: pending, received: map[string]string{}, postKill: map[string]bool{}}
	w.receive(viaStandby, false)
	for _, creds := range pending {
		w.receive(creds, false)
	}
	w.receive(probe, true)
	for _, a := range w.attempts {
		if a.ok() {
			w.received[a.leaseID] = a.token
			w.postKill[a.leaseID] = !a.start.Before(killAt)
		}
	}
	h.fake.ResetCalls()

	h.renewAndRevokeLeasesFromBeforeTheKill(leader, w)
	h.pendingRevocationsCompleted(leader, pending, recovered)
	h.coveredOrphansRolledBack(leader, w, killAt.Add(activeAfter))
	w.logOutcomes(t, h.fake)
}

// failRevocations issues n credentials and revokes their leases while
// Beyond Identity answers 503: each revocation fails, the plugin records
// it to retry in the background, and the tokens stay active. The fault
// lasts until the test clears it, after the kill.
func (h *haCluster) failRevocations(n int) []*api.Secret {
	h.t.Helper()
	var pending []*api.Secret
	for range n {
		pending = append(pending, h.issueThrough(h.leader))
	}
	h.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 503, Body: `{"code":"service_unavailable","message":"maintenance"}`})
	for _, creds := range pending {
		err := h.leader.Client.Sys().RevokeWithOptions(&api.RevokeOptions{LeaseID: creds.LeaseID, Sync: true})
		if err == nil || !strings.Contains(err.Error(), "keeps retrying the revocation in the background") {
			h.t.Fatalf("a revocation during the outage: %s", redactErr(err))
		}
		if !h.fake.IsActive(accessToken(creds)) {
			h.t.Fatal("a token died during the outage")
		}
	}
	return pending
}

// unanswered counts the calls of op the fake has not answered yet.
func (h *haCluster) unanswered(op fakebi.Op) int {
	n := 0
	for _, call := range h.fake.CallsTo(op) {
		if call.Status == 0 {
			n++
		}
	}
	return n
}
