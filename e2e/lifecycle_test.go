//go:build e2e

package e2e

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

func TestPluginRegisteredWithVersion(t *testing.T) {
	e := newEnv(t)
	var info struct{ Name, Version, SHA256 string }
	out := e.vault.MustCLI("plugin", "info", "-format=json", "-version="+pluginVersion, "secret", pluginName)
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("plugin info: %v: %s", err, out)
	}
	if info.Name != pluginName || info.Version != pluginVersion || info.SHA256 == "" {
		t.Fatalf("plugin info = %+v", info)
	}
	mounts, err := e.vault.Client.Sys().ListMounts()
	if err != nil {
		t.Fatal(err)
	}
	mount := mounts["beyondidentity/"]
	if mount == nil || mount.RunningVersion != pluginVersion || mount.Config.MaxLeaseTTL != 7776000 {
		t.Fatalf("mount = %+v", mount)
	}
	help := e.vault.MustCLI("path-help", "beyondidentity/creds/any")
	if !strings.Contains(help, "Issue a Beyond Identity access token as a Vault lease.") {
		t.Fatalf("path-help of creds:\n%s", help)
	}
}

func TestConfigRolesAndCredsOverTheHTTPAPI(t *testing.T) {
	e := newEnv(t)

	config := e.read("beyondidentity/config")
	if _, present := config.Data["client_secret"]; present || config.Data["client_id"] != clientID ||
		config.Data["token_url"] != e.url+"/v1/tenants/tenant-e2e/realms/realm-e2e/applications/app-e2e/token" {
		t.Fatalf("config read = %v", config.Data)
	}
	e.write("beyondidentity/roles/sync", map[string]any{"scopes": []string{"identities:read", "groups:read"}, "ttl": "1h", "max_ttl": "2h"})
	e.write("beyondidentity/roles/other", map[string]any{"scopes": "scim:users:read"})
	list, err := e.vault.Client.Logical().List("beyondidentity/roles")
	if err != nil || !reflect.DeepEqual(list.Data["keys"], []any{"other", "sync"}) {
		t.Fatalf("roles list = %v, %v", list, err)
	}
	role := e.read("beyondidentity/roles/sync")
	if role.Data["ttl"] != json.Number("3600") || role.Data["max_ttl"] != json.Number("7200") {
		t.Fatalf("role = %v", role.Data)
	}

	creds := e.issue("sync")
	if ops := e.ops(); !reflect.DeepEqual(ops, []string{"token"}) {
		t.Fatalf("issuing made calls %v, want exactly one token call", ops)
	}
	mint := e.fake.CallsTo(fakebi.OpToken)[0]
	if !mint.BasicAuth || mint.BasicUser != clientID || mint.BasicPassword != clientSecret ||
		mint.Form.Get("scope") != "groups:read identities:read" || mint.Form.Get("expiration_time") != "7200" {
		t.Fatalf("mint request: basic=%v user=%q form scope=%q expiration_time=%q", mint.BasicAuth, mint.BasicUser,
			mint.Form.Get("scope"), mint.Form.Get("expiration_time"))
	}
	if creds.LeaseDuration != 3600 || !creds.Renewable || creds.Data["token_type"] != "Bearer" || creds.Data["role"] != "sync" {
		t.Fatalf("creds lease %ds renewable %v data %v", creds.LeaseDuration, creds.Renewable, creds.Data["token_type"])
	}

	lookup, err := e.vault.Client.Sys().Lookup(creds.LeaseID)
	if err != nil || lookup.Data["id"] != creds.LeaseID {
		t.Fatalf("lease lookup: %v %v", lookup, err)
	}
	renewed, err := e.vault.Client.Sys().Renew(creds.LeaseID, 10*3600)
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	if renewed.LeaseDuration > 7200 || renewed.LeaseDuration < 7190 {
		t.Fatalf("renewal by 10h gave %ds, want it capped at the token's end (2h)", renewed.LeaseDuration)
	}
	if e.countOps(fakebi.OpToken) != 1 || e.countOps(fakebi.OpRevoke) != 0 {
		t.Fatalf("renewal called Beyond Identity: %v", e.ops())
	}

	if err := e.vault.Client.Sys().Revoke(creds.LeaseID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	eventually(t, 30*time.Second, "the upstream revocation", func() bool { return !e.fake.IsActive(accessToken(creds)) })
	if ops := e.ops(); !reflect.DeepEqual(ops, []string{"token", "revoke"}) {
		t.Fatalf("calls %v, want one token call and one revoke", ops)
	}
	if _, err := e.vault.Client.Sys().Lookup(creds.LeaseID); err == nil {
		t.Fatal("the lease outlived its revocation")
	}
}

func TestRevokePrefixRevokesEveryToken(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/roles/batch", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	e.write("beyondidentity/roles/keep", map[string]any{"scopes": "groups:read", "ttl": "1h"})
	var batch []string
	for i := 0; i < 3; i++ {
		batch = append(batch, accessToken(e.issue("batch")))
	}
	kept := accessToken(e.issue("keep"))

	e.vault.MustCLI("lease", "revoke", "-prefix", "beyondidentity/creds/batch")
	eventually(t, 30*time.Second, "every batch token revoked upstream", func() bool {
		for _, token := range batch {
			if e.fake.IsActive(token) {
				return false
			}
		}
		return true
	})
	e.assertRevokes(3)
	if !e.fake.IsActive(kept) {
		t.Fatal("the other role's token was revoked")
	}
}

func TestSecretsDisableRevokesOutstandingTokens(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	tokens := []string{accessToken(e.issue("r")), accessToken(e.issue("r"))}
	e.vault.MustCLI("secrets", "disable", "beyondidentity")
	for _, token := range tokens {
		if e.fake.IsActive(token) {
			t.Fatal("a token outlived the mount")
		}
	}
	e.assertRevokes(2)
}

func TestRevokingTheParentTokenRevokesItsCredentials(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	e.vault.MustCLI("policy", "write", "bi-reader", writeTemp(t, `path "beyondidentity/creds/r" { capabilities = ["read"] }`))
	child, err := e.vault.Client.Auth().Token().Create(&apiTokenCreateRequest{Policies: []string{"bi-reader"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	childToken := child.Auth.ClientToken
	out, err := e.vault.CLIAs(childToken, "read", "-field=access_token", "beyondidentity/creds/r")
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(out)
	if !e.fake.IsActive(token) {
		t.Fatal("the child's credential is not a live token")
	}
	if _, err := e.vault.CLIAs(childToken, "read", "beyondidentity/config"); err == nil {
		t.Fatal("the policy should not allow reading the config")
	}

	e.vault.MustCLI("token", "revoke", childToken)
	eventually(t, 30*time.Second, "the child's credential revoked upstream", func() bool { return !e.fake.IsActive(token) })
	e.assertRevokes(1)
}

func TestPluginReloadKeepsLeasesRevocable(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	creds := e.issue("r")
	e.vault.MustCLI("plugin", "reload", "-type=secret", "-plugin="+pluginName)
	// The reloaded plugin serves reads and revokes what its predecessor issued.
	if config := e.read("beyondidentity/config"); config.Data["client_id"] != clientID {
		t.Fatalf("config after reload = %v", config.Data)
	}
	if err := e.vault.Client.Sys().Revoke(creds.LeaseID); err != nil {
		t.Fatalf("revoke after reload: %v", err)
	}
	eventually(t, 30*time.Second, "the upstream revocation", func() bool { return !e.fake.IsActive(accessToken(creds)) })
	e.assertRevokes(1)
}

func TestRestartKeepsLeasesConfigAndRoles(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h", "description": "survives"})
	creds := e.issue("r")
	e.vault.Restart()

	if config := e.read("beyondidentity/config"); config == nil || config.Data["client_id"] != clientID {
		t.Fatalf("config after restart = %v", config)
	}
	if role := e.read("beyondidentity/roles/r"); role == nil || role.Data["description"] != "survives" {
		t.Fatalf("role after restart = %v", role)
	}
	if _, err := e.vault.Client.Sys().Lookup(creds.LeaseID); err != nil {
		t.Fatalf("lease lookup after restart: %v", err)
	}
	if err := e.vault.Client.Sys().Revoke(creds.LeaseID); err != nil {
		t.Fatalf("revoke after restart: %v", err)
	}
	eventually(t, 30*time.Second, "the upstream revocation", func() bool { return !e.fake.IsActive(accessToken(creds)) })
	// A new credential after the restart works too.
	e.issue("r")
	e.assertRevokes(1)
	if e.countOps(fakebi.OpToken) != 2 {
		t.Fatalf("calls %v", e.ops())
	}
}

func TestLeaseExpiryRevokesUpstream(t *testing.T) {
	e := newEnv(t)
	e.tokensOutliveTheirLeases()
	e.write("beyondidentity/roles/short", map[string]any{"scopes": "identities:read", "ttl": "3s"})
	creds := e.issue("short")
	if creds.Renewable || creds.LeaseDuration != 3 {
		t.Fatalf("lease %ds renewable %v", creds.LeaseDuration, creds.Renewable)
	}
	if e.fake.CallsTo(fakebi.OpToken)[0].Form.Get("expiration_time") != "3" {
		t.Fatal("the token was not minted for the lease's life")
	}
	eventually(t, 30*time.Second, "the expired lease revoked upstream", func() bool { return e.countOps(fakebi.OpRevoke) == 1 })
	e.assertRevokes(1)
	if token, _ := e.fake.TokenByValue(accessToken(creds)); e.fake.IsActive(token.Value) || token.RevokedAt.IsZero() {
		t.Fatal("the token, which would have lived another hour, was not revoked when its lease expired")
	}
}

// TestTuneCommandFromTheWarningLiftsTheCeiling mounts the plugin under
// Vault's default 768h ceiling, runs the exact command the role warning
// gives, and checks that credentials then get their full 90 days.
func TestTuneCommandFromTheWarningLiftsTheCeiling(t *testing.T) {
	e := newEnv(t)
	e.vault.MustCLI("secrets", "tune", "-max-lease-ttl=768h", "beyondidentity/")
	role := e.write("beyondidentity/roles/long", map[string]any{"scopes": "identities:read"})
	if role == nil || len(role.Warnings) != 1 {
		t.Fatalf("want one warning, got %v", role)
	}
	command := role.Warnings[0][strings.Index(role.Warnings[0], "vault secrets tune"):]
	if command != "vault secrets tune -max-lease-ttl=2160h beyondidentity/" {
		t.Fatalf("the warning's command is %q", command)
	}
	capped := e.issue("long")
	if capped.LeaseDuration != 768*3600 || len(capped.Warnings) != 1 {
		t.Fatalf("under the ceiling: lease %ds, warnings %v", capped.LeaseDuration, capped.Warnings)
	}
	e.vault.MustCLI(strings.Fields(command)[1:]...)
	// The plugin asks Vault for the ceiling at most once a second.
	var full *api.Secret
	eventually(t, 10*time.Second, "credentials of the full 90 days after the tune", func() bool {
		full = e.issue("long")
		return full.LeaseDuration == 2160*3600
	})
	if len(full.Warnings) != 0 {
		t.Fatalf("after the tune: warnings %v", full.Warnings)
	}
	mints := e.fake.CallsTo(fakebi.OpToken)
	if got := mints[len(mints)-1].Form.Get("expiration_time"); got != "7776000" {
		t.Fatalf("the token after the tune was minted for %s seconds", got)
	}
}

// TestCustomClaimsFromTheCLIReachBeyondIdentity writes custom_claims as the
// vault CLI sends them, a JSON string, and checks what the mint carried.
func TestCustomClaimsFromTheCLIReachBeyondIdentity(t *testing.T) {
	e := newEnv(t)
	e.vault.MustCLI("write", "beyondidentity/roles/claims", "scopes=identities:read", "ttl=1h", `custom_claims={"team":"sre","ticket":42}`)
	role := e.read("beyondidentity/roles/claims")
	if claims, _ := json.Marshal(role.Data["custom_claims"]); string(claims) != `{"team":"sre","ticket":42}` {
		t.Fatalf("the role holds custom_claims %s", claims)
	}
	creds := e.issue("claims")
	if sent := e.fake.CallsTo(fakebi.OpToken)[0].Form.Get("custom_claims"); sent != `{"team":"sre","ticket":42}` {
		t.Fatalf("the mint sent custom_claims %q", sent)
	}
	token, _ := e.fake.TokenByValue(accessToken(creds))
	if carried, _ := json.Marshal(token.CustomClaims); string(carried) != `{"team":"sre","ticket":42}` {
		t.Fatalf("the token carries bi_custom %s", carried)
	}
}
