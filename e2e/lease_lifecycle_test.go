//go:build e2e

package e2e

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// TestRenewalAfterHalfLifeReachesTheHardEnd renews a lease past half its
// life: Vault grants the increment up to the hard end, which counts from
// the lease's issue.
func TestRenewalAfterHalfLifeReachesTheHardEnd(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "10s", "max_ttl": "16s"})
	issued := time.Now()
	creds := e.issue("r")
	if !creds.Renewable || creds.LeaseDuration != 10 {
		t.Fatalf("lease %ds renewable %v", creds.LeaseDuration, creds.Renewable)
	}
	time.Sleep(time.Until(issued.Add(9 * time.Second))) // past half of the 16s life
	renewed, err := e.vault.Client.Sys().Renew(creds.LeaseID, 20)
	if err != nil {
		t.Fatalf("renewing at 9s of a 16s lease: %v", err)
	}
	if left := 16 - int(time.Since(issued).Seconds()); renewed.LeaseDuration > left+1 || renewed.LeaseDuration < left-2 {
		t.Fatalf("renewal granted %ds, want about %ds, the time left to the hard end", renewed.LeaseDuration, left)
	}
	if e.countOps(fakebi.OpToken) != 1 || e.countOps(fakebi.OpRevoke) != 0 {
		t.Fatalf("renewal called Beyond Identity: %v", e.ops())
	}
}

// TestGatewayErrorMakesOneTokenCall checks that a 502 from a gateway that
// passed the mint on is never retried, and that the error says so.
func TestGatewayErrorMakesOneTokenCall(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: 502, Body: "<html>Bad Gateway</html>", ContentType: "text/html", AfterMint: true})
	_, err := e.vault.Client.Logical().Read("beyondidentity/creds/r")
	var respErr *api.ResponseError
	if !errors.As(err, &respErr) || respErr.StatusCode != http.StatusBadGateway || !strings.Contains(err.Error(), "may have issued a token") {
		t.Fatalf("got %v, want a 502 that says a token may exist", err)
	}
	if calls := e.countOps(fakebi.OpToken); calls != 1 {
		t.Fatalf("%d token calls, want exactly one", calls)
	}
}

// TestRevocationFailedDuringAnOutageIsCompletedByThePlugin fails a lease
// revocation while Beyond Identity answers 503, then lets it recover: the
// plugin revokes the token on its own, and a later revocation of the lease
// succeeds.
func TestRevocationFailedDuringAnOutageIsCompletedByThePlugin(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/config", map[string]any{"request_timeout": "5s", "verify_connection": false})
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	creds := e.issue("r")
	token := accessToken(creds)

	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 503, Body: `{"code":"service_unavailable","message":"maintenance"}`})
	if _, err := e.vault.CLI("lease", "revoke", "-sync", creds.LeaseID); err == nil ||
		!strings.Contains(err.Error(), "keeps retrying the revocation in the background") {
		t.Fatalf("a revocation during the outage: %v", err)
	}
	time.Sleep(3 * time.Second) // the outage lasts on; the plugin keeps its record
	if !e.fake.IsActive(token) {
		t.Fatal("the token died during the outage")
	}
	e.fake.ClearFaults()
	recovered := time.Now()
	eventually(t, 2*time.Minute, "the plugin revoking the token after recovery", func() bool { return !e.fake.IsActive(token) })
	t.Logf("revoked by the plugin %s after Beyond Identity recovered", time.Since(recovered).Round(time.Second))
	if !strings.Contains(e.vault.LogText(), "revoked a token in the background") {
		t.Fatal("the plugin's log does not show the background revocation")
	}
	if _, err := e.vault.CLI("lease", "revoke", "-sync", creds.LeaseID); err != nil {
		t.Fatalf("revoking the lease after the plugin did: %v", err)
	}
	if _, err := e.vault.Client.Sys().Lookup(creds.LeaseID); err == nil {
		t.Fatal("the lease outlived its revocation")
	}
}

