package beyondidentity

// Static role rotations, on the period or the schedule, through failures.

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// Narrowing a static role's scopes revokes every token that carries a
// scope it no longer has at once, not after the grace, and says so.
func TestNarrowingAStaticRoleRevokesTheBroaderTokensAtOnce(t *testing.T) {
	t.Parallel()
	e, _ := newStaticRole(t)
	e.mustOK(logical.CreateOperation, "static-roles/wide", map[string]any{"scopes": "identities:read,groups:read"})
	e.mustOK(logical.UpdateOperation, "rotate-role/wide", nil)
	broad := e.fake.Tokens()[len(e.fake.Tokens())-2:]
	resp := e.mustOK(logical.UpdateOperation, "static-roles/wide", map[string]any{"scopes": "identities:read"})
	for _, token := range broad {
		if e.fake.IsActive(token.Value) {
			t.Fatalf("token %s, which grants groups:read, is still valid after the role was narrowed", token.ID)
		}
	}
	if !e.fake.IsActive(e.lastToken().Value) {
		t.Fatal("the narrowed role's new token is not valid")
	}
	if !strings.Contains(warningsOf(resp), "revoked now") || !strings.Contains(warningsOf(resp), "groups:read") {
		t.Fatalf("the response does not say the broader tokens were revoked: %s", warningsOf(resp))
	}
}

// The plugin is down through a whole window, and its token would end
// before the next scheduled time: it rotates at once when it comes back,
// and says the window was missed.
func TestAMissedWindowRotatesAtOnceWhenTheTokenWouldDieFirst(t *testing.T) {
	t.Parallel()
	e, fake := newScheduledRole(t, map[string]any{"rotation_schedule": "0 2 * * *", "rotation_window": "1h"})
	first := e.staticRecord("cal").Current.AccessToken.Reveal()
	fake.Set(friday0100.Add(2*time.Hour + 30*time.Minute)) // 03:30: the window closed at 03:00, nothing ran
	e.advance(fake, 0)
	r := e.staticRecord("cal")
	if e.staticRecord("cal").Current.AccessToken.Reveal() == first || !r.LastRotation.Equal(fake.Now()) {
		t.Fatal("the role did not rotate at once after its window passed, with its token ending before the next time")
	}
	if !strings.Contains(r.LastRotationError, "missed its window") || !strings.Contains(r.LastRotationError, "rotated at once") {
		t.Fatalf("last_rotation_error %q does not say the window was missed", r.LastRotationError)
	}
	saturday0200 := friday0100.Add(25 * time.Hour)
	if !r.NextRotation.Equal(saturday0200) {
		t.Fatalf("next rotation %s, want the next scheduled time", r.NextRotation)
	}
}

// The plugin is down through a whole window, and its token outlives the
// next scheduled time: the role waits for it, and says the window was
// missed.
func TestAMissedWindowWaitsForTheNextTime(t *testing.T) {
	t.Parallel()
	e, fake := newScheduledRole(t, map[string]any{"rotation_schedule": "0 2 * * *", "rotation_window": "1h", "grace_period": "24h"})
	first := e.staticRecord("cal").Current.AccessToken.Reveal()
	fake.Set(friday0100.Add(2*time.Hour + 30*time.Minute))
	e.fake.ResetCalls()
	e.advance(fake, 0)
	r := e.staticRecord("cal")
	saturday0200 := friday0100.Add(25 * time.Hour)
	if len(e.fake.CallsTo(fakebi.OpToken)) != 0 || !r.NextRotation.Equal(saturday0200) {
		t.Fatalf("after a missed window: %v, next at %s; want no mint and the next scheduled time", opsOf(e.fake.Calls()), r.NextRotation)
	}
	if !strings.Contains(r.LastRotationError, "missed its window") || !strings.Contains(r.LastRotationError, "next scheduled time") {
		t.Fatalf("last_rotation_error %q", r.LastRotationError)
	}
	if e.staticRecord("cal").Current.AccessToken.Reveal() != first {
		t.Fatal("static-creds changed token without a rotation")
	}
	e.advanceTo(fake, saturday0200)
	if r := e.staticRecord("cal"); !r.LastRotation.Equal(saturday0200) || r.LastRotationError != "" {
		t.Fatalf("at the next time: rotated at %s, error %q", r.LastRotation, r.LastRotationError)
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
	// The current token lives the period and its grace (66 minutes). With
	// 30 s left and the next retry 20 s away, the bound holds; with 10 s
	// left and the next retry 40 s away, the role rotates all the same.
	e.advanceTo(fake, r.Current.expiresAt().Add(-30*time.Second))
	if r := e.staticRecord("sync"); len(e.fake.Tokens()) != before || !strings.Contains(r.LastRotationError, "5 live tokens") {
		t.Fatalf("a role whose token outlives the next retry passed the bound: last_rotation_error %q", r.LastRotationError)
	}
	e.advance(fake, 20*time.Second)
	if r := e.staticRecord("sync"); len(e.fake.Tokens()) == before || r.LastRotationError != "" {
		t.Fatalf("a role whose token ends before the next retry did not rotate: last_rotation_error %q", r.LastRotationError)
	}
}

// No static role rotates more often than its interval allows, whatever
// Beyond Identity returns: for a simulated week, a Beyond Identity that
// caps its tokens at an hour gets one mint per interval. The role keeps
// its due time, and the write's answer and last_rotation_error say why.
func TestAStaticRoleNeverRotatesMoreOftenThanItsInterval(t *testing.T) {
	t.Parallel()
	week := 7 * 24 * time.Hour
	for name, tc := range map[string]struct {
		data     map[string]any
		interval time.Duration
	}{
		"a daily period":                    {map[string]any{"rotation_period": "24h"}, 24 * time.Hour},
		"a daily schedule with a window":    {map[string]any{"rotation_schedule": "0 2 * * *", "rotation_window": "1h"}, 24 * time.Hour},
		"an hourly period with a 30m grace": {map[string]any{"rotation_period": "1h", "grace_period": "30m"}, time.Hour},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newTestBackend(t)
			app := testApp()
			app.CapLifetime = time.Hour
			e.fake.AddApplication(app)
			fake := e.useFakeClock()
			fake.Set(friday0100)
			e.configure()
			tc.data["scopes"] = "identities:read"
			resp := e.mustOK(logical.CreateOperation, "static-roles/capped", tc.data)
			limit := 1 + int(week/tc.interval)
			for end := friday0100.Add(week); fake.Now().Before(end); {
				e.advanceTo(fake, minTime(e.staticRecord("capped").nextDue(), end))
				if mints := len(e.fake.CallsTo(fakebi.OpToken)); mints > limit {
					t.Fatalf("%d mints by %s, in a week that allows %d", mints, fake.Now().Sub(friday0100), limit)
				}
			}
			if mints := len(e.fake.CallsTo(fakebi.OpToken)); mints != limit {
				t.Fatalf("%d mints in a week, want one per interval: %d", mints, limit)
			}
			r := e.staticRecord("capped")
			if due := r.dueAfter(r.LastRotation); !r.NextRotation.Equal(due) {
				t.Fatalf("next rotation %s, want its due time %s", r.NextRotation, due)
			}
			for _, said := range []string{warningsOf(resp), r.LastRotationError} {
				if !strings.Contains(said, "shorter than asked") || !strings.Contains(said, "keeps its due time") {
					t.Fatalf("the short token is not explained: %q", said)
				}
			}
		})
	}
}

// minTime is the earlier of two times.
func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
