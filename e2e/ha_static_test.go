//go:build e2e

package e2e

import (
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// haStaticPeriod is the static role's rotation period in the HA test.
const haStaticPeriod = 15 * time.Second

// TestHAStaticRoleRotatesOnceAcrossALeaderKill: a static role rotates on
// the active node only, with no request, and keeps rotating once per
// period after the active node is killed: the new active node takes the
// schedule over from storage, and no rotation happens twice.
func TestHAStaticRoleRotatesOnceAcrossALeaderKill(t *testing.T) {
	h := newHACluster(t)
	old := h.leader
	// Its own scope tells the role's mints from any other.
	const scope = "groups:read"
	h.write("beyondidentity/static-roles/s", map[string]any{"scopes": scope, "rotation_period": haStaticPeriod.String(), "grace_period": "5s"})
	first := h.staticToken(old)
	second := h.waitForStaticRotation(old, first, 2*haStaticPeriod)

	// Killed right after a rotation, the next one falls due while no node
	// is active, or just after the new one took over.
	killAt := time.Now()
	old.Kill()
	leader := h.cluster.Active(readyTimeout)
	tookOver := time.Since(killAt)
	third := h.waitForStaticRotation(leader, second, 2*haStaticPeriod)
	fourth := h.waitForStaticRotation(leader, third, 2*haStaticPeriod)
	if !h.fake.IsActive(fourth) {
		t.Fatal("the static role's current token is not active at the fake")
	}

	var mints []time.Time
	for _, call := range h.fake.CallsTo(fakebi.OpToken) {
		if call.Form.Get("scope") == scope && call.Status == 200 {
			mints = append(mints, call.At)
		}
	}
	if len(mints) != 4 {
		t.Fatalf("%d mints for the static role, want 4: the first token and three rotations", len(mints))
	}
	for i := 1; i < len(mints); i++ {
		if gap := mints[i].Sub(mints[i-1]); gap < haStaticPeriod-time.Second {
			t.Fatalf("rotations %d and %d came %s apart, less than the %s period: one ran twice", i, i+1,
				gap.Round(time.Millisecond), haStaticPeriod)
		}
	}
	t.Logf("static role: %s killed %s after a rotation; %s active after %s; rotations %s and %s after the kill",
		old.Name, killAt.Sub(mints[1]).Round(time.Second), leader.Name, tookOver.Round(time.Second),
		mints[2].Sub(killAt).Round(time.Second), mints[3].Sub(killAt).Round(time.Second))
}

// staticToken reads the static role's token through node.
func (h *haCluster) staticToken(node *vaulttest.Server) string {
	h.t.Helper()
	creds, err := node.Client.Logical().Read("beyondidentity/static-creds/s")
	if err != nil || creds == nil || accessToken(creds) == "" {
		h.t.Fatalf("static-creds/s through %s: %v", node.Name, redactErr(err))
	}
	return accessToken(creds)
}

// waitForStaticRotation polls node until the static role hands out another
// token than old, and returns it. Reads may fail while a node takes over.
func (h *haCluster) waitForStaticRotation(node *vaulttest.Server, old string, within time.Duration) string {
	h.t.Helper()
	var current string
	eventually(h.t, within, "a rotation of the static role through "+node.Name, func() bool {
		creds, err := node.Client.Logical().Read("beyondidentity/static-creds/s")
		if err != nil || creds == nil {
			return false
		}
		current = accessToken(creds)
		return current != "" && current != old
	})
	return current
}
