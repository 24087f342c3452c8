package beyondidentity

// Roles as stored and cached.

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/scope"
)

// FuzzScopes feeds scopes parsing what an operator may type: a
// comma-separated string, as the vault CLI sends it, read by the same field
// schema the roles path uses.
func FuzzScopes(f *testing.F) {
	for _, seed := range []string{
		"identities:read,groups:read", " identities:read , identities:read ", "scim:users:read", "Identities:Read",
		"identities", "a::b", ",,", "", "a:b,c:d,a:b", "tokens:read\n", "ü:ä", strings.Repeat("a:b,", 300),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		fields := &framework.FieldData{
			Raw:    map[string]any{"scopes": input},
			Schema: map[string]*framework.FieldSchema{"scopes": {Type: framework.TypeCommaStringSlice}},
		}
		raw, ok, err := fields.GetOkErr("scopes")
		if err != nil || !ok {
			return
		}
		scopes, err := parseScopes(raw.([]string))
		if err != nil {
			if scopes != nil || !strings.Contains(err.Error(), "'scopes'") {
				t.Fatalf("scopes returned with an error, or an error not naming the field: %v", err)
			}
			return
		}
		if !sort.StringsAreSorted(scopes) || len(scopes) > maxScopes {
			t.Fatalf("scopes %q not sorted or too many", scopes)
		}
		for i, s := range scopes {
			if !scope.Valid(s) || len(s) > maxScopeLen || (i > 0 && scopes[i-1] == s) {
				t.Fatalf("scope %q invalid, too long or repeated", s)
			}
		}
		again, err := parseScopes(scopes)
		if err != nil || strings.Join(again, ",") != strings.Join(scopes, ",") {
			t.Fatal("normalizing is not idempotent")
		}
	})
}

// Credentials read their role from a cache, which never serves a role
// changed or deleted here or, through Vault's invalidation, on another node.
func TestCredsNeverUseAStaleRole(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	e.writeRole("r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	e.issue("r", nil)
	e.mustOK(logical.UpdateOperation, "roles/r", map[string]any{"scopes": "groups:read"})
	if resp := e.issue("r", nil); fmt.Sprint(resp.Data["scopes"]) != "[groups:read]" {
		t.Fatalf("after the role changed, creds carried %v", resp.Data["scopes"])
	}
	// Another node rewrites the role; Vault invalidates the key here.
	if err := writeRole(context.Background(), e.storage, "r", &role{Scopes: []string{"tokens:read"}}); err != nil {
		t.Fatal(err)
	}
	e.b.invalidate(context.Background(), "roles/r")
	if resp := e.issue("r", nil); fmt.Sprint(resp.Data["scopes"]) != "[tokens:read]" {
		t.Fatalf("after another node changed the role, creds carried %v", resp.Data["scopes"])
	}
	e.mustOK(logical.DeleteOperation, "roles/r", nil)
	if resp, _ := e.request(logical.ReadOperation, "creds/r", nil); resp == nil || !resp.IsError() {
		t.Fatal("a deleted role still issued credentials")
	}
}

// A read that began before a change does not put the old role back.
func TestRoleCacheKeepsNoReadThatRacedAChange(t *testing.T) {
	t.Parallel()
	var cache roleCache
	_, generation, _ := cache.get("r")
	cache.drop("r") // a write lands while the read is under way
	cache.put("r", &role{Scopes: []string{"old:scope"}}, generation)
	if _, _, ok := cache.get("r"); ok {
		t.Fatal("a read older than the change filled the cache")
	}
}
