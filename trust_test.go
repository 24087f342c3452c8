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

// A JWT whose own scope claim grants more than its answer says is not
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

// rewritePayload is a fakebi payload that changes the token's claims with
// change, then writes them with write (base64url when nil): a server whose
// JWTs a plain reader refuses, or whose claims say other than they should.
func rewritePayload(change func(claims map[string]any), write func(payload []byte) string) func([]byte) string {
	return func(encoded []byte) string {
		claims := map[string]any{}
		_ = json.Unmarshal(encoded, &claims) // the fake's own JSON
		if change != nil {
			change(claims)
		}
		encoded, _ = json.Marshal(claims)
		if write == nil {
			return base64.RawURLEncoding.EncodeToString(encoded)
		}
		return write(encoded)
	}
}

// granting widens a token's own scope claim to tokens:delete.
func granting(claims map[string]any) { claims["scope"] = "identities:read tokens:delete" }

// beforeClosing inserts text before the payload's closing brace.
func beforeClosing(text string) func([]byte) string {
	return func(payload []byte) string {
		return base64.RawURLEncoding.EncodeToString(append(append(payload[:len(payload)-1:len(payload)-1], text...), '}'))
	}
}

// TestAJWTWhosePayloadCannotBeReadIsRevoked: a JWT (known by its header)
// whose payload a plain reader refuses is never taken for an opaque token
// and issued on its introspection's word: it is revoked and the read is a
// 502 saying why, here for tokens whose own scope claim grants
// tokens:delete beyond the role.
func TestAJWTWhosePayloadCannotBeReadIsRevoked(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		payload func([]byte) string
		why     string
	}{
		"Infinity in bi_custom": {rewritePayload(granting, beforeClosing(`,"bi_custom":{"n":Infinity}`)), "NaN or Infinity"},
		"NaN":                   {rewritePayload(granting, beforeClosing(`,"x":NaN`)), "NaN or Infinity"},
		"standard base64": {rewritePayload(granting, func(p []byte) string {
			return base64.StdEncoding.EncodeToString(append(p, strings.Repeat(" ", 3-len(p)%3+1)...))
		}), "not base64url"},
		"a byte-order mark": {rewritePayload(granting, func(p []byte) string {
			return base64.RawURLEncoding.EncodeToString(append([]byte("\uFEFF"), p...))
		}), "byte-order mark"},
		"trailing bytes": {rewritePayload(granting, func(p []byte) string {
			return base64.RawURLEncoding.EncodeToString(append(p, "]"...))
		}), "bytes follow"},
		"nesting past the bound": {rewritePayload(granting, beforeClosing(`,"x":`+strings.Repeat("[", 100)+strings.Repeat("]", 100))),
			"deeper than 64 levels"},
		"a token over 64 KiB": {rewritePayload(func(c map[string]any) { granting(c); c["pad"] = strings.Repeat("x", 70<<10) }, nil),
			"longer than 64 KiB"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newConfiguredBackend(t, func(app *fakebi.Application) { app.Misreport.Payload = tc.payload })
			status, message := statusOf(e.request(logical.ReadOperation, "creds/sync", nil))
			if status != http.StatusBadGateway || !strings.Contains(message, "cannot be read plainly") ||
				!strings.Contains(message, tc.why) || !strings.Contains(message, "the token was revoked") {
				t.Fatalf("%d %q: want a 502 saying the payload cannot be read (%s) and that the token was revoked", status, message, tc.why)
			}
			if e.fake.IsActive(e.lastToken().Value) {
				t.Fatal("the token whose payload cannot be read was left valid")
			}
		})
	}
}

// TestBiCustomWithAKeyWrittenTwiceIsRefused: a bi_custom that names the
// reader's entity twice, in two spellings of one key, is a mismatch,
// whichever of the two a reader would keep.
func TestBiCustomWithAKeyWrittenTwiceIsRefused(t *testing.T) {
	t.Parallel()
	e := newAttributedRole(t)
	app := testApp()
	app.Misreport.Payload = func(payload []byte) string {
		forged := strings.Replace(string(payload), `"bi_custom":{"`, `"bi_custom":{"vault_entity":"entity-mallory","`, 1)
		forged = strings.Replace(forged, `"vault_entity":"entity-alice"`, `"vault\u005fentity":"entity-alice"`, 1)
		return base64.RawURLEncoding.EncodeToString([]byte(forged))
	}
	e.fake.AddApplication(app)
	status, message := statusOf(e.readAs("entity-alice", "who"))
	if status != http.StatusBadGateway || !strings.Contains(message, `"vault_entity" appears more than once`) ||
		!strings.Contains(message, "the token was revoked") {
		t.Fatalf("a bi_custom naming two entities: %d %q", status, message)
	}
	if e.fake.IsActive(e.lastToken().Value) {
		t.Fatal("the token with a forged bi_custom was left valid")
	}
}

