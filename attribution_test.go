package beyondidentity

// Attribution: a role's claims_template says in each token who in Vault
// asked for it.

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

const attributionTemplate = `{"vault_entity": {{identity.entity.id}}, "vault_user": {{identity.entity.name}}, ` +
	`"team": {{identity.entity.metadata.team}}, "groups": {{identity.entity.groups.names}}}`

// newAttributedRole returns a configured backend whose Vault knows entity
// "alice" of team payments, member of group "sre", and role "who" with the
// attribution template over custom claims.
func newAttributedRole(t *testing.T) *testEnv {
	t.Helper()
	e := newTestBackend(t)
	e.sys.EntityVal = &logical.Entity{ID: "entity-alice", Name: "alice", Metadata: map[string]string{"team": "payments"}}
	e.sys.GroupsVal = []*logical.Group{{ID: "group-sre", Name: "sre"}}
	e.configure()
	e.writeRole("who", map[string]any{"scopes": "identities:read", "ttl": "1h",
		"custom_claims": `{"purpose":"audit","team":"overridden"}`, "claims_template": attributionTemplate})
	return e
}

// readAs reads creds/NAME with a Vault token of entityID ("" for a root
// token).
func (e *testEnv) readAs(entityID, name string) (*logical.Response, error) {
	return e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.ReadOperation, Path: "creds/" + name, Storage: e.storage,
		MountPoint: "beyondidentity/", EntityID: entityID,
	})
}

func TestATokenSaysWhoInVaultAskedForIt(t *testing.T) {
	t.Parallel()
	e := newAttributedRole(t)
	resp, err := e.readAs("entity-alice", "who")
	if err != nil || resp.IsError() {
		t.Fatalf("%s %v", errorText(resp), err)
	}
	claims := e.lastToken().CustomClaims
	want := map[string]string{"vault_entity": "entity-alice", "vault_user": "alice", "team": "payments", "purpose": "audit"}
	for key, value := range want {
		if claims[key] != value {
			t.Errorf("bi_custom[%s] = %v, want %q (rendered claims win over custom_claims)", key, claims[key], value)
		}
	}
	if groups, _ := claims["groups"].([]any); len(groups) != 1 || groups[0] != "sre" {
		t.Errorf("bi_custom[groups] = %v, want [sre]", claims["groups"])
	}
	if lease, err := leaseFromInternal(resp.Secret.InternalData); err != nil || lease.EntityID != "entity-alice" {
		t.Errorf("the lease records entity %q (%v)", lease.EntityID, err)
	}
	if !strings.Contains(e.logs.String(), `entity_id=entity-alice`) {
		t.Error("the debug log line of the credential does not name the entity")
	}
	for _, family := range e.scrape() {
		for _, metric := range family.GetMetric() {
			for _, label := range metric.GetLabel() {
				if strings.Contains(label.GetValue(), "entity-alice") {
					t.Errorf("metric %s carries the entity id in a label", family.GetName())
				}
			}
		}
	}
}

// A role that asks for attribution never mints an anonymous token: a root
// token (no entity), or an entity without a value the template names, is
// a 400 naming the placeholder, and nothing is minted.
func TestARoleThatAttributesNeverMintsAnAnonymousToken(t *testing.T) {
	t.Parallel()
	e := newAttributedRole(t)
	status, message := statusOf(e.readAs("", "who"))
	if status != http.StatusBadRequest || !strings.Contains(message, "{{identity.entity.id}}") || !strings.Contains(message, "has no entity") {
		t.Fatalf("a root token's read: %d %q", status, message)
	}
	e.sys.EntityVal = &logical.Entity{ID: "entity-bob", Name: "bob"} // no team
	status, message = statusOf(e.readAs("entity-bob", "who"))
	if status != http.StatusBadRequest || !strings.Contains(message, "{{identity.entity.metadata.team}}") || !strings.Contains(message, `"bob"`) {
		t.Fatalf("an entity without a team: %d %q", status, message)
	}
	if calls := e.fake.CallsTo(fakebi.OpToken); len(calls) != 0 {
		t.Fatalf("%d tokens minted for reads that could not be attributed", len(calls))
	}
}

func TestAClaimsTemplateIsCheckedOnWrite(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	for name, tc := range map[string]struct{ template, fragment string }{
		"unknown placeholder": {`{"user": {{identity.entity.nmae}}}`, "{{identity.entity.nmae}}"},
		"unbalanced":          {`{"user": {{identity.entity.name}`, "does not render"},
		"not an object":       {`{{identity.entity.name}}`, "must render a JSON object"},
		"quoted placeholder":  {`{"user": "{{identity.entity.name}}"}`, "must render a JSON object"},
		"too long":            {`{"x": "` + strings.Repeat("x", 8<<10) + `"}`, "at most 8192 bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			status, message := statusOf(e.request(logical.CreateOperation, "roles/r",
				map[string]any{"scopes": "identities:read", "claims_template": tc.template}))
			if status != http.StatusBadRequest || !strings.Contains(message, "'claims_template'") || !strings.Contains(message, tc.fragment) {
				t.Fatalf("%d %q, want a 400 naming claims_template and %q", status, message, tc.fragment)
			}
		})
	}
	e.writeRole("ok", map[string]any{"scopes": "identities:read", "claims_template": attributionTemplate})
	if got := e.mustOK(logical.ReadOperation, "roles/ok", nil).Data["claims_template"]; got != attributionTemplate {
		t.Fatalf("claims_template reads %v", got)
	}
}
