//go:build e2e

package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// TestAScheduledStaticRoleRotatesOnTheMinute: with rotation_schedule
// "* * * * *", the role rotates at two consecutive minute boundaries, each
// within 5 s of its time, with no request arriving meanwhile; static-creds
// then reports the schedule and a ttl counting down to the next boundary.
func TestAScheduledStaticRoleRotatesOnTheMinute(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/static-roles/minutely", map[string]any{"scopes": "identities:read", "rotation_schedule": "* * * * *"})
	e.fake.ResetCalls()

	// No request from here on: the fake's record of token calls tells when
	// each rotation ran.
	var mints []fakebi.Call
	eventually(t, 150*time.Second, "two scheduled rotations", func() bool {
		mints = e.fake.CallsTo(fakebi.OpToken)
		return len(mints) >= 2
	})
	for i, mint := range mints[:2] {
		boundary := mint.At.Truncate(time.Minute)
		late := mint.At.Sub(boundary)
		t.Logf("rotation %d at %s, %s after its time", i+1, mint.At.Format(time.RFC3339Nano), late.Round(time.Millisecond))
		if late > 5*time.Second {
			t.Errorf("rotation %d came %s after its time %s", i+1, late, boundary.Format(time.RFC3339))
		}
		if i == 1 && !boundary.Equal(mints[0].At.Truncate(time.Minute).Add(time.Minute)) {
			t.Errorf("the rotations came at %s and %s, not at consecutive minutes", mints[0].At, mint.At)
		}
	}

	first := e.read("beyondidentity/static-creds/minutely")
	time.Sleep(2 * time.Second)
	second := e.read("beyondidentity/static-creds/minutely")
	ttl := func(data map[string]any) int64 {
		n, _ := data["ttl"].(json.Number).Int64()
		return n
	}
	// rotation_period is there for Vault Agent and consul-template: the
	// minute from the current rotation to the next, less how late it ran.
	if period, _ := first.Data["rotation_period"].(json.Number).Int64(); first.Data["rotation_schedule"] != "* * * * *" ||
		period < 55 || period > 60 {
		t.Fatalf("static-creds of a scheduled role reads %v and rotation_period %d", first.Data["rotation_schedule"], period)
	}
	if a, b := ttl(first.Data), ttl(second.Data); a < 0 || a > 60 || (accessToken(first) == accessToken(second) && b >= a) {
		t.Fatalf("ttl %d then %d two seconds later: want the seconds to the next minute, counting down", a, b)
	}
}
