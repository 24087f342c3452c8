package biclient

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// unsignedJWT builds a token shaped like a JWT; ReadClaims never checks
// signatures, so none is needed.
func unsignedJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + ".c2ln"
}

func TestParseTokenResponse(t *testing.T) {
	sentAt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	jwt := unsignedJWT(t, map[string]any{"jti": "abc", "exp": sentAt.Add(50 * time.Second).Unix(), "scope": "b:read a:read"})
	expired := unsignedJWT(t, map[string]any{"jti": "old", "exp": 3})
	tests := map[string]struct {
		body       string
		requested  []string
		wantErr    string
		wantToken  bool // the error still carries the token so it can be revoked
		wantScopes []string
		wantExpiry time.Time
		wantID     string
		wantFormat TokenFormat
	}{
		"opaque with scope": {
			body:       `{"access_token":"opaque","token_type":"Bearer","expires_in":3600,"scope":"b:read a:read a:read"}`,
			wantScopes: []string{"a:read", "b:read"}, wantExpiry: sentAt.Add(time.Hour), wantFormat: FormatOpaque,
		},
		"token_type is case-insensitive": {
			body:       `{"access_token":"opaque","token_type":"bearer","expires_in":"60"}`,
			requested:  []string{"x:read"},
			wantScopes: []string{"x:read"}, wantExpiry: sentAt.Add(time.Minute), wantFormat: FormatOpaque,
		},
		"jwt exp earlier than expires_in wins": {
			body:       `{"access_token":"` + jwt + `","token_type":"Bearer","expires_in":3600}`,
			wantScopes: []string{"a:read", "b:read"}, wantExpiry: sentAt.Add(50 * time.Second), wantID: "abc", wantFormat: FormatJWT,
		},
		"not json":             {body: `<html>hi</html>`, wantErr: "not a JSON object"},
		"json array":           {body: `[1]`, wantErr: "not a JSON object"},
		"no access_token":      {body: `{"token_type":"Bearer","expires_in":60}`, wantErr: "no access_token"},
		"wrong type":           {body: `{"access_token":"x","token_type":"mac","expires_in":60}`, wantErr: `token_type is "mac"`, wantToken: true},
		"missing expires_in":   {body: `{"access_token":"x","token_type":"Bearer"}`, wantErr: "no expires_in", wantToken: true},
		"zero expires_in":      {body: `{"access_token":"x","token_type":"Bearer","expires_in":0}`, wantErr: "not a positive", wantToken: true},
		"negative expires_in":  {body: `{"access_token":"x","token_type":"Bearer","expires_in":-5}`, wantErr: "not a positive", wantToken: true},
		"huge expires_in":      {body: `{"access_token":"x","token_type":"Bearer","expires_in":1e30}`, wantErr: "beyond any", wantToken: true},
		"text expires_in":      {body: `{"access_token":"x","token_type":"Bearer","expires_in":"soon"}`, wantErr: "not a number", wantToken: true},
		"token with a space":   {body: `{"access_token":"x y","token_type":"Bearer","expires_in":60}`, wantErr: "characters", wantToken: true},
		"access_token wrongly": {body: `{"access_token":5,"token_type":"Bearer","expires_in":60}`, wantErr: "documented JSON"},
		"jwt expired before it was issued": {body: `{"access_token":"` + expired + `","token_type":"Bearer","expires_in":60}`,
			wantErr: "expired before it was issued", wantToken: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			token, err := ParseTokenResponse([]byte(tc.body), sentAt, sentAt.Add(2*time.Second), tc.requested)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				if tc.wantToken != (token != nil && !token.AccessToken.IsZero()) {
					t.Fatalf("token returned with the error: %v, want %v", token != nil, tc.wantToken)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !token.LatestEnd.After(token.ExpiresAt) {
				t.Fatalf("latest end %v is not after the earliest %v", token.LatestEnd, token.ExpiresAt)
			}
			if !reflect.DeepEqual(token.Scopes, tc.wantScopes) || !token.ExpiresAt.Equal(tc.wantExpiry) ||
				token.ID != tc.wantID || token.Format != tc.wantFormat || token.TokenType != "Bearer" {
				t.Fatalf("got scopes %v expiry %v id %q format %q type %q", token.Scopes, token.ExpiresAt, token.ID, token.Format, token.TokenType)
			}
		})
	}
}

