package beyondidentity

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/clock"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
)

// newStaticRole returns a configured backend on a fake clock with static
// role "sync" (rotation every hour, a six-minute grace) just written.
func newStaticRole(t *testing.T) (*testEnv, *clock.Fake) {
	t.Helper()
	e := newTestBackend(t)
	fake := e.useFakeClock()
	e.configure()
	e.mustOK(logical.CreateOperation, "static-roles/sync", map[string]any{"scopes": "identities:read", "rotation_period": "1h"})
	return e, fake
}

// staticToken reads static-creds/sync and returns the token.
func (e *testEnv) staticToken() string {
	e.t.Helper()
	return e.mustOK(logical.ReadOperation, "static-creds/sync", nil).Data["access_token"].(string)
}

// advance moves the fake clock and runs what the background worker would.
func (e *testEnv) advance(fake *clock.Fake, d time.Duration) {
	e.t.Helper()
	fake.Advance(d)
	e.b.runDue(context.Background(), e.storage)
}

func TestStaticRoleMintsItsFirstTokenAtOnce(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	mints := e.fake.CallsTo(fakebi.OpToken)
	if len(mints) != 1 || mints[0].Form.Get("expiration_time") != "3960" || mints[0].Form.Get("scope") != "identities:read" {
		t.Fatalf("want one mint for the period and its grace (3600+360 s), got %v", opsOf(e.fake.Calls()))
	}
	creds := e.mustOK(logical.ReadOperation, "static-creds/sync", nil)
	minted := e.lastToken()
	want := map[string]any{
		"access_token": minted.Value, "token_type": "Bearer", "token_id": minted.ID, "role": "sync",
		"last_vault_rotation": fake.Now().UTC().Format(time.RFC3339), "rotation_period": int64(3600), "ttl": int64(3600),
		"expires_at": minted.ExpiresAt.UTC().Format(time.RFC3339),
	}
	for field, value := range want {
		if creds.Data[field] != value {
			t.Errorf("static-creds %s = %#v, want %#v", field, creds.Data[field], value)
		}
	}
	if creds.Secret != nil {
		t.Fatal("static-creds created a lease")
	}
	role := e.mustOK(logical.ReadOperation, "static-roles/sync", nil)
	if role.Data["token_id"] != minted.ID || role.Data["grace_period"] != int64(360) || role.Data["last_rotation_error"] != "" ||
		role.Data["next_vault_rotation"] != fake.Now().Add(time.Hour).UTC().Format(time.RFC3339) {
		t.Fatalf("static role reads %v", role.Data)
	}
	for _, value := range role.Data {
		if value == minted.Value {
			t.Fatal("reading the static role shows its token")
		}
	}
}

func TestStaticRoleWhoseFirstMintFailsIsNotStored(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: 400, Body: `{"error":"invalid_scope","error_description":"not allowed"}`})
	resp, err := e.request(logical.CreateOperation, "static-roles/sync", map[string]any{"scopes": "identities:read"})
	if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "invalid_scope") {
		t.Fatalf("want the refusal as a 400, got %s %v", errorText(resp), err)
	}
	if read, _ := e.request(logical.ReadOperation, "static-roles/sync", nil); read != nil {
		t.Fatal("a static role whose first mint failed was stored")
	}
	if _, counted := e.scrape()["beyondidentity_static_rotations_total"]; counted {
		t.Fatal("a role that was never stored counts a failed rotation: any name would become a label value")
	}
	// A token minted but refused (other scopes) is revoked, and nothing stored.
	e.fake.ClearFaults()
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Rewrite: func(a map[string]any) { a["scope"] = "identities:read tokens:read" }})
	if resp, _ := e.request(logical.CreateOperation, "static-roles/sync", map[string]any{"scopes": "identities:read"}); resp == nil || !resp.IsError() {
		t.Fatal("a wider grant was accepted")
	}
	if read, _ := e.request(logical.ReadOperation, "static-roles/sync", nil); read != nil || e.fake.IsActive(e.lastToken().Value) {
		t.Fatal("a refused token was stored or left valid")
	}
}

func TestStaticCredsReturnsTheSameTokenAndMintsNothing(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	first := e.staticToken()
	e.fake.ResetCalls()
	for i := 0; i < 5; i++ {
		fake.Advance(10 * time.Minute)
		if e.staticToken() != first {
			t.Fatal("static-creds changed token between rotations")
		}
	}
	if calls := e.fake.Calls(); len(calls) != 0 {
		t.Fatalf("reading static-creds called Beyond Identity: %v", opsOf(calls))
	}
	if ttl := e.mustOK(logical.ReadOperation, "static-creds/sync", nil).Data["ttl"]; ttl != int64(600) {
		t.Fatalf("ttl %v, want the 600 s left until the rotation", ttl)
	}
}

