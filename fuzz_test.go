package beyondidentity

import (
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
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
		scopes, problem := normalizeScopes(raw.([]string))
		if problem != "" {
			if scopes != nil {
				t.Fatal("scopes returned with a problem")
			}
			return
		}
		if !sort.StringsAreSorted(scopes) || len(scopes) > maxScopes {
			t.Fatalf("scopes %q not sorted or too many", scopes)
		}
		for i, scope := range scopes {
			if !scopePattern.MatchString(scope) || (i > 0 && scopes[i-1] == scope) {
				t.Fatalf("scope %q invalid or repeated", scope)
			}
		}
		again, problem := normalizeScopes(scopes)
		if problem != "" || strings.Join(again, ",") != strings.Join(scopes, ",") {
			t.Fatal("normalizing is not idempotent")
		}
	})
}