// TestLeaseOfAPreviousApplicationIsRevokedWithItsCredentials moves the
// config to another application and revokes a lease issued before.
func TestLeaseOfAPreviousApplicationIsRevokedWithItsCredentials(t *testing.T) {
	e := newEnv(t)
	e.fake.AddApplication(fakebi.Application{TenantID: tenantID, RealmID: realmID, ID: "app-two",
		ClientID: "client-two", ClientSecret: "second-secret-Never-Printed", AllowedScopes: []string{"identities:read"}})
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	old := e.issue("r")
	moved := e.write("beyondidentity/config", map[string]any{"application_id": "app-two", "client_id": "client-two",
		"client_secret": "second-secret-Never-Printed"})
	if moved == nil || len(moved.Warnings) != 1 || !strings.Contains(moved.Warnings[0], "are kept, seal-wrapped") {
		t.Fatalf("moving the config: %v", moved)
	}
	retained := e.read("beyondidentity/config").Data["retained_applications"].([]any)
	if len(retained) != 1 || retained[0].(map[string]any)["client_id"] != clientID {
		t.Fatalf("config lists retained applications %v", retained)
	}
	newer := e.issue("r")
	e.fake.ResetCalls()

	e.vault.MustCLI("lease", "revoke", "-sync", old.LeaseID)
	revokes := e.fake.CallsTo(fakebi.OpRevoke)
	if len(revokes) != 1 || revokes[0].BasicUser != clientID || revokes[0].Status != http.StatusOK || e.fake.IsActive(accessToken(old)) {
		t.Fatalf("want the old lease revoked with its own application's credentials; calls %v", e.ops())
	}
	e.vault.MustCLI("lease", "revoke", "-sync", newer.LeaseID)
	revokes = e.fake.CallsTo(fakebi.OpRevoke)
	if len(revokes) != 2 || revokes[1].BasicUser != "client-two" || e.fake.IsActive(accessToken(newer)) {
		t.Fatalf("want the new lease revoked with the new application's credentials; calls %v", e.ops())
	}
}

// TestDeleteConfigThenDisableRevokesEveryToken runs the teardown in the
// order operators use.
func TestDeleteConfigThenDisableRevokesEveryToken(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	tokens := []string{accessToken(e.issue("r")), accessToken(e.issue("r")), accessToken(e.issue("r"))}
	e.vault.MustCLI("delete", "beyondidentity/config")
	e.vault.MustCLI("secrets", "disable", "beyondidentity")
	for _, token := range tokens {
		if e.fake.IsActive(token) {
			t.Fatal("a token outlived the mount")
		}
	}
	e.assertRevokes(len(tokens))
}

// TestRevocationIsNotStarvedByAFloodOfReads revokes a lease while 200
// credential reads wait on a slow Beyond Identity. A revocation that had to
// wait for a slot the reads hold would fail when its request_timeout ran
// out; it succeeds because revocations have call slots of their own.
func TestRevocationIsNotStarvedByAFloodOfReads(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/config", map[string]any{"request_timeout": "10s", "verify_connection": false})
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	creds := e.issue("r")
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Delay: 3 * time.Second})

	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = e.vault.Client.Logical().Read("beyondidentity/creds/r")
		}()
	}
	defer wg.Wait()
	eventually(t, 30*time.Second, "the reads filling every call slot", func() bool { return len(e.fake.CallsTo(fakebi.OpToken)) >= 10 })

	start := time.Now()
	e.vault.MustCLI("lease", "revoke", "-sync", creds.LeaseID)
	t.Logf("the revocation took %s under 200 concurrent reads (request_timeout 10s)", time.Since(start).Round(time.Millisecond))
	if e.fake.IsActive(accessToken(creds)) {
		t.Fatal("the revocation left the token active")
	}
	if len(e.fake.CallsTo(fakebi.OpToken)) >= 200 {
		t.Fatal("the reads should still be queued behind the slow mints when the revocation is done")
	}
}