// TestStaticRoleRotatesOnScheduleAndRevokesAfterTheGrace walks a static
// role through two rotations on the injected clock.
func TestStaticRoleRotatesOnScheduleAndRevokesAfterTheGrace(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	first := e.staticToken()
	e.advance(fake, time.Hour-time.Second)
	if e.staticToken() != first {
		t.Fatal("rotated before its time")
	}
	e.advance(fake, time.Second)
	second := e.staticToken()
	if second == first || !e.fake.IsActive(first) {
		t.Fatal("want a new token, with the previous one working through its grace")
	}
	e.advance(fake, 6*time.Minute-time.Second)
	if !e.fake.IsActive(first) {
		t.Fatal("the previous token was revoked before its grace ended")
	}
	e.advance(fake, time.Second)
	if e.fake.IsActive(first) || !e.fake.IsActive(second) {
		t.Fatal("want the previous token revoked when its grace ended, the current one working")
	}
	revokes := e.fake.CallsTo(fakebi.OpRevoke)
	if len(revokes) != 1 || revokes[0].Form.Get("token") != first || revokes[0].Status != 200 {
		t.Fatalf("want the previous token revoked once; calls %v", opsOf(e.fake.Calls()))
	}
	e.advance(fake, time.Hour-6*time.Minute)
	if third := e.staticToken(); third == second {
		t.Fatal("the second rotation did not happen")
	}
}

func TestStaticRoleRotationFailuresBackOff(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	first := e.staticToken()
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: 503, Body: `{"code":"service_unavailable","message":"maintenance"}`})
	e.advance(fake, time.Hour)
	role := e.mustOK(logical.ReadOperation, "static-roles/sync", nil)
	if !strings.Contains(role.Data["last_rotation_error"].(string), "HTTP 503") ||
		role.Data["next_vault_rotation"] != fake.Now().Add(rotationRetryBase).UTC().Format(time.RFC3339) {
		t.Fatalf("after a failed rotation: %v", role.Data)
	}
	if e.staticToken() != first {
		t.Fatal("the current token changed although its rotation failed")
	}
	e.advance(fake, rotationRetryBase)
	role = e.mustOK(logical.ReadOperation, "static-roles/sync", nil)
	if role.Data["next_vault_rotation"] != fake.Now().Add(2*rotationRetryBase).UTC().Format(time.RFC3339) {
		t.Fatalf("the second failure should back off twice as long: %v", role.Data["next_vault_rotation"])
	}
	e.fake.ClearFaults()
	e.advance(fake, 2*rotationRetryBase)
	role = e.mustOK(logical.ReadOperation, "static-roles/sync", nil)
	if role.Data["last_rotation_error"] != "" || e.staticToken() == first {
		t.Fatalf("after recovery: %v", role.Data)
	}
}

