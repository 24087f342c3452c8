package beyondidentity

// rotate-role: a new token now, the previous one in its grace.

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// A burst of rotations keeps at most the current token and three
// retired ones alive, and the role's record small.
func TestARotationBurstKeepsAtMostThreeReplacedTokens(t *testing.T) {
	t.Parallel()
	e, _ := newStaticRole(t)
	for range 20 {
		e.mustOK(logical.UpdateOperation, "rotate-role/sync", nil)
	}
	active := 0
	for _, token := range e.fake.Tokens() {
		if e.fake.IsActive(token.Value) {
			active++
		}
	}
	if active > 4 {
		t.Fatalf("%d tokens valid after 20 rotations: want the current one and at most 3 retired", active)
	}
	role, err := readStaticRole(context.Background(), e.storage, "sync")
	if err != nil || len(role.Retired) > maxRetiredTokens {
		t.Fatalf("the role keeps %d retired tokens (%v)", len(role.Retired), err)
	}
}

func TestRotateRoleKeepsTheOldTokenForTheGrace(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	first := e.staticToken()
	fake.Advance(20 * time.Minute)
	e.mustOK(logical.UpdateOperation, "rotate-role/sync", nil)
	second := e.staticToken()
	if second == first || !e.fake.IsActive(first) {
		t.Fatal("rotate-role must replace the token and keep the old one for the grace")
	}
	if ttl := e.mustOK(logical.ReadOperation, "static-creds/sync", nil).Data["ttl"]; ttl != int64(3600) {
		t.Fatalf("ttl %v: the next rotation counts from the manual one", ttl)
	}
	e.advance(fake, 6*time.Minute)
	if e.fake.IsActive(first) || !e.fake.IsActive(second) {
		t.Fatal("the old token outlived its grace")
	}
}

// The live-token bound holds for rotate-role whatever the tokens'
// lifetimes: with a 10-second period each token ends within a minute, and
// a burst of calls while Beyond Identity refuses revocations still stops
// at 5 live tokens.
func TestRotateRoleHoldsTheLiveTokenBoundForShortTokens(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.useFakeClock()
	e.configure()
	e.mustOK(logical.CreateOperation, "static-roles/fast", map[string]any{"scopes": "identities:read", "rotation_period": "10s"})
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: http.StatusServiceUnavailable, Body: `{}`})
	refused := 0
	for range 30 {
		status, message := statusOf(e.request(logical.UpdateOperation, "rotate-role/fast", nil))
		switch {
		case status == http.StatusServiceUnavailable && strings.Contains(message, "5 live tokens"):
			refused++
		case status != http.StatusOK:
			t.Fatalf("rotate-role: %d %q", status, message)
		}
	}
	if active := e.activeTokens(); active != maxLiveTokens || refused != 26 {
		t.Fatalf("%d tokens valid after 30 rotate-role calls with revocations refused, %d calls refused: want %d and 26",
			active, refused, maxLiveTokens)
	}
}
