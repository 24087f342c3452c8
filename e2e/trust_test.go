//go:build e2e

package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// hostileValue holds what would change the claims' shape if it were
// spliced into JSON as text: quotes, braces, a backslash and a newline.
const hostileValue = "pay\", \"vault_entity\": \"forged\" } {\\\n\"tier\": \"admin"

// TestNoIdentityValueChangesTheClaimsInARealVault: a userpass entity whose
// metadata, and whose group's name and metadata, hold quotes, braces, a
// backslash and a newline reads creds from a role whose template names
// entity and group placeholders, quoted and not: the token's bi_custom
// holds exactly the template's keys, each value the literal text.
func TestNoIdentityValueChangesTheClaimsInARealVault(t *testing.T) {
	e := newEnv(t)
	e.vault.MustCLI("policy", "write", "bi-who", writeTemp(t, `path "beyondidentity/creds/who" { capabilities = ["read"] }`))
	e.vault.MustCLI("auth", "enable", "userpass")
	e.write("auth/userpass/users/eve", map[string]any{"password": "eve-password", "token_policies": "bi-who"})
	login := e.write("auth/userpass/login/eve", map[string]any{"password": "eve-password"})
	entityID := login.Auth.EntityID
	e.write("identity/entity/id/"+entityID, map[string]any{"metadata": map[string]string{"team": hostileValue}})
	group := e.write("identity/group", map[string]any{"name": hostileValue, "member_entity_ids": []string{entityID},
		"metadata": map[string]string{"label": hostileValue}})
	groupID, _ := group.Data["id"].(string)
	template := `{"vault_entity": {{identity.entity.id}}, "team": {{identity.entity.metadata.team}}, ` +
		`"team_quoted": "{{identity.entity.metadata.team}}", "group": {{identity.groups.ids.` + groupID + `.name}}, ` +
		`"group_quoted": "{{identity.groups.ids.` + groupID + `.name}}", "label": {{identity.groups.ids.` + groupID + `.metadata.label}}, ` +
		`"groups": {{identity.entity.groups.names}}}`
	e.write("beyondidentity/roles/who", map[string]any{"scopes": "identities:read", "ttl": "1h", "claims_template": template,
		"custom_claims": `{"tier":"readonly"}`})

	eve := e.clientWithToken(login.Auth.ClientToken)
	creds, err := eve.Logical().Read("beyondidentity/creds/who")
	if err != nil {
		t.Fatalf("eve's read: %s", redactSecrets(err.Error()))
	}
	token, ok := e.fake.TokenByValue(accessToken(creds))
	if !ok {
		t.Fatal("eve got a token the fake never minted")
	}
	want := map[string]any{"vault_entity": entityID, "team": hostileValue, "team_quoted": hostileValue, "group": hostileValue,
		"group_quoted": hostileValue, "label": hostileValue, "groups": []any{hostileValue}, "tier": "readonly"}
	got, _ := json.Marshal(token.CustomClaims)
	wanted, _ := json.Marshal(want)
	if string(got) != string(wanted) {
		t.Fatalf("bi_custom %s\nwant exactly %s", got, wanted)
	}
}