func TestStaticCredsRefusesATokenThatEnded(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: 503, Body: `{}`})
	for elapsed := time.Duration(0); elapsed <= 66*time.Minute; elapsed += time.Minute {
		e.advance(fake, time.Minute)
	}
	resp, err := e.request(logical.ReadOperation, "static-creds/sync", nil)
	if status, message := statusOf(resp, err); status != 503 || !strings.Contains(message, "rotating it failed") {
		t.Fatalf("reading a static role whose token ended: %d %s", status, message)
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

func TestDeletingAStaticRoleRevokesItsTokens(t *testing.T) {
	t.Parallel()
	e, _ := newStaticRole(t)
	first := e.staticToken()
	e.mustOK(logical.UpdateOperation, "rotate-role/sync", nil)
	second := e.staticToken()
	e.mustOK(logical.DeleteOperation, "static-roles/sync", nil)
	if e.fake.IsActive(first) || e.fake.IsActive(second) {
		t.Fatal("deleting the static role left a token valid")
	}
	if resp, _ := e.request(logical.ReadOperation, "static-roles/sync", nil); resp != nil {
		t.Fatal("the static role is still there")
	}
}

func TestStaticRoleChanges(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	first := e.staticToken()
	// Another period reschedules without a new token.
	e.mustOK(logical.UpdateOperation, "static-roles/sync", map[string]any{"rotation_period": "30m", "grace_period": "5m"})
	if e.staticToken() != first {
		t.Fatal("changing the period minted a token")
	}
	if ttl := e.mustOK(logical.ReadOperation, "static-creds/sync", nil).Data["ttl"]; ttl != int64(1800) {
		t.Fatalf("ttl %v after shortening the period to 30m", ttl)
	}
	// Other scopes need another token at once.
	e.mustOK(logical.UpdateOperation, "static-roles/sync", map[string]any{"scopes": "identities:read,groups:read"})
	if e.staticToken() == first || !e.fake.IsActive(first) {
		t.Fatal("changing the scopes must rotate at once, keeping the old token for its grace")
	}
	if got := e.lastToken().Scopes; len(got) != 2 {
		t.Fatalf("the new token carries %v", got)
	}
	e.advance(fake, 5*time.Minute)
	if e.fake.IsActive(first) {
		t.Fatal("the old token outlived the new grace")
	}
}

func TestStaticRoleBadInput(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	for name, tc := range map[string]struct {
		op          logical.Operation
		path        string
		data        map[string]any
		field, rule string
	}{
		"period below 10s":      {logical.CreateOperation, "static-roles/r", map[string]any{"scopes": "a:b", "rotation_period": "9s"}, "rotation_period", "at least 10s, got 9s"},
		"no scopes":             {logical.CreateOperation, "static-roles/r", map[string]any{"rotation_period": "1h"}, "scopes", "is required"},
		"grace above period":    {logical.CreateOperation, "static-roles/r", map[string]any{"scopes": "a:b", "rotation_period": "1m", "grace_period": "2m"}, "grace_period", "must not exceed 'rotation_period'"},
		"longer than 90 days":   {logical.CreateOperation, "static-roles/r", map[string]any{"scopes": "a:b", "rotation_period": "2161h"}, "rotation_period", "at most 7776000s"},
		"malformed scope":       {logical.CreateOperation, "static-roles/r", map[string]any{"scopes": "Groups"}, "scopes", "which is not a scope"},
		"unknown role, rotate":  {logical.UpdateOperation, "rotate-role/nope", nil, "name", "must be a static role written at beyondidentity/static-roles/nope"},
		"name too long":         {logical.CreateOperation, "static-roles/" + strings.Repeat("n", 129), map[string]any{"scopes": "a:b"}, "name", "at most 128 characters"},
		"claims not an object":  {logical.CreateOperation, "static-roles/r", map[string]any{"scopes": "a:b", "custom_claims": "x=y"}, "custom_claims", "must be a JSON object"},
		"description too long":  {logical.CreateOperation, "static-roles/r", map[string]any{"scopes": "a:b", "description": strings.Repeat("d", 1025)}, "description", "at most 1024"},
		"negative grace period": {logical.CreateOperation, "static-roles/r", map[string]any{"scopes": "a:b", "grace_period": "-1s"}, "grace_period", "negative"},
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := e.request(tc.op, tc.path, tc.data)
			if err != nil || resp == nil || !resp.IsError() {
				t.Fatalf("want a 400, got %s %v", errorText(resp), err)
			}
			msg := resp.Error().Error()
			if !strings.Contains(msg, tc.field) || !strings.Contains(msg, tc.rule) {
				t.Fatalf("message %q does not name %s and the rule %q", msg, tc.field, tc.rule)
			}
		})
	}
	if calls := e.fake.Calls(); len(calls) != 0 {
		t.Fatalf("bad input called Beyond Identity: %v", opsOf(calls))
	}
	resp, err := e.request(logical.ReadOperation, "static-creds/nope", nil)
	if status, message := statusOf(resp, err); status != 400 || !strings.Contains(message, "'name' must be a static role") {
		t.Fatalf("static-creds of an unknown role: %d %s", status, message)
	}
}

