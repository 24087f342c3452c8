package fakebi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// urlSafe32 is the documented shape of a jti.
var urlSafe32 = regexp.MustCompile(`^[A-Za-z0-9_-]{32}$`)

// parseJWT splits a JWT, decodes its header and claims, and checks that
// the signature has the length of an RS256 signature by a 2048-bit key.
func parseJWT(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 256 {
		t.Fatalf("signature is not 256 base64url bytes (%d, %v)", len(sig), err)
	}
	return decodeSegment(t, parts[0]), decodeSegment(t, parts[1])
}

func decodeSegment(t *testing.T, seg string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("segment %q is not base64url: %v", seg, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("segment %s is not a JSON object: %v", raw, err)
	}
	return m
}

func TestSelfContainedJWT(t *testing.T) {
	tests := map[string]struct {
		pairs      []string
		wantCustom any // nil: no bi_custom claim
	}{
		"plain": {pairs: []string{"scope", "tokens:read groups:read", "expiration_time", "600"}},
		"custom claims": {
			pairs:      []string{"scope", "tokens:read groups:read", "expiration_time", "600", "custom_claims", `{"role":"sync","big":12345678901234567890}`},
			wantCustom: map[string]any{"role": "sync", "big": json.Number("12345678901234567890")},
		},
		"empty custom claims": {
			pairs:      []string{"scope", "tokens:read groups:read", "expiration_time", "600", "custom_claims", `{}`},
			wantCustom: map[string]any{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			value := f.mintValue(t, appA, tc.pairs...)
			header, claims := parseJWT(t, value)
			issuer := f.ts.URL + issuerPath(appA)

			wantHeader := map[string]any{"typ": "JWT", "alg": "RS256", "kid": keyID}
			if !reflect.DeepEqual(header, wantHeader) || keyID == "" {
				t.Errorf("header = %v, want %v", header, wantHeader)
			}
			jti, _ := claims["jti"].(string)
			if !urlSafe32.MatchString(jti) {
				t.Errorf("jti %q is not 32 URL-safe characters", jti)
			}
			iat := f.clock.Now().Unix()
			principal := "tenants/tenant-1/realms/realm-1/applications/app-a"
			want := map[string]any{
				"iss": issuer, "sub": appA.ClientID, "aud": []any{"beyondidentity"},
				"iat": json.Number(itoa(iat)), "nbf": json.Number(itoa(iat)), "exp": json.Number(itoa(iat + 600)),
				"jti": jti, "scope": "groups:read tokens:read",
				"azp": principal, "bi_p": principal, "bi_t": "tenant-1", "bi_r": "*",
			}
			if tc.wantCustom != nil {
				want["bi_custom"] = tc.wantCustom
			}
			if !reflect.DeepEqual(claims, want) {
				t.Errorf("claims = %v\nwant     %v", claims, want)
			}
			if tok, _ := f.s.TokenByValue(value); tok.ID != jti {
				t.Errorf("recorded token id %q, want the jti %q", tok.ID, jti)
			}
		})
	}
}

func itoa(n int64) string { return big.NewInt(n).String() }

func TestJTIsAreUnique(t *testing.T) {
	f := newFixture(t)
	seen := map[string]bool{}
	for range 20 {
		f.mint(t, appA)
	}
	for _, tok := range f.s.Tokens() {
		if seen[tok.ID] || !urlSafe32.MatchString(tok.ID) {
			t.Fatalf("jti %q repeated or malformed", tok.ID)
		}
		seen[tok.ID] = true
	}
}

func TestIssuerFollowsSchemeAndHost(t *testing.T) {
	s := New()
	s.AddApplication(appA)
	ts := httptest.NewTLSServer(s)
	defer ts.Close()
	f := &fixture{s: s, ts: ts, clock: newFakeClock()}
	_, claims := parseJWT(t, f.mintValue(t, appA))
	issuer := ts.URL + issuerPath(appA)
	if !strings.HasPrefix(issuer, "https://") || claims["iss"] != issuer {
		t.Errorf("iss = %v, want %s", claims["iss"], issuer)
	}
}

func TestReferentialToken(t *testing.T) {
	f := newFixture(t)
	got := f.mint(t, appRef, "expiration_time", "120")
	value := got["access_token"].(string)
	if strings.Count(value, ".") == 2 {
		t.Errorf("referential token %q looks like a JWT", value)
	}
	if len(value) < 32 {
		t.Errorf("referential token %q is too short to be unguessable", value)
	}
	if got["expires_in"] != float64(120) || got["token_type"] != "Bearer" {
		t.Errorf("answer = %v", got)
	}
	tok, ok := f.s.TokenByValue(value)
	if !ok || tok.Format != Referential || !urlSafe32.MatchString(tok.ID) {
		t.Errorf("recorded token = %+v, %v", tok, ok)
	}
	if !f.s.IsActive(value) {
		t.Error("fresh referential token is not active")
	}
}

// TestWidenedGrantShowsEverywhere checks that WidenScopes reaches every
// place a client can read scopes from, so that a client that checks only
// one of them is caught.
func TestWidenedGrantShowsEverywhere(t *testing.T) {
	for name, base := range map[string]Application{"self-contained": appA, "referential": appRef} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			app := base
			app.WidenScopes = []string{"tenants:update"}
			f.s.AddApplication(app)
			const want = "identities:read tenants:update"
			answer := f.mint(t, app, "scope", "identities:read")
			value := answer["access_token"].(string)
			if answer["scope"] != want {
				t.Errorf("answer scope = %v, want %q", answer["scope"], want)
			}
			if app.TokenFormat != Referential {
				if _, claims := parseJWT(t, value); claims["scope"] != want {
					t.Errorf("JWT scope = %v, want %q", claims["scope"], want)
				}
			}
			resp := f.do(t, request{path: introspectPath(app), form: url.Values{"token": {value}}, basic: basicOf(app)})
			if got := resp.json(t)["scope"]; got != want {
				t.Errorf("introspected scope = %v, want %q", got, want)
			}
			if tok, _ := f.s.TokenByValue(value); strings.Join(tok.Scopes, " ") != want {
				t.Errorf("Token.Scopes = %v, want %q", tok.Scopes, want)
			}
		})
	}
}
