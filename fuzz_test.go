package beyondidentity

import (
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"

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