// The worker rotates on its own, with no request, and a new backend on the
// same storage (a plugin reload, a restart, a failover) picks the role up.
func TestStaticRoleRotatesWithoutARequestAfterARestart(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	first := e.staticToken()
	restarted := e.restartedBackend(fake)
	timerCreated := fake.TimerCreated()
	if err := restarted.Initialize(context.Background(), &logical.InitializationRequest{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	awaitTimer(t, timerCreated, "the background worker, with a rotation due later,")
	fake.Advance(time.Hour)
	eventuallyTrue(t, func() bool { return e.staticToken() != first })
	if mints := len(e.fake.CallsTo(fakebi.OpToken)); mints != 2 {
		t.Fatalf("%d mints, want the first token and one rotation", mints)
	}
}

// A static role's journal entry never costs it its token: recovery leaves
// a token the role holds alone, and revokes one it does not (a rotation
// that died before storing its token).
func TestRecoveryLeavesAStaticRolesTokenAlone(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	held := e.staticToken()
	minted, _ := e.fake.TokenByValue(held)
	e.mustOK(logical.CreateOperation, "static-roles/other", map[string]any{"scopes": "identities:read"})
	orphan := e.lastToken() // "other"'s, which its role is made to forget below
	if err := e.storage.Delete(context.Background(), staticRolePrefix+"other"); err != nil {
		t.Fatal(err)
	}
	for _, token := range []fakebi.Token{minted, orphan} {
		entry := issuedToken{AccessToken: secretOf(token.Value), TokenID: token.ID, Role: "sync",
			Issuer: e.server.URL + "/v1/tenants/tenant-1/realms/realm-1/applications/app-1", ClientID: testClientID,
			ExpiresAt: token.ExpiresAt.Unix(), EndsBy: token.ExpiresAt.Unix(), Static: true}
		if token.Value == orphan.Value {
			entry.Role = "other"
		}
		if err := e.b.cover(context.Background(), e.storage, &freshToken{issuedToken: entry}); err != nil {
			t.Fatal(err)
		}
	}
	e.fake.ResetCalls()
	fake.Advance(journal.MinAge + time.Minute)
	e.rollback()
	revokes := e.fake.CallsTo(fakebi.OpRevoke)
	if !e.fake.IsActive(held) || len(revokes) != 1 || revokes[0].Form.Get("token") != orphan.Value {
		t.Fatalf("want only the token no role holds revoked; calls %v", opsOf(e.fake.Calls()))
	}
	if pages := e.journalPages(); len(pages) != 0 {
		t.Fatalf("journal pages left: %v", pages)
	}
}

// activeTokens counts the tokens the fake would still accept.
func (e *testEnv) activeTokens() int {
	active := 0
	for _, token := range e.fake.Tokens() {
		if e.fake.IsActive(token.Value) {
			active++
		}
	}
	return active
}

// TestAStaticRoleNeverHasMoreThanFiveLiveTokens: while Beyond Identity
// refuses revocations, a burst of rotate-role calls stops at 5 live tokens
// with a 503 naming the pending revocations; once revocations succeed again
// they are all revoked and rotate-role works again.
func TestAStaticRoleNeverHasMoreThanFiveLiveTokens(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: http.StatusServiceUnavailable, Body: `{}`})
	refused := 0
	for range 15 {
		status, message := statusOf(e.request(logical.UpdateOperation, "rotate-role/sync", nil))
		switch {
		case status == http.StatusServiceUnavailable && strings.Contains(message, "5 live tokens") &&
			strings.Contains(message, "revocations/"):
			refused++
		case status != http.StatusOK:
			t.Fatalf("rotate-role: %d %q", status, message)
		}
	}
	if active := e.activeTokens(); active != maxLiveTokens || refused != 11 {
		t.Fatalf("%d tokens valid after 15 rotate-role calls with revocations refused, %d calls refused: want %d and 11",
			active, refused, maxLiveTokens)
	}
	if pending := e.mustOK(logical.ListOperation, "revocations/", nil).Data["keys"]; len(pending.([]string)) != 1 {
		t.Fatalf("revocations/ lists %v, want the one token cut from the role", pending)
	}

	e.fake.ClearFaults()
	e.advance(fake, revocationRetryMax)
	if keys := e.mustOK(logical.ListOperation, "revocations/", nil).Data["keys"]; keys != nil {
		t.Fatalf("revocations/ still lists %v once Beyond Identity revokes again", keys)
	}
	e.mustOK(logical.UpdateOperation, "rotate-role/sync", nil)
	if active := e.activeTokens(); active > maxLiveTokens {
		t.Fatalf("%d tokens valid after the revocations drained", active)
	}
}

// TestAScheduledRotationWaitsForRevocationsToDrain: a due rotation past the
// bound is not made but recorded in last_rotation_error and tried again,
// unless the current token would end first: then it rotates, since a dead
// token helps no one.
func TestAScheduledRotationWaitsForRevocationsToDrain(t *testing.T) {
	t.Parallel()
	e, fake := newStaticRole(t)
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: http.StatusServiceUnavailable, Body: `{}`})
	for range 5 {
		statusOf(e.request(logical.UpdateOperation, "rotate-role/sync", nil))
	}
	before := len(e.fake.Tokens())
	e.advance(fake, time.Hour) // the rotation falls due
	r := e.staticRecord("sync")
	if len(e.fake.Tokens()) != before || !strings.Contains(r.LastRotationError, "5 live tokens") {
		t.Fatalf("a due rotation past the bound: %d new tokens, last_rotation_error %q", len(e.fake.Tokens())-before, r.LastRotationError)
	}
	// The current token lives the period and its grace (66 minutes): with
	// less than a retry's wait left, the role rotates all the same.
	e.advanceTo(fake, r.Current.expiresAt().Add(-rotationRetryMax/2))
	if r := e.staticRecord("sync"); len(e.fake.Tokens()) == before || r.LastRotationError != "" {
		t.Fatalf("a role whose token is about to end did not rotate: last_rotation_error %q", r.LastRotationError)
	}
}
