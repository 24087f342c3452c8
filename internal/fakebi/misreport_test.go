package fakebi

import (
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
)

// payloadOf is the raw JSON payload of a JWT.
func payloadOf(t *testing.T, jwt string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(payload)
}

// TestMisreportedClaims: an application that misreports mints tokens whose
// own claims, in the JWT and in introspection alike, say more than the
// answer: in each scope form, or without the custom claims sent.
func TestMisreportedClaims(t *testing.T) {
	tests := map[string]struct {
		misreport Misreport
		want      []string // fragments of the payload
		notWant   []string
	}{
		"wider list": {Misreport{ExtraScopes: []string{"tokens:delete"}, ScopeForm: ScopeList},
			[]string{`"scope":["identities:read","tokens:delete"]`}, nil},
		"wider string": {Misreport{ExtraScopes: []string{"tokens:delete"}},
			[]string{`"scope":"identities:read tokens:delete"`}, nil},
		"scope twice": {Misreport{ExtraScopes: []string{"tokens:delete"}, ScopeForm: ScopeTwice},
			[]string{`"scope":"identities:read",`, `,"scope":"identities:read tokens:delete"}`}, nil},
		"Scope beside scope": {Misreport{ExtraScopes: []string{"tokens:delete"}, ScopeForm: ScopeTwoCases},
			[]string{`"Scope":"identities:read tokens:delete"`, `"scope":"identities:read"`}, nil},
		"wider scp": {Misreport{ExtraScopes: []string{"tokens:delete"}, ScopeForm: ScopeInScp},
			[]string{`"scp":"identities:read tokens:delete"`, `"scope":"identities:read"`}, nil},
		"dropped custom claims": {Misreport{DropCustomClaims: true}, []string{`"scope":"identities:read"`}, []string{"bi_custom"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			app := appA
			app.Misreport = tc.misreport
			f.s.AddApplication(app)
			answer := f.mint(t, app, "scope", "identities:read", "custom_claims", `{"k":"v"}`)
			if answer["scope"] != "identities:read" {
				t.Fatalf("the answer's scope is %v: a misreport changes only the token's claims", answer["scope"])
			}
			value := answer["access_token"].(string)
			introspected := f.do(t, request{path: introspectPath(app), form: mintForm("token", value), basic: basicOf(app)})
			for source, claims := range map[string]string{"jwt": payloadOf(t, value), "introspection": string(introspected.body)} {
				for _, fragment := range tc.want {
					if !strings.Contains(claims, fragment) {
						t.Errorf("%s claims %s lack %s", source, claims, fragment)
					}
				}
				for _, fragment := range tc.notWant {
					if strings.Contains(claims, fragment) {
						t.Errorf("%s claims %s hold %s", source, claims, fragment)
					}
				}
			}
		})
	}
}

// TestFaultEchoInHex: the echo holds the token and the Authorization
// header in upper-case hex, and neither raw.
func TestFaultEchoInHex(t *testing.T) {
	f := newFixture(t)
	f.s.SetFault(OpRevoke, Fault{Status: http.StatusBadGateway, EchoRequest: true, EchoInHex: true})
	resp := f.do(t, revokeRequestOf(appA, "the-revoked-token"))
	wantAPIError(t, resp, http.StatusBadGateway, "bad_gateway")
	message := resp.json(t)["message"].(string)
	if !strings.Contains(message, strings.ToUpper(hex.EncodeToString([]byte("the-revoked-token")))) ||
		strings.Contains(message, "the-revoked-token") || strings.Contains(message, "Basic ") {
		t.Fatalf("message %q: want the token and header in upper-case hex only", message)
	}
}
