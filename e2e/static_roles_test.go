//go:build e2e

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// staticCreds reads a static role's current token and the seconds until
// its rotation.
func (e *env) staticCreds(role string) (string, int64) {
	e.t.Helper()
	creds := e.read("beyondidentity/static-creds/" + role)
	if creds == nil || creds.LeaseID != "" {
		e.t.Fatalf("static-creds/%s: %v (a static credential has no lease)", role, creds)
	}
	ttl, _ := creds.Data["ttl"].(json.Number).Int64()
	return accessToken(creds), ttl
}

// waitForRotation polls until the static role hands out another token
// than old, and returns it. A read may fail meanwhile: after a restart, the
// old token may have ended before the overdue rotation ran.
func (e *env) waitForRotation(role, old string, within time.Duration) string {
	e.t.Helper()
	var current string
	eventually(e.t, within, "the static role's rotation", func() bool {
		creds, err := e.vault.Client.Logical().Read("beyondidentity/static-creds/" + role)
		if err != nil || creds == nil {
			return false
		}
		current = accessToken(creds)
		return current != old
	})
	return current
}

// revokedNotExpired reports whether the fake revoked a token before its own
// end: with tokensOutliveTheirLeases, that end is an hour away.
func (e *env) revokedNotExpired(value string) bool {
	token, _ := e.fake.TokenByValue(value)
	return !token.RevokedAt.IsZero() && token.RevokedAt.Before(token.ExpiresAt)
}

// TestStaticRoleRotatesOnScheduleWithoutARequest: a 15-second period,
// nothing but reads of static-creds, which mint nothing.
func TestStaticRoleRotatesOnScheduleWithoutARequest(t *testing.T) {
	e := newEnv(t)
	e.tokensOutliveTheirLeases()
	e.write("beyondidentity/static-roles/sched", map[string]any{"scopes": "identities:read", "rotation_period": "15s", "grace_period": "5s"})
	first, ttl := e.staticCreds("sched")
	if ttl < 10 || ttl > 15 {
		t.Fatalf("ttl %d, want the seconds until the rotation", ttl)
	}
	if mint := e.fake.CallsTo(fakebi.OpToken)[0]; mint.Form.Get("expiration_time") != "20" {
		t.Fatalf("the token was minted for %s s, want the period and the grace, 20", mint.Form.Get("expiration_time"))
	}
	for i := 0; i < 3; i++ {
		if again, _ := e.staticCreds("sched"); again != first {
			break // the rotation came: checked below
		}
	}
	if mints := e.countOps(fakebi.OpToken); mints != 1 {
		t.Fatalf("reads of static-creds minted tokens: %d mints", mints)
	}
	second := e.waitForRotation("sched", first, 30*time.Second)
	if mints := e.countOps(fakebi.OpToken); mints != 2 {
		t.Fatalf("%d mints, want the first token and one rotation", mints)
	}
	if _, ok := e.fake.TokenByValue(second); !ok || !e.fake.IsActive(first) {
		t.Fatal("want a token of the fake, and the previous one working through its grace")
	}
	eventually(t, 30*time.Second, "the previous token revoked after its grace", func() bool { return e.revokedNotExpired(first) })
}

// TestRotateRoleThenDelete: rotate-role keeps the old token through the
// grace, then revokes it; deleting the role revokes its token.
func TestRotateRoleThenDelete(t *testing.T) {
	e := newEnv(t)
	e.tokensOutliveTheirLeases()
	e.write("beyondidentity/static-roles/manual", map[string]any{"scopes": "identities:read", "rotation_period": "1h", "grace_period": "8s"})
	first, _ := e.staticCreds("manual")
	e.write("beyondidentity/rotate-role/manual", nil)
	rotated := time.Now()
	second, ttl := e.staticCreds("manual")
	if second == first || ttl < 3590 {
		t.Fatalf("rotate-role: a new token %v, ttl %d (want the period counted from now)", second != first, ttl)
	}
	if !e.fake.IsActive(first) {
		t.Fatal("the old token died at once; it must work through its grace")
	}
	eventually(t, 30*time.Second, "the old token revoked after its grace", func() bool { return e.revokedNotExpired(first) })
	if held := time.Since(rotated); held < 7*time.Second {
		t.Fatalf("the old token was revoked %s after the rotation, before its 8 s grace", held)
	}
	e.vault.MustCLI("delete", "beyondidentity/static-roles/manual")
	if !e.revokedNotExpired(second) {
		t.Fatal("deleting the static role left its token valid")
	}
}

// TestStaticRoleRotationSurvivesAReloadAndARestart: a rotation due while
// the plugin reloads, or while Vault is down, still happens.
func TestStaticRoleRotationSurvivesAReloadAndARestart(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/static-roles/durable", map[string]any{"scopes": "identities:read", "rotation_period": "15s"})
	first, _ := e.staticCreds("durable")
	e.vault.MustCLI("plugin", "reload", "-type=secret", "-plugin="+pluginName)
	second := e.waitForRotation("durable", first, 40*time.Second)

	e.vault.RestartAfter(16 * time.Second) // the next rotation falls due while Vault is down
	third := e.waitForRotation("durable", second, 40*time.Second)
	if third == first || !strings.HasPrefix(third, "eyJ") {
		t.Fatal("want a fresh token after the restart")
	}
}