func TestReadClaims(t *testing.T) {
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	good := unsignedJWT(t, map[string]any{"jti": "id-1", "exp": exp.Unix(), "scope": "a:b"})
	claims, ok := ReadClaims(good)
	if !ok || claims.ID != "id-1" || !claims.ExpiresAt.Equal(exp) || !claims.HasScopes || !reflect.DeepEqual(claims.Scopes, []string{"a:b"}) ||
		claims.Unreadable != "" {
		t.Fatalf("ReadClaims(good) = %+v, %v", claims, ok)
	}
	wrongTypes := unsignedJWT(t, map[string]any{"jti": 5, "exp": "tomorrow", "scope": 7})
	if claims, ok := ReadClaims(wrongTypes); !ok || claims.ID != "" || !claims.ExpiresAt.IsZero() || claims.HasScopes ||
		!strings.Contains(claims.Unreadable, "neither a string nor a list") {
		t.Fatalf("jti and exp of the wrong type must be left empty, a scope of the wrong type unreadable, got %+v, %v", claims, ok)
	}
	for _, opaque := range []string{"", "abc", "a.b", "a.b.c.d", "..", "x.!!!.y", "eyJ9.bm90IGpzb24.x", strings.Repeat("a", maxJWTLen+1)} {
		if _, ok := ReadClaims(opaque); ok {
			t.Errorf("ReadClaims(%.20q) reported a JWT", opaque)
		}
	}
}

