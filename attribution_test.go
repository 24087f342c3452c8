package beyondidentity

// Attribution: a role's claims_template says in each token who in Vault
// asked for it.

import (
	"bytes"
	"context"
	"encoding/json"
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
		"unbalanced":          {`{"user": {{identity.entity.name}`, "unbalanced"},
		"not an object":       {`{{identity.entity.name}}`, "must be a JSON object"},
		"a list":              {`[{{identity.entity.name}}]`, "must be a JSON object"},
		"inside a string":     {`{"user": "vault-{{identity.entity.name}}"}`, "never inside a longer string"},
		"quotes inside":       {`{"user": " {{identity.entity.name}} "}`, "never inside a longer string"},
		"as a key":            {`{ {{identity.entity.name}}: "x"}`, "nor as a key"},
		"as a quoted key":     {`{"{{identity.entity.name}}": "x"}`, "nor as a key"},
		"a whole map":         {`{"meta": {{identity.entity.metadata}}}`, "names a whole map"},
		"a forged sentinel":   {`{"a": "\u00000", "b": {{identity.entity.name}}}`, "whole value"},
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

// hostile is a value that would change the claims' shape if it were spliced
// into JSON as text: quotes, braces, a backslash, a newline and a forged
// key.
const hostile = "pay\", \"vault_entity\": \"forged\" } {\\\n\"tier\": \"admin"

// TestNoIdentityValueCanChangeTheClaimsShape: whatever a group's name or
// metadata, or an entity's, holds, it lands as one string exactly where its
// placeholder stands, quoted or not: it adds no key, overrides no claim of
// custom_claims, and the token's bi_custom holds the template's keys alone.
func TestNoIdentityValueCanChangeTheClaimsShape(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.sys.EntityVal = &logical.Entity{ID: "entity-eve", Name: hostile, Metadata: map[string]string{"team": hostile}}
	e.sys.GroupsVal = []*logical.Group{{ID: "group-1", Name: hostile, Metadata: map[string]string{"label": hostile}}}
	e.configure()
	template := `{"vault_entity": {{identity.entity.id}}, "user": "{{identity.entity.name}}", "team": {{identity.entity.metadata.team}}, ` +
		`"group_name": {{identity.groups.ids.group-1.name}}, "group_label": "{{identity.groups.ids.group-1.metadata.label}}", ` +
		`"group_label_bare": {{identity.groups.ids.group-1.metadata.label}}, "groups": {{identity.entity.groups.names}}}`
	e.writeRole("who", map[string]any{"scopes": "identities:read", "ttl": "1h",
		"custom_claims": `{"tier":"readonly"}`, "claims_template": template})
	resp, err := e.readAs("entity-eve", "who")
	if err != nil || resp.IsError() {
		t.Fatalf("%s %v", errorText(resp), err)
	}
	claims := e.lastToken().CustomClaims
	want := map[string]any{"vault_entity": "entity-eve", "user": hostile, "team": hostile, "group_name": hostile,
		"group_label": hostile, "group_label_bare": hostile, "groups": []any{hostile}, "tier": "readonly"}
	if len(claims) != len(want) {
		t.Errorf("bi_custom has keys %v, want exactly those of the template and custom_claims", keysOf(claims))
	}
	for key, value := range want {
		if got, err := json.Marshal(claims[key]); err != nil || !bytes.Equal(got, mustJSON(t, value)) {
			t.Errorf("bi_custom[%s] = %s, want the literal value %s", key, got, mustJSON(t, value))
		}
	}
}

// TestAGroupsMetadataCannotForgeTheAttribution: the probe's own example, a
// group metadata value written to close the quotes of its placeholder and
// open new claims, lands whole as the one value it is.
func TestAGroupsMetadataCannotForgeTheAttribution(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.sys.EntityVal = &logical.Entity{ID: "entity-eve", Name: "eve"}
	forged := `pay", "vault_entity": "forged-by-group-metadata", "tier": "admin`
	e.sys.GroupsVal = []*logical.Group{{ID: "group-1", Name: "payments", Metadata: map[string]string{"label": forged}}}
	e.configure()
	e.writeRole("who", map[string]any{"scopes": "identities:read", "ttl": "1h", "custom_claims": `{"tier":"readonly"}`,
		"claims_template": `{"vault_entity": {{identity.entity.id}}, "label": "{{identity.groups.ids.group-1.metadata.label}}"}`})
	resp, err := e.readAs("entity-eve", "who")
	if err != nil || resp.IsError() {
		t.Fatalf("%s %v", errorText(resp), err)
	}
	claims := e.lastToken().CustomClaims
	if claims["vault_entity"] != "entity-eve" || claims["tier"] != "readonly" || claims["label"] != forged || len(claims) != 3 {
		t.Fatalf("bi_custom %v: want vault_entity entity-eve, tier readonly and the label whole", claims)
	}
}

// TestAGroupValueMustBeThereLikeAnEntityValue: an empty group metadata
// value is a missing value, as an entity's is, and mints nothing.
func TestAGroupValueMustBeThereLikeAnEntityValue(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.sys.EntityVal = &logical.Entity{ID: "entity-eve", Name: "eve"}
	e.sys.GroupsVal = []*logical.Group{{ID: "group-1", Name: "sre", Metadata: map[string]string{"label": ""}}}
	e.configure()
	e.writeRole("who", map[string]any{"scopes": "identities:read", "ttl": "1h",
		"claims_template": `{"label": {{identity.groups.ids.group-1.metadata.label}}}`})
	status, message := statusOf(e.readAs("entity-eve", "who"))
	if status != http.StatusBadRequest || !strings.Contains(message, "{{identity.groups.ids.group-1.metadata.label}}") {
		t.Fatalf("an empty group value: %d %q, want a 400 naming the placeholder", status, message)
	}
	if calls := e.fake.CallsTo(fakebi.OpToken); len(calls) != 0 {
		t.Fatalf("%d tokens minted for a read that could not be attributed", len(calls))
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	encoded, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return encoded
}

// A group placeholder names a group of the entity's own namespace: a
// same-named group in another namespace, which Vault also lists among the
// entity's groups, is another group.
func TestGroupPlaceholdersResolveInTheEntitysNamespace(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.sys.EntityVal = &logical.Entity{ID: "entity-alice", Name: "alice", NamespaceID: "ns-team"}
	// The other namespace's group comes first, where a lookup by name alone
	// would take it.
	e.sys.GroupsVal = []*logical.Group{
		{ID: "group-elsewhere", Name: "sre", NamespaceID: "ns-other", Metadata: map[string]string{"tier": "elsewhere"}},
		{ID: "group-own", Name: "sre", NamespaceID: "ns-team", Metadata: map[string]string{"tier": "own"}},
		{ID: "group-ops", Name: "ops", NamespaceID: "ns-other"},
	}
	e.configure()
	e.writeRole("sre", map[string]any{"scopes": "identities:read",
		"claims_template": `{"group": {{identity.groups.names.sre.id}}, "tier": {{identity.groups.names.sre.metadata.tier}}}`})
	resp, err := e.readAs("entity-alice", "sre")
	if err != nil || resp.IsError() {
		t.Fatalf("%s %v", errorText(resp), err)
	}
	if claims := e.lastToken().CustomClaims; claims["group"] != "group-own" || claims["tier"] != "own" {
		t.Fatalf("bi_custom = %v, want the group of the entity's namespace", claims)
	}
	e.writeRole("ops", map[string]any{"scopes": "identities:read", "claims_template": `{"group": {{identity.groups.names.ops.id}}}`})
	status, message := statusOf(e.readAs("entity-alice", "ops"))
	if status != http.StatusBadRequest || !strings.Contains(message, "{{identity.groups.names.ops.id}}") {
		t.Fatalf("a group of another namespace only: %d %q", status, message)
	}
}

// The claims rendered for an entity are bounded like custom_claims: an
// entity whose values make them larger gets a 400, and nothing is minted.
func TestAttributedClaimsAreBoundedInSize(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.sys.EntityVal = &logical.Entity{ID: "entity-alice", Name: "alice", Metadata: map[string]string{"note": strings.Repeat("n", 8<<10)}}
	e.configure()
	e.writeRole("who", map[string]any{"scopes": "identities:read", "claims_template": `{"note": {{identity.entity.metadata.note}}}`})
	status, message := statusOf(e.readAs("entity-alice", "who"))
	if status != http.StatusBadRequest || !strings.Contains(message, "at most 8192") || !strings.Contains(message, `"alice"`) {
		t.Fatalf("%d %q, want a 400 naming the bound and the entity", status, message)
	}
	if minted := e.mintedSinceConfigure(); minted != 0 {
		t.Fatalf("%d tokens minted with claims past the bound", minted)
	}
	e.sys.EntityVal.Metadata["note"] = strings.Repeat("n", 8<<10-len(`{"note":""}`))
	if resp, err := e.readAs("entity-alice", "who"); err != nil || resp.IsError() {
		t.Fatalf("claims of exactly 8192 bytes: %s %v", errorText(resp), err)
	}
}