// TestBiCustomMustShowExactlyWhatWasSent: a key that was not sent, or a
// bi_custom on a token minted without custom claims, is a mismatch; so is
// a JWT that carries no scope claim at all.
func TestBiCustomMustShowExactlyWhatWasSent(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		change func(claims map[string]any)
		role   string
		why    string
	}{
		"a key that was not sent": {func(c map[string]any) { c["bi_custom"].(map[string]any)["admin"] = true }, "who", "extra: admin"},
		"bi_custom though none was sent": {func(c map[string]any) { c["bi_custom"] = map[string]any{"vault_entity": "entity-alice"} },
			"sync", "although no custom claims were sent"},
		"no scope claim": {func(c map[string]any) { delete(c, "scope") }, "sync", "no scope claim"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newAttributedRole(t)
			e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
			app := testApp()
			app.Misreport.Payload = rewritePayload(tc.change, nil)
			e.fake.AddApplication(app)
			status, message := statusOf(e.readAs("entity-alice", tc.role))
			if status != http.StatusBadGateway || !strings.Contains(message, tc.why) || !strings.Contains(message, "the token was revoked") {
				t.Fatalf("%d %q: want a 502 naming %q", status, message, tc.why)
			}
			if e.fake.IsActive(e.lastToken().Value) {
				t.Fatal("the refused token was left valid")
			}
		})
	}
}

// TestBiCustomNumbersCompareExactly: 1e20+1 is not 1e20, whatever a float
// makes of them; one number written in two ways is one number.
func TestBiCustomNumbersCompareExactly(t *testing.T) {
	t.Parallel()
	sent := map[string]any{"n": json.Number("100000000000000000001")}
	for shown, same := range map[string]bool{
		`{"n":100000000000000000001}`:     true,
		`{"n":1.00000000000000000001e20}`: true,
		`{"n":100000000000000000001.000}`: true,
		`{"n":100000000000000000000}`:     false,
		`{"n":1e20}`:                      false,
		`{"n":100000000000000000001e-0}`:  true,
		`{"n":1e999999999}`:               false,
	} {
		if difference := claimsDifference(sent, json.RawMessage(shown)); (difference == "") != same {
			t.Errorf("bi_custom %s against 100000000000000000001: difference %q", shown, difference)
		}
	}
	for a, b := range map[string]string{"0": "-0.0e5", "1.5": "15e-1", "-120": "-1.2E2", "0.001": "1e-3"} {
		if !sameNumber(json.Number(a), json.Number(b)) {
			t.Errorf("%s and %s are one number", a, b)
		}
	}
	if sameNumber("1.5", "-1.5") || sameNumber("1e2", "1e3") {
		t.Error("different numbers compared equal")
	}
}

// TestQuotedScopesAreScrubbedAndMustBeScopes: a scope Beyond Identity
// grants beyond the role is quoted scrubbed of the client's secret; a
// granted "scope" that is not one at all is a 502.
func TestQuotedScopesAreScrubbedAndMustBeScopes(t *testing.T) {
	t.Parallel()
	const scopeLikeSecret = "lower-case-secret-0123456789"
	e := newTestBackend(t)
	app := testApp()
	app.ClientSecret, app.WidenScopes = scopeLikeSecret, []string{"x:" + scopeLikeSecret}
	e.fake.AddApplication(app)
	e.mustOK(logical.CreateOperation, "config", e.configData(map[string]any{"client_secret": scopeLikeSecret}))
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	status, message := statusOf(e.request(logical.ReadOperation, "creds/sync", nil))
	if status != http.StatusBadRequest || strings.Contains(message, scopeLikeSecret[:16]) || !strings.Contains(message, "extra: x[redacted]") {
		// The colon goes too: it is a character of the Basic credentials.
		t.Fatalf("%d: want a 400 naming the extra scope with the secret redacted, got %d bytes", status, len(message))
	}

	e = newSyncRoleBackend(t)
	app = testApp()
	app.WidenScopes = []string{testClientSecret}
	e.fake.AddApplication(app)
	status, message = statusOf(e.request(logical.ReadOperation, "creds/sync", nil))
	if status != http.StatusBadGateway || !strings.Contains(message, "not a scope") || strings.Contains(message, testClientSecret) {
		t.Fatalf("%d: want a 502 saying a granted scope is not one, without quoting the secret (%d bytes)", status, len(message))
	}
	if e.fake.IsActive(e.lastToken().Value) {
		t.Fatal("the refused token was left valid")
	}
}

// TestBiCustomComparedAsSent: claims held as Go values no JSON reader
// gives (a float, a []string, invalid UTF-8) compare as Beyond Identity
// received them, encoded; a key written twice deep in bi_custom, in an
// escaped spelling, is a mismatch even when both values are the ones sent.
func TestBiCustomComparedAsSent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sent  map[string]any
		shown string
		why   string // "" when they are the same
	}{
		{map[string]any{"n": 1.5}, `{"n":15e-1}`, ""},
		{map[string]any{"l": []string{"a"}}, `{"l":["a"]}`, ""},
		{map[string]any{"s": "\xff"}, `{"s":"\ufffd"}`, ""},
		{map[string]any{"o": map[string]any{"k": json.Number("1")}}, `{"o":{"k":1.0}}`, ""},
		{map[string]any{"n": json.Number("1.")}, `{"n":1}`, "cannot be encoded"},
		{map[string]any{"o": map[string]any{"k": "v"}}, `{"o":{"k":"v","\u006b":"v"}}`, `"k" appears more than once`},
		{map[string]any{"a": "x"}, `{"a":"x","b":"y"}`, "extra: b"},
		{map[string]any{"a": "x", "b": "y"}, `{"a":"y"}`, "missing: b; extra: none; other values: a"},
	} {
		difference := claimsDifference(tc.sent, json.RawMessage(tc.shown))
		if tc.why == "" && difference != "" || !strings.Contains(difference, tc.why) {
			t.Errorf("sent %#v, bi_custom %s: difference %q, want %q", tc.sent, tc.shown, difference, tc.why)
		}
	}
}