// TestATokenThatDoesNotShowWhatWasAskedIsRevoked: Beyond Identity answering
// with a token whose scope claim is a list wider than asked, and then with
// one that dropped the custom claims of an attributed role: each read
// fails, and the fake's record shows the token revoked.
func TestATokenThatDoesNotShowWhatWasAskedIsRevoked(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	e.fake.AddApplication(suiteApplication(func(app *fakebi.Application) {
		app.Misreport = fakebi.Misreport{ExtraScopes: []string{"tokens:read"}, ScopeForm: fakebi.ScopeList}
	}, defaultScopes...))
	out, err := e.vault.CLI("read", "beyondidentity/creds/r")
	if err == nil || !strings.Contains(out, "extra: tokens:read") || !strings.Contains(out, "the token was revoked") {
		t.Fatalf("a token whose list-valued scope claim grants more: %v\n%s", err, redactSecrets(out))
	}
	e.assertLastTokenRevoked()

	e.fake.AddApplication(suiteApplication(func(app *fakebi.Application) {
		app.Misreport = fakebi.Misreport{DropCustomClaims: true}
	}, defaultScopes...))
	e.write("beyondidentity/roles/who", map[string]any{"scopes": "identities:read", "ttl": "1h",
		"claims_template": `{"vault_entity": {{identity.entity.id}}}`})
	e.vault.MustCLI("policy", "write", "bi-who", writeTemp(t, `path "beyondidentity/creds/who" { capabilities = ["read"] }`))
	e.vault.MustCLI("auth", "enable", "userpass")
	e.write("auth/userpass/users/alice", map[string]any{"password": "alice-password", "token_policies": "bi-who"})
	login := e.write("auth/userpass/login/alice", map[string]any{"password": "alice-password"})
	_, err = e.clientWithToken(login.Auth.ClientToken).Logical().Read("beyondidentity/creds/who")
	var respErr *api.ResponseError
	if !errors.As(err, &respErr) || respErr.StatusCode != http.StatusBadGateway ||
		!strings.Contains(err.Error(), "no bi_custom") {
		t.Fatalf("a token without its custom claims: %v", err)
	}
	e.assertLastTokenRevoked()
}

// TestRotateRoleStopsAtFiveLiveTokensWhileRevocationsFail: with Beyond
// Identity refusing revocations, rotate-role is refused once the role has 5
// live tokens, naming revocations/, which lists what is pending; once Beyond
// Identity revokes again, the pending revocations drain and rotate-role
// works again.
func TestRotateRoleStopsAtFiveLiveTokensWhileRevocationsFail(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/static-roles/ci", map[string]any{"scopes": "identities:read", "rotation_period": "1h"})
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: http.StatusServiceUnavailable, Body: `{}`})
	for i := range 4 {
		if out, err := e.vault.CLI("write", "-force", "beyondidentity/rotate-role/ci"); err != nil {
			t.Fatalf("rotation %d: %s", i+1, redactSecrets(out))
		}
	}
	out, err := e.vault.CLI("write", "-force", "beyondidentity/rotate-role/ci")
	if err == nil || !strings.Contains(out, "5 live tokens") || !strings.Contains(out, "revocations/") {
		t.Fatalf("the fifth rotate-role: %v\n%s", err, redactSecrets(out))
	}
	pending := e.pendingRevocations()
	if len(pending) != 1 {
		t.Fatalf("revocations/ lists %v, want the token cut from the role", pending)
	}
	if active := len(e.activeTokens()); active != 5 {
		t.Fatalf("%d tokens valid at Beyond Identity, want 5", active)
	}

	e.fake.ClearFaults()
	eventually(t, 90*time.Second, "the pending revocation to drain", func() bool { return len(e.pendingRevocations()) == 0 })
	if active := len(e.activeTokens()); active != 4 {
		t.Fatalf("%d tokens valid once revocations succeed, want the current one and 3 in their grace", active)
	}
	e.vault.MustCLI("write", "-force", "beyondidentity/rotate-role/ci")
	e.vault.MustCLI("delete", "beyondidentity/static-roles/ci")
	if active := len(e.activeTokens()); active != 0 {
		t.Fatalf("%d tokens valid after the role's delete", active)
	}
}

// clientWithToken is the suite's Vault client with another Vault token.
func (e *env) clientWithToken(token string) *api.Client {
	e.t.Helper()
	client, err := e.vault.Client.Clone()
	if err != nil {
		e.t.Fatal(err)
	}
	client.SetToken(token)
	return client
}

// assertLastTokenRevoked checks the fake revoked the last token it minted.
func (e *env) assertLastTokenRevoked() {
	e.t.Helper()
	tokens := e.fake.Tokens()
	if len(tokens) == 0 || tokens[len(tokens)-1].RevokedAt.IsZero() {
		e.t.Fatal("the refused token was not revoked at Beyond Identity")
	}
}
