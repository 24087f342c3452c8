//go:build e2e && linux

package e2e

import (
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// TestContainerizedPlugin runs the plugin's image, as docs/release.md
// loads, registers and upgrades it, in a real Vault run as a non-root user,
// through a private Docker engine with gVisor's runsc, against the fake
// Beyond Identity reached over HTTPS inside the engine's network namespace.
// The engine is stopped at the end and must leave nothing behind.
func TestContainerizedPlugin(t *testing.T) {
	requireContainerTools(t)
	w := newContainerWorld(t)

	// The default runtime (runsc), registered by the image's ID.
	w.runDocs("### One image on every node")
	w.runDocs("### Register and mount")
	first := w.runningPluginAfterUse("")
	if first.HostConfig.Runtime != "runsc" || first.Image != w.imageID(imageVersionA) {
		t.Fatalf("the plugin runs image %s under %q; want %s under runsc", first.Image, first.HostConfig.Runtime, w.imageID(imageVersionA))
	}
	if user := first.Config.User; user == "" || user == "0" || strings.HasPrefix(user, "0:") || strings.HasPrefix(user, "root") {
		t.Fatalf("the plugin's container runs as %q: want the image's non-root user", user)
	}
	// Vault adds its own group to the container: proof it runs as vaultUser.
	if groups := first.HostConfig.GroupAdd; len(groups) != 1 || groups[0] != strconv.Itoa(int(vaultUser.Gid)) {
		t.Fatalf("the plugin's container has the added groups %v: want Vault's own, %d", groups, vaultUser.Gid)
	}

	// One lease's whole life, a static role, through the container.
	w.renewAndRevokeOne()
	static := w.staticToken()

	// A runtime of its own, with limits, still serving.
	w.runDocs("### A runtime of its own")
	limited := w.runningPluginAfterUse(first.ID)
	if limited.HostConfig.Memory != 268435456 || limited.HostConfig.NanoCpus != 1000000000 || limited.HostConfig.Runtime != "runsc" {
		t.Fatalf("under its own runtime the container has memory %d, cpu %d, runtime %q; want the runtime's limits under runsc",
			limited.HostConfig.Memory, limited.HostConfig.NanoCpus, limited.HostConfig.Runtime)
	}
	w.renewAndRevokeOne()

	// Restart: the container is killed under live leases; Vault starts
	// the plugin again and the leases renew and revoke.
	before := []*api.Secret{w.issue("scim"), w.issue("scim")}
	w.engine.MustDocker("kill", limited.ID)
	w.renew(before[0])
	restarted := w.runningPlugin(limited.ID)
	w.renew(before[1])
	w.revoke(before[0])

	// Upgrade from A to B with live leases: B renews and revokes what A
	// issued.
	fromA := w.issue("scim")
	if out := w.runDocs("### Upgrade the image"); !strings.HasSuffix(strings.TrimSpace(out), imageVersionB) {
		t.Fatalf("after the upgrade the mount runs %q, want %s", lastLine(out), imageVersionB)
	}
	upgraded := w.runningPlugin(restarted.ID)
	if upgraded.Image != w.imageID(imageVersionB) {
		t.Fatalf("after the upgrade the plugin runs image %s, want %s's %s", upgraded.Image, imageVersionB, w.imageID(imageVersionB))
	}
	w.renew(fromA)
	w.renew(before[1])
	w.revoke(fromA)

	// The README's teardown: deleting the static role revokes its token,
	// then disabling the mount revokes every lease's token upstream, one
	// from A among them.
	w.vault.MustCLI("delete", "beyondidentity/static-roles/sync")
	if !w.revokedUpstream(static) {
		t.Error("deleting the static role did not revoke its token upstream")
	}
	live := []string{accessToken(before[1]), accessToken(w.issue("scim"))}
	w.vault.MustCLI("secrets", "disable", "beyondidentity")
	for i, token := range live {
		if !w.revokedUpstream(token) {
			t.Errorf("token %d of %d still live was not revoked upstream by vault secrets disable", i+1, len(live))
		}
	}
	for _, token := range w.fake.Tokens() {
		if token.RevokedAt.IsZero() {
			t.Errorf("token %s, minted through the container, was never revoked", token.ID)
		}
	}
}

// runningPluginAfterUse makes Vault start the plugin, with a list of the
// mount's roles, and returns its container, which must not be the one
// whose ID is not.
func (w *containerWorld) runningPluginAfterUse(not string) pluginContainer {
	w.t.Helper()
	if _, err := w.vault.Client.Logical().List("beyondidentity/roles/"); err != nil {
		w.t.Fatalf("the containerized plugin does not answer: %s", redactErr(err))
	}
	return w.runningPlugin(not)
}

// renewAndRevokeOne configures the mount if it is not yet, then reads a
// credential, renews it and revokes it.
func (w *containerWorld) renewAndRevokeOne() {
	w.t.Helper()
	w.configure()
	lease := w.issue("scim")
	w.renew(lease)
	w.revoke(lease)
}

// configure writes the config (verified: the fake sees a mint and a
// revoke through the container), a role and a static role, once.
func (w *containerWorld) configure() {
	w.t.Helper()
	if config, _ := w.vault.Client.Logical().Read("beyondidentity/config"); config != nil {
		return
	}
	mintsBefore := len(w.fake.Tokens())
	w.write("beyondidentity/config", map[string]any{
		"tenant_id": tenantID, "realm_id": realmID, "application_id": applicationID,
		"client_id": clientID, "client_secret": clientSecret, "auth_url": w.authURL, "ca_cert": w.caPEM,
	})
	tokens := w.fake.Tokens()
	if len(tokens) != mintsBefore+1 || tokens[len(tokens)-1].RevokedAt.IsZero() {
		w.t.Fatalf("the verified config write made %d mints; want one, revoked at once", len(tokens)-mintsBefore)
	}
	w.write("beyondidentity/roles/scim", map[string]any{"scopes": "scim:users:read", "ttl": "1h", "max_ttl": "2h"})
	w.write("beyondidentity/static-roles/sync", map[string]any{"scopes": "identities:read", "rotation_period": "24h"})
}

// staticToken reads the static role's token and checks the fake minted
// it and holds it live.
func (w *containerWorld) staticToken() string {
	w.t.Helper()
	creds, err := w.vault.Client.Logical().Read("beyondidentity/static-creds/sync")
	if err != nil || creds == nil {
		w.t.Fatalf("static-creds/sync: %s", redactErr(err))
	}
	token := accessToken(creds)
	if !w.fake.IsActive(token) {
		w.t.Fatal("static-creds/sync returned a token the fake does not hold live")
	}
	return token
}

func lastLine(text string) string {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	return lines[len(lines)-1]
}
