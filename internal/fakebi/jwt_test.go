package fakebi

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// urlSafe32 is the documented shape of a jti.
var urlSafe32 = regexp.MustCompile(`^[A-Za-z0-9_-]{32}$`)

// servedKey fetches the JWKS of app's issuer and returns its only key.
func servedKey(t *testing.T, f *fixture, app Application) (*rsa.PublicKey, map[string]string) {
	t.Helper()
	resp := f.do(t, request{method: http.MethodGet, path: issuerPath(app) + "/.well-known/jwks.json"})
	if resp.status != http.StatusOK {
		t.Fatalf("JWKS: status %d", resp.status)
	}
	var set struct{ Keys []map[string]string }
	if err := json.Unmarshal(resp.body, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS %s: want one key (%v)", resp.body, err)
	}
	k := set.Keys[0]
	n, errN := base64.RawURLEncoding.DecodeString(k["n"])
	e, errE := base64.RawURLEncoding.DecodeString(k["e"])
	if errN != nil || errE != nil {
		t.Fatalf("JWKS key %v: n or e is not base64url", k)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, k
}

// parseJWT splits a JWT, decodes its header and claims, and verifies its
// RS256 signature with key.
func parseJWT(t *testing.T, token string, key *rsa.PublicKey) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	header = decodeSegment(t, parts[0])
	claims = decodeSegment(t, parts[1])
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatalf("signature is not base64url: %v", err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("signature does not verify against the served JWKS: %v", err)
	}
	return header, claims
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
			key, jwk := servedKey(t, f, appA)
			header, claims := parseJWT(t, value, key)
			issuer := f.ts.URL + issuerPath(appA)

			wantHeader := map[string]any{"typ": "JWT", "alg": "RS256", "kid": jwk["kid"], "jku": issuer + "/.well-known/jwks.json"}
			if !reflect.DeepEqual(header, wantHeader) {
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
	value := f.mintValue(t, appA)
	key, _ := servedKey(t, f, appA)
	header, claims := parseJWT(t, value, key)
	issuer := ts.URL + issuerPath(appA)
	if !strings.HasPrefix(issuer, "https://") || claims["iss"] != issuer {
		t.Errorf("iss = %v, want %s", claims["iss"], issuer)
	}
	if header["jku"] != issuer+"/.well-known/jwks.json" {
		t.Errorf("jku = %v", header["jku"])
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

func TestJWKSAndDiscovery(t *testing.T) {
	f := newFixture(t)
	resp := f.do(t, request{method: http.MethodGet, path: issuerPath(appA) + "/.well-known/jwks.json"})
	if !bytes.Equal(resp.body, f.s.JWKS()) {
		t.Errorf("served JWKS %s differs from JWKS() %s", resp.body, f.s.JWKS())
	}
	if resp.header.Get("Content-Type") != "application/json" {
		t.Errorf("JWKS Content-Type = %q", resp.header.Get("Content-Type"))
	}
	_, jwk := servedKey(t, f, appA)
	for field, want := range map[string]string{"kty": "RSA", "use": "sig", "alg": "RS256", "e": "AQAB"} {
		if jwk[field] != want {
			t.Errorf("JWK %s = %q, want %q", field, jwk[field], want)
		}
	}
	if jwk["kid"] == "" || jwk["n"] == "" {
		t.Errorf("JWK lacks kid or n: %v", jwk)
	}

	resp = f.do(t, request{method: http.MethodGet, path: issuerPath(appA) + "/.well-known/openid-configuration"})
	if resp.status != http.StatusOK {
		t.Fatalf("discovery: status %d", resp.status)
	}
	issuer := f.ts.URL + issuerPath(appA)
	want := map[string]any{
		"issuer":                                issuer,
		"token_endpoint":                        issuer + "/token",
		"revocation_endpoint":                   issuer + "/revoke",
		"introspection_endpoint":                f.ts.URL + introspectPath(appA),
		"jwks_uri":                              issuer + "/.well-known/jwks.json",
		"grant_types_supported":                 []any{"client_credentials"},
		"token_endpoint_auth_methods_supported": []any{"client_secret_basic", "client_secret_post"},
	}
	if got := resp.json(t); !reflect.DeepEqual(got, want) {
		t.Errorf("discovery = %v\nwant        %v", got, want)
	}
}

func TestWellKnownErrors(t *testing.T) {
	unknown := Application{TenantID: "tenant-1", RealmID: "realm-1", ID: "nope"}
	tests := map[string]struct {
		method, path string
		status       int
		code         string
	}{
		"JWKS of unknown app":      {http.MethodGet, issuerPath(unknown) + "/.well-known/jwks.json", http.StatusNotFound, "not_found"},
		"discovery of unknown app": {http.MethodGet, issuerPath(unknown) + "/.well-known/openid-configuration", http.StatusNotFound, "not_found"},
		"POST JWKS":                {http.MethodPost, issuerPath(appA) + "/.well-known/jwks.json", http.StatusMethodNotAllowed, "method_not_allowed"},
		"DELETE discovery":         {http.MethodDelete, issuerPath(appA) + "/.well-known/openid-configuration", http.StatusMethodNotAllowed, "method_not_allowed"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			wantAPIError(t, f.do(t, request{method: tc.method, path: tc.path}), tc.status, tc.code)
		})
	}
}
