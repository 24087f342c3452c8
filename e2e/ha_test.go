//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// haJournalMinAge is the journal's minimum age in the HA test's
// plugin build: short enough that the new leader's recovery, which Vault
// runs every minute, acts within the test.
const haJournalMinAge = "20s"

// haCluster is the HA test's world: three Raft nodes with the plugin
// mounted and configured against the fake.
type haCluster struct {
	t       *testing.T
	cluster *vaulttest.Cluster
	fake    *fakebi.Server
	leader  *vaulttest.Server
}

// newHACluster starts the cluster with a plugin built to recover the journal after
// haJournalMinAge, registers it once (the catalog is replicated; each
// node has the same binary in its own plugin directory), mounts and
// configures it, and defines role r. The fake issues opaque tokens, so
// that every credential makes an introspection after its token is minted
// and covered by a journal entry: a delay there holds requests in the
// window a failover must clean up after.
func newHACluster(t *testing.T) *haCluster {
	t.Helper()
	bin := filepath.Join(t.TempDir(), pluginName)
	if err := buildPlugin(bin, modulePath+"/internal/journal.minAgeOverride="+haJournalMinAge); err != nil {
		t.Fatalf("building the HA test's plugin: %v", err)
	}
	fake := newFake(defaultScopes...)
	fake.AddApplication(suiteApplication(func(app *fakebi.Application) { app.TokenFormat = fakebi.Referential }, defaultScopes...))
	url := newLoopbackServer(t, fake)

	opts := vaultOptions(vaulttest.Raft)
	opts.Plugin.Bin = bin
	// The test reads the plugin's storage at the failover, to know which
	// tokens the new leader's recovery owes a revocation.
	opts.RawStorage = true
	h := &haCluster{t: t, fake: fake}
	dir := t.TempDir()
	t.Cleanup(func() {
		if h.cluster != nil {
			checkVaultLog(t, h.cluster.LogText(), []string{clientSecret}, fake.Tokens())
		}
	})
	h.cluster = vaulttest.StartCluster(t, dir, 3, opts)
	h.leader = h.cluster.Active(readyTimeout)
	h.leader.RegisterAndMount("beyondidentity")
	h.write("beyondidentity/config", map[string]any{
		"tenant_id": tenantID, "realm_id": realmID, "application_id": applicationID,
		"client_id": clientID, "client_secret": clientSecret, "auth_url": url,
	})
	// Renewable: a lease whose ttl is its max_ttl has nothing to renew.
	h.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "30m", "max_ttl": "1h"})
	fake.ResetCalls()
	return h
}

func (h *haCluster) write(path string, data map[string]any) *api.Secret {
	h.t.Helper()
	secret, err := h.leader.Client.Logical().Write(path, data)
	if err != nil {
		h.t.Fatalf("write %s: %s", path, redactSecrets(err.Error()))
	}
	return secret
}

// issueThrough reads creds through node and checks the fake minted the
// token and holds it active.
func (h *haCluster) issueThrough(node *vaulttest.Server) *api.Secret {
	h.t.Helper()
	secret, err := node.Client.Logical().Read("beyondidentity/creds/r")
	if err != nil || secret == nil || secret.LeaseID == "" {
		h.t.Fatalf("creds through %s: %v", node.Name, redactErr(err))
	}
	if !h.fake.IsActive(accessToken(secret)) {
		h.t.Fatalf("creds through %s returned a token the fake does not hold active", node.Name)
	}
	return secret
}

// storedText is every value the mount keeps, as the active node's sys/raw
// returns it: the test looks in it for tokens, never prints it.
func (h *haCluster) storedText(node *vaulttest.Server) string {
	h.t.Helper()
	mounts, err := node.Client.Sys().ListMounts()
	if err != nil || mounts["beyondidentity/"] == nil {
		h.t.Fatalf("listing mounts on %s: %v", node.Name, err)
	}
	root := "sys/raw/logical/" + mounts["beyondidentity/"].UUID + "/"
	var text strings.Builder
	var walk func(prefix string)
	walk = func(prefix string) {
		list, err := node.Client.Logical().List(root + prefix)
		if err != nil {
			h.t.Fatalf("listing the mount's storage: %v", err)
		}
		if list == nil {
			return
		}
		keys, _ := list.Data["keys"].([]any)
		for _, k := range keys {
			key, _ := k.(string)
			if strings.HasSuffix(key, "/") {
				walk(prefix + key)
				continue
			}
			// The plugin stores nothing compressed. Left to guess, sys/raw
			// takes a value whose first byte is a compression canary (a
			// salt that starts with '4', lz4's) for compressed, and fails.
			entry, err := node.Client.Logical().ReadWithData(root+prefix+key, map[string][]string{"compressed": {"false"}})
			if err != nil || entry == nil {
				h.t.Fatalf("reading the mount's %s: %v", prefix+key, err)
			}
			value, _ := entry.Data["value"].(string)
			text.WriteString(prefix + key + " " + value + "\n")
		}
	}
	walk("")
	return text.String()
}

func redactErr(err error) string {
	if err == nil {
		return "no error"
	}
	return redactSecrets(err.Error())
}