// jwtWithPayload builds a token shaped like a JWT around a raw payload, so
// that a test can write what encoding/json never would: a key twice.
func jwtWithPayload(payload string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"RS256"}`)) + "." + enc.EncodeToString([]byte(payload)) + ".c2ln"
}

// TestReadClaimsReadsEveryScopeFormAndRefusesAmbiguity: scope and scp, each
// a string or a list, are read alike; a claim that appears twice, in
// another case, or in two forms that disagree makes the grant unreadable
// rather than letting one form win.
func TestReadClaimsReadsEveryScopeFormAndRefusesAmbiguity(t *testing.T) {
	tests := map[string]struct {
		payload     string
		wantScopes  []string
		wantNone    bool   // no scope claim at all
		wantProblem string // part of Unreadable; "" when readable
		wantCustom  string
	}{
		"scope string":           {payload: `{"scope":"b:read a:read"}`, wantScopes: []string{"a:read", "b:read"}},
		"scope list":             {payload: `{"scope":["b:read","a:read"]}`, wantScopes: []string{"a:read", "b:read"}},
		"scp string":             {payload: `{"scp":"a:read"}`, wantScopes: []string{"a:read"}},
		"scp list":               {payload: `{"scp":["a:read","b:read"]}`, wantScopes: []string{"a:read", "b:read"}},
		"scope and scp agree":    {payload: `{"scope":"a:read b:read","scp":["b:read","a:read"]}`, wantScopes: []string{"a:read", "b:read"}},
		"no scope":               {payload: `{"jti":"x"}`, wantNone: true},
		"bi_custom kept raw":     {payload: `{"scope":"a:read","bi_custom":{"k":"v"}}`, wantScopes: []string{"a:read"}, wantCustom: `{"k":"v"}`},
		"scp wider than scope":   {payload: `{"scope":"a:read","scp":"a:read b:write"}`, wantProblem: "different scopes"},
		"scope twice":            {payload: `{"scope":"a:read","scope":"a:read b:write"}`, wantProblem: `"scope" appears more than once`},
		"bi_custom twice":        {payload: `{"scope":"a:read","bi_custom":{},"bi_custom":{"k":"v"}}`, wantProblem: "appears more than once"},
		"scope and Scope":        {payload: `{"scope":"a:read","Scope":"a:read b:write"}`, wantProblem: `"Scope" is a second form of "scope"`},
		"SCP alone":              {payload: `{"SCP":"a:read"}`, wantProblem: "second form"},
		"scope a number":         {payload: `{"scope":5}`, wantProblem: "neither a string nor a list"},
		"scope list of non-text": {payload: `{"scope":["a:read",5]}`, wantProblem: "neither a string nor a list"},
		"list entry of two":      {payload: `{"scope":["a:read b:write"]}`, wantProblem: "several scopes"},
		"scp an object":          {payload: `{"scope":"a:read","scp":{"a":1}}`, wantProblem: "neither a string nor a list"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			claims, ok := ReadClaims(jwtWithPayload(tc.payload))
			if !ok {
				t.Fatal("not read as a JWT")
			}
			if tc.wantProblem != "" {
				if !strings.Contains(claims.Unreadable, tc.wantProblem) || claims.HasScopes {
					t.Fatalf("Unreadable %q, HasScopes %v: want %q and no scopes", claims.Unreadable, claims.HasScopes, tc.wantProblem)
				}
				return
			}
			if claims.Unreadable != "" || claims.HasScopes == tc.wantNone || !reflect.DeepEqual(claims.Scopes, tc.wantScopes) {
				t.Fatalf("claims %+v, want scopes %v", claims, tc.wantScopes)
			}
			if string(claims.Custom) != tc.wantCustom {
				t.Fatalf("bi_custom %s, want %s", claims.Custom, tc.wantCustom)
			}
		})
	}
}

func TestParseErrorBody(t *testing.T) {
	secret := NewSecret("hunter2")
	tests := map[string]struct {
		status      int
		header      http.Header
		body        string
		code, desc  string
		retryAfter  time.Duration
		refused     bool
		unavailable bool
		mustNotShow string
		secret      string
	}{
		"oauth shape":      {status: 401, body: `{"error":"invalid_client","error_description":"bad client"}`, code: "invalid_client", desc: "bad client", refused: true},
		"management shape": {status: 403, body: `{"code":"forbidden","message":"missing scope","details":[]}`, code: "forbidden", desc: "missing scope", refused: true},
		"html":             {status: 502, body: `<html>bad gateway</html>`},
		"conflict":         {status: 409, body: `{"code":"conflict","message":"already exists"}`, code: "conflict", desc: "already exists", refused: true},
		"unprocessable":    {status: 422, body: `{"code":"unprocessable_entity","message":"bad claims"}`, code: "unprocessable_entity", desc: "bad claims", refused: true},
		"unavailable":      {status: 503, body: `{"code":"service_unavailable"}`, code: "service_unavailable", unavailable: true},
		"throttled with Retry-After": {status: 429, header: http.Header{"Retry-After": {"7"}}, body: `{"code":"too_many_requests","message":"slow down"}`,
			code: "too_many_requests", desc: "slow down", retryAfter: 7 * time.Second, unavailable: true},
		"throttled with RateLimit-Reset": {status: 429, header: http.Header{"Ratelimit-Reset": {"3"}}, body: `{}`, retryAfter: 3 * time.Second, unavailable: true},
		"echoed secret is scrubbed": {status: 400, body: `{"error":"invalid_request","error_description":"secret hunter2 is wrong"}`,
			code: "invalid_request", desc: "secret [redacted] is wrong", refused: true, mustNotShow: "hunter2"},
		"long description is cut": {status: 500, body: `{"code":"internal_server_error","message":"` + strings.Repeat("x", 500) + `"}`,
			code: "internal_server_error", desc: strings.Repeat("x", maxDescriptionLen) + "..."},
		"control characters": {status: 400, body: `{"error":"invalid_scope","error_description":"a\nb"}`, code: "invalid_scope", desc: "a b", refused: true},
		"echoed form-encoded secret": {status: 400, body: `{"error":"invalid_request","error_description":"got sec%2Fret+1"}`,
			code: "invalid_request", desc: "got [redacted]", refused: true, mustNotShow: "sec%2Fret+1", secret: "sec/ret 1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			secrets := []Secret{secret}
			if tc.secret != "" {
				secrets = append(secrets, NewSecret(tc.secret))
			}
			err := ParseErrorBody(CallToken, tc.status, tc.header, []byte(tc.body), time.Now(), secrets...)
			if err.Code != tc.code || err.Description != tc.desc || err.RetryAfter != tc.retryAfter {
				t.Fatalf("got code %q desc %q retry %v", err.Code, err.Description, err.RetryAfter)
			}
			if err.Refused() != tc.refused || err.Unavailable() != tc.unavailable {
				t.Fatalf("refused %v unavailable %v", err.Refused(), err.Unavailable())
			}
			if !strings.Contains(err.Error(), "token call to Beyond Identity failed") {
				t.Fatalf("message does not name the call: %v", err)
			}
			if tc.mustNotShow != "" && strings.Contains(err.Error(), tc.mustNotShow) {
				t.Fatal("the error message echoes the secret")
			}
		})
	}
}

func TestAuthURLForRegion(t *testing.T) {
	for region, want := range map[string]string{
		"us":         "https://auth-us.beyondidentity.com",
		"eu":         "https://auth-eu.beyondidentity.com",
		"us-fedramp": "https://auth.us1.beyondidentity-gov.com",
	} {
		if got, err := AuthURLForRegion(region); err != nil || got != want {
			t.Errorf("AuthURLForRegion(%q) = %q, %v", region, got, err)
		}
	}
	if _, err := AuthURLForRegion("mars"); err == nil || !strings.Contains(err.Error(), "eu, us, us-fedramp") {
		t.Errorf("unknown region error = %v", err)
	}
}

func TestIssuerURLEscapesSegments(t *testing.T) {
	got := IssuerURL("https://auth.example.com/", "t 1", "r/2", "a")
	want := "https://auth.example.com/v1/tenants/t%201/realms/r%2F2/applications/a"
	if got != want {
		t.Fatalf("IssuerURL = %q, want %q", got, want)
	}
}
