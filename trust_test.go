package beyondidentity

// What a token's answer says is checked against the token itself: every
// form of its scope claims, and its bi_custom, for creds and static
// rotations alike.

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// TestATokenWhoseClaimsGrantMoreInAnyFormIsRefused: a JWT whose own scope
// claims grant more than its answer says, in any form Beyond Identity could
// write them, is revoked and the read fails naming the difference; a claim
// that appears twice or in two cases counts as a difference.
func TestATokenWhoseClaimsGrantMoreInAnyFormIsRefused(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		form     fakebi.ScopeForm
		status   int
		fragment string
	}{
		"a list":          {fakebi.ScopeList, http.StatusBadRequest, "extra: tokens:read"},
		"scope twice":     {fakebi.ScopeTwice, http.StatusBadGateway, `"scope" appears more than once`},
		"scope and Scope": {fakebi.ScopeTwoCases, http.StatusBadGateway, `"Scope" is a second form of "scope"`},
		"a wider scp":     {fakebi.ScopeInScp, http.StatusBadGateway, `"scope" and "scp" grant different scopes`},
		"a wider string":  {fakebi.ScopeString, http.StatusBadRequest, "extra: tokens:read"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newConfiguredBackend(t, func(app *fakebi.Application) {
				app.Misreport = fakebi.Misreport{ExtraScopes: []string{"tokens:read"}, ScopeForm: tc.form}
			})
			status, message := statusOf(e.request(logical.ReadOperation, "creds/sync", nil))
			if status != tc.status || !strings.Contains(message, tc.fragment) || !strings.Contains(message, "the token was revoked") {
				t.Fatalf("%d %q, want %d naming %q and saying the token was revoked", status, message, tc.status, tc.fragment)
			}
			if e.fake.IsActive(e.lastToken().Value) {
				t.Fatal("the refused token was left valid")
			}
		})
	}
}

// TestATokenWithoutTheClaimsSentIsRefused: a token from which Beyond
// Identity dropped the custom claims (bi_custom absent), or whose bi_custom
// differs, is revoked and the read fails with a 502 naming the difference:
// a role that asks for attribution never hands out an anonymous token.
func TestATokenWithoutTheClaimsSentIsRefused(t *testing.T) {
	t.Parallel()
	e := newAttributedRole(t)
	app := testApp()
	app.Misreport = fakebi.Misreport{DropCustomClaims: true}
	e.fake.AddApplication(app)
	status, message := statusOf(e.readAs("entity-alice", "who"))
	if status != http.StatusBadGateway || !strings.Contains(message, "no bi_custom") || !strings.Contains(message, "the token was revoked") {
		t.Fatalf("a token without its custom claims: %d %q", status, message)
	}
	if e.fake.IsActive(e.lastToken().Value) {
		t.Fatal("the token without its claims was left valid")
	}

	e.fake.AddApplication(testApp())
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Times: 1, Rewrite: func(answer map[string]any) {
		answer["access_token"] = reissueWithCustom(t, answer["access_token"].(string), `{"vault_entity":"entity-mallory"}`)
	}})
	status, message = statusOf(e.readAs("entity-alice", "who"))
	if status != http.StatusBadGateway || !strings.Contains(message, "other values: vault_entity") {
		t.Fatalf("a token whose bi_custom names someone else: %d %q", status, message)
	}
}

// TestAStaticRotationChecksTheTokenAsCredsDoes: the same checks stand
// before a static role keeps a token; a failed first mint stores nothing.
func TestAStaticRotationChecksTheTokenAsCredsDoes(t *testing.T) {
	t.Parallel()
	e := newConfiguredBackend(t, func(app *fakebi.Application) {
		app.Misreport = fakebi.Misreport{ExtraScopes: []string{"tokens:read"}, ScopeForm: fakebi.ScopeInScp}
	})
	status, message := statusOf(e.request(logical.CreateOperation, "static-roles/ci", map[string]any{"scopes": "identities:read"}))
	if status != http.StatusBadGateway || !strings.Contains(message, `static role "ci"`) {
		t.Fatalf("a static role's first token granting more: %d %q", status, message)
	}
	if e.fake.IsActive(e.lastToken().Value) {
		t.Fatal("the refused token was left valid")
	}
	if r, _ := readStaticRole(t.Context(), e.storage, "ci"); r != nil {
		t.Fatal("a static role whose first token was refused was stored")
	}
	app := testApp()
	app.Misreport = fakebi.Misreport{DropCustomClaims: true}
	e.fake.AddApplication(app)
	status, message = statusOf(e.request(logical.CreateOperation, "static-roles/ci", map[string]any{"scopes": "identities:read",
		"custom_claims": `{"team":"sre"}`}))
	if status != http.StatusBadGateway || !strings.Contains(message, "no bi_custom") {
		t.Fatalf("a static role's first token without its claims: %d %q", status, message)
	}
}

// reissueWithCustom is jwt with its bi_custom claim replaced: a token the
// fake never minted, whose claims say something else.
func reissueWithCustom(t *testing.T, jwt, custom string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]json.RawMessage{}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	claims["bi_custom"] = json.RawMessage(custom)
	payload, err = json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
}

// 5. A JWT whose own scope claim grants more than its answer says is not
// issued: Beyond Identity enforces the claim.
func TestAJWTGrantingMoreThanItsAnswerSaysIsRefused(t *testing.T) {
	t.Parallel()
	e := newConfiguredBackend(t, func(app *fakebi.Application) { app.WidenScopes = []string{"tokens:delete"} })
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Rewrite: func(answer map[string]any) { answer["scope"] = "identities:read" }})
	status, message := statusOf(e.request(logical.ReadOperation, "creds/sync", nil))
	if status != http.StatusBadRequest || !strings.Contains(message, "scope claim") || !strings.Contains(message, "extra: tokens:delete") {
		t.Fatalf("a JWT granting tokens:delete beyond its answer: %d %q", status, message)
	}
	if e.fake.IsActive(e.lastToken().Value) {
		t.Fatal("the refused token was left valid")
	}
}

// A grant wider than asked is refused as firmly as a narrower one.
func TestCredsExtraScopesAreRefused(t *testing.T) {
	t.Parallel()
	e := newConfiguredBackend(t, func(app *fakebi.Application) { app.WidenScopes = []string{"tokens:read"} })
	resp, err := e.request(logical.ReadOperation, "creds/sync", nil)
	if err != nil || resp == nil || !resp.IsError() {
		t.Fatalf("want a 400, got resp=%s err=%v", errorText(resp), err)
	}
	if msg := resp.Error().Error(); !strings.Contains(msg, "missing: none; extra: tokens:read") || !strings.Contains(msg, "the token was revoked") {
		t.Fatalf("error does not name the extra scope and the revocation: %s", msg)
	}
	if e.fake.IsActive(e.lastToken().Value) {
		t.Fatal("the widened token is still valid")
	}
}
