//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// attributionTemplate attributes each token to the Vault entity that reads
// it, as the README shows.
const attributionTemplate = `{"vault_entity": {{identity.entity.id}}, "vault_user": {{identity.entity.name}}, ` +
	`"team": {{identity.entity.metadata.team}}, "groups": {{identity.entity.groups.names}}}`

// TestATokenCarriesTheVaultEntityThatAskedForIt: a userpass user whose
// entity has team=payments and belongs to a group reads creds, and the
// token's bi_custom says who; a root token's read is refused, naming the
// placeholder, and mints nothing.
func TestATokenCarriesTheVaultEntityThatAskedForIt(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/roles/who", map[string]any{"scopes": "identities:read", "ttl": "1h", "claims_template": attributionTemplate})
	e.vault.MustCLI("policy", "write", "bi-who", writeTemp(t, `path "beyondidentity/creds/who" { capabilities = ["read"] }`))
	e.vault.MustCLI("auth", "enable", "userpass")
	e.write("auth/userpass/users/alice", map[string]any{"password": "alice-password", "token_policies": "bi-who"})
	login := e.write("auth/userpass/login/alice", map[string]any{"password": "alice-password"})
	entityID := login.Auth.EntityID
	e.write("identity/entity/id/"+entityID, map[string]any{"metadata": "team=payments"})
	e.write("identity/group", map[string]any{"name": "payments-eng", "member_entity_ids": entityID})
	entityName, _ := e.read("identity/entity/id/" + entityID).Data["name"].(string)

	alice, err := e.vault.Client.Clone()
	if err != nil {
		t.Fatal(err)
	}
	alice.SetToken(login.Auth.ClientToken)
	creds, err := alice.Logical().Read("beyondidentity/creds/who")
	if err != nil {
		t.Fatalf("alice's read: %s", redactSecrets(err.Error()))
	}
	token, ok := e.fake.TokenByValue(accessToken(creds))
	if !ok {
		t.Fatal("alice got a token the fake never minted")
	}
	claims := token.CustomClaims
	if claims["vault_entity"] != entityID || claims["vault_user"] != entityName || entityName == "" || claims["team"] != "payments" {
		t.Fatalf("bi_custom %v, want entity %s (%s) of team payments", claims, entityID, entityName)
	}
	if groups, _ := claims["groups"].([]any); len(groups) != 1 || groups[0] != "payments-eng" {
		t.Fatalf("bi_custom groups %v, want [payments-eng]", claims["groups"])
	}

	mints := e.countOps(fakebi.OpToken)
	out, err := e.vault.CLI("read", "beyondidentity/creds/who")
	if err == nil || !strings.Contains(out, "{{identity.entity.id}}") || !strings.Contains(out, "has no entity") {
		t.Fatalf("a root token's read: err %v, output %q", err, redactSecrets(out))
	}
	if e.countOps(fakebi.OpToken) != mints {
		t.Fatal("a read that could not be attributed minted a token")
	}
}

// TestAgentWithAppRoleRendersAnAttributedToken: Vault Agent logs in with
// AppRole, whose login gives it an entity, and renders a token that names
// that entity.
func TestAgentWithAppRoleRendersAnAttributedToken(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/roles/agent", map[string]any{"scopes": "identities:read", "ttl": "1h",
		"claims_template": `{"vault_entity": {{identity.entity.id}}, "vault_user": {{identity.entity.name}}}`})
	e.vault.MustCLI("policy", "write", "bi-agent", writeTemp(t, `path "beyondidentity/creds/agent" { capabilities = ["read"] }`))
	e.vault.MustCLI("auth", "enable", "approle")
	e.write("auth/approle/role/agent", map[string]any{"token_policies": "bi-agent", "token_ttl": "1h"})
	roleID, _ := e.read("auth/approle/role/agent/role-id").Data["role_id"].(string)
	secretID, _ := e.write("auth/approle/role/agent/secret-id", nil).Data["secret_id"].(string)
	dir := t.TempDir()
	roleFile, secretFile := filepath.Join(dir, "role-id"), filepath.Join(dir, "secret-id")
	for file, value := range map[string]string{roleFile: roleID, secretFile: secretID} {
		if err := os.WriteFile(file, []byte(value), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rendered := startAgentWith(t, e.vault, fmt.Sprintf(`
  method "approle" {
    config = {
      role_id_file_path                   = %q
      secret_id_file_path                 = %q
      remove_secret_id_file_after_reading = false
    }
  }`, roleFile, secretFile), `{{ with secret "beyondidentity/creds/agent" }}{{ .Data.access_token }}{{ end }}`)
	eventually(t, 30*time.Second, "the Agent's first render", func() bool { return readRendered(rendered) != "" })
	token, ok := e.fake.TokenByValue(readRendered(rendered))
	if !ok {
		t.Fatal("the Agent rendered something the fake never minted")
	}
	entityID, _ := token.CustomClaims["vault_entity"].(string)
	if entityID == "" || token.CustomClaims["vault_user"] == "" {
		t.Fatalf("the Agent's token is not attributed: bi_custom %v", token.CustomClaims)
	}
	aliases, _ := e.read("identity/entity/id/" + entityID).Data["aliases"].([]any)
	if len(aliases) != 1 || aliases[0].(map[string]any)["mount_type"] != "approle" {
		t.Fatalf("the token names entity %s, whose aliases are %v: want the AppRole login's", entityID, aliases)
	}
}
