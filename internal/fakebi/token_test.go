package fakebi

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTokenClientAuthentication(t *testing.T) {
	tokenPath := issuerPath(appA) + "/token"
	tests := map[string]struct {
		req    request
		status int
		code   string // OAuth error code; empty for success
	}{
		"basic": {
			req:    request{form: mintForm(), basic: basicOf(appA)},
			status: http.StatusOK,
		},
		"basic with form-encoded values (RFC 6749 2.3.1)": {
			req: request{form: mintForm(), basic: []string{
				url.QueryEscape(appA.ClientID), url.QueryEscape(appA.ClientSecret)}},
			status: http.StatusUnauthorized, code: "invalid_client",
		},
		"form fields": {
			req:    request{form: mintForm("client_id", appA.ClientID, "client_secret", appA.ClientSecret)},
			status: http.StatusOK,
		},
		"basic and form at once": {
			req:    request{form: mintForm("client_id", appA.ClientID, "client_secret", appA.ClientSecret), basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request",
		},
		"basic and a form client_id": {
			req:    request{form: mintForm("client_id", appA.ClientID), basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request",
		},
		"no credentials": {
			req:    request{form: mintForm()},
			status: http.StatusUnauthorized, code: "invalid_client",
		},
		"wrong basic secret": {
			req:    request{form: mintForm(), basic: []string{appA.ClientID, "wrong"}},
			status: http.StatusUnauthorized, code: "invalid_client",
		},
		"unknown basic client": {
			req:    request{form: mintForm(), basic: []string{"nobody", appA.ClientSecret}},
			status: http.StatusUnauthorized, code: "invalid_client",
		},
		"another application's credentials": {
			req:    request{form: mintForm(), basic: basicOf(appB)},
			status: http.StatusUnauthorized, code: "invalid_client",
		},
		"malformed basic header": {
			req:    request{form: mintForm(), header: map[string]string{"Authorization": "Basic !!!"}},
			status: http.StatusUnauthorized, code: "invalid_client",
		},
		"wrong form secret": {
			req:    request{form: mintForm("client_id", appA.ClientID, "client_secret", "wrong")},
			status: http.StatusUnauthorized, code: "invalid_client",
		},
		"form client_id without secret": {
			req:    request{form: mintForm("client_id", appA.ClientID)},
			status: http.StatusUnauthorized, code: "invalid_client",
		},
		"bearer token is no client authentication": {
			req:    request{form: mintForm(), bearer: "some-token"},
			status: http.StatusUnauthorized, code: "invalid_client",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			tc.req.path = tokenPath
			resp := f.do(t, tc.req)
			wantNoLeak(t, resp, appA.ClientSecret, appB.ClientSecret)
			if tc.code == "" {
				if resp.status != tc.status {
					t.Fatalf("status = %d, want %d (body %s)", resp.status, tc.status, resp.body)
				}
				if n := len(f.s.Tokens()); n != 1 {
					t.Fatalf("%d tokens minted, want 1", n)
				}
				return
			}
			wantOAuthError(t, resp, tc.status, tc.code)
			if n := len(f.s.Tokens()); n != 0 {
				t.Errorf("%d tokens minted by a refused request", n)
			}
		})
	}
}

func TestTokenRequestValidation(t *testing.T) {
	okPath := issuerPath(appA) + "/token"
	tests := map[string]struct {
		req      request
		status   int
		code     string // OAuth error code
		apiCode  string // Management API error code
		contains string // in the description
	}{
		"unknown application": {
			req:    request{path: issuerPath(Application{TenantID: "tenant-1", RealmID: "realm-1", ID: "nope"}) + "/token", form: mintForm(), basic: basicOf(appA)},
			status: http.StatusNotFound, apiCode: "not_found",
		},
		"unknown tenant": {
			req:    request{path: issuerPath(Application{TenantID: "nope", RealmID: "realm-1", ID: "app-a"}) + "/token", form: mintForm(), basic: basicOf(appA)},
			status: http.StatusNotFound, apiCode: "not_found",
		},
		"unknown realm": {
			req:    request{path: issuerPath(Application{TenantID: "tenant-1", RealmID: "nope", ID: "app-a"}) + "/token", form: mintForm(), basic: basicOf(appA)},
			status: http.StatusNotFound, apiCode: "not_found",
		},
		"GET": {
			req:    request{method: http.MethodGet, path: okPath, basic: basicOf(appA)},
			status: http.StatusMethodNotAllowed, apiCode: "method_not_allowed",
		},
		"JSON body": {
			req:    request{path: okPath, body: `{"grant_type":"client_credentials"}`, contentType: "application/json", basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request", contains: "x-www-form-urlencoded",
		},
		"no content type": {
			req:    request{path: okPath, body: "grant_type=client_credentials", basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request",
		},
		"malformed form": {
			req:    request{path: okPath, body: "grant_type=%zz", contentType: "application/x-www-form-urlencoded", basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request",
		},
		"missing grant_type": {
			req:    request{path: okPath, form: url.Values{"scope": {"groups:read"}}, basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request", contains: "grant_type",
		},
		"other grant_type": {
			req:    request{path: okPath, form: url.Values{"grant_type": {"password"}}, basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "unsupported_grant_type",
		},
		"repeated parameter": {
			req:    request{path: okPath, form: url.Values{"grant_type": {"client_credentials"}, "scope": {"groups:read", "identities:read"}}, basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request", contains: "scope",
		},
		"scope not allowed": {
			req:    request{path: okPath, form: mintForm("scope", "groups:read scim:users:read"), basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_scope", contains: "scim:users:read",
		},
		"expiration_time zero": {
			req:    request{path: okPath, form: mintForm("expiration_time", "0"), basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request", contains: "expiration_time",
		},
		"expiration_time negative": {
			req:    request{path: okPath, form: mintForm("expiration_time", "-5"), basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request", contains: "expiration_time",
		},
		"expiration_time with a sign": {
			req:    request{path: okPath, form: mintForm("expiration_time", "+60"), basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request", contains: "expiration_time",
		},
		"expiration_time fractional": {
			req:    request{path: okPath, form: mintForm("expiration_time", "1.5"), basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request", contains: "expiration_time",
		},
		"expiration_time a duration": {
			req:    request{path: okPath, form: mintForm("expiration_time", "1h"), basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request", contains: "expiration_time",
		},
		"expiration_time empty": {
			req:    request{path: okPath, form: mintForm("expiration_time", ""), basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request", contains: "expiration_time",
		},
		"expiration_time above expires_after": {
			req:    request{path: okPath, form: mintForm("expiration_time", "86401"), basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request", contains: "86400",
		},
		"expiration_time overflowing": {
			req:    request{path: okPath, form: mintForm("expiration_time", "99999999999999999999999"), basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request", contains: "expiration_time",
		},
		"custom_claims not JSON": {
			req:    request{path: okPath, form: mintForm("custom_claims", "role=admin"), basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request", contains: "custom_claims",
		},
		"custom_claims an array": {
			req:    request{path: okPath, form: mintForm("custom_claims", `["a"]`), basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request", contains: "custom_claims",
		},
		"custom_claims null": {
			req:    request{path: okPath, form: mintForm("custom_claims", "null"), basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request", contains: "custom_claims",
		},
		"custom_claims a string": {
			req:    request{path: okPath, form: mintForm("custom_claims", `"x"`), basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request", contains: "custom_claims",
		},
		"custom_claims with trailing data": {
			req:    request{path: okPath, form: mintForm("custom_claims", `{"a":1} {"b":2}`), basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request", contains: "custom_claims",
		},
		"custom_claims empty": {
			req:    request{path: okPath, form: mintForm("custom_claims", ""), basic: basicOf(appA)},
			status: http.StatusBadRequest, code: "invalid_request", contains: "custom_claims",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			resp := f.do(t, tc.req)
			wantNoLeak(t, resp, appA.ClientSecret)
			if tc.apiCode != "" {
				wantAPIError(t, resp, tc.status, tc.apiCode)
			} else {
				m := wantOAuthError(t, resp, tc.status, tc.code)
				if d := m["error_description"].(string); !strings.Contains(d, tc.contains) {
					t.Errorf("error_description %q does not mention %q", d, tc.contains)
				}
			}
			if n := len(f.s.Tokens()); n != 0 {
				t.Errorf("%d tokens minted by a refused request", n)
			}
			if calls := f.s.CallsTo(OpToken); len(calls) != 1 || calls[0].Status != tc.status {
				t.Errorf("recorded calls = %+v, want one with status %d", calls, tc.status)
			}
		})
	}
}

func TestTokenMethodNotAllowedSaysAllow(t *testing.T) {
	f := newFixture(t)
	resp := f.do(t, request{method: http.MethodPut, path: issuerPath(appA) + "/token", form: mintForm(), basic: basicOf(appA)})
	wantAPIError(t, resp, http.StatusMethodNotAllowed, "method_not_allowed")
	if got := resp.header.Get("Allow"); got != http.MethodPost {
		t.Errorf("Allow = %q, want POST", got)
	}
}

func TestTokenScopes(t *testing.T) {
	narrow := appB
	narrow.ID, narrow.ClientID, narrow.NarrowScopes = "app-narrow", "client-narrow", true
	wide := appB
	wide.ID, wide.ClientID, wide.WidenScopes = "app-wide", "client-wide", []string{"tokens:delete", "scim:users:read", "tokens:delete"}
	tests := map[string]struct {
		app   Application
		scope *string // nil: parameter omitted
		want  string
		code  string // OAuth error, if any
	}{
		"omitted: every allowed scope, sorted": {app: appB, want: "groups:read identities:read"},
		"empty: every allowed scope":           {app: appB, scope: ptr(""), want: "groups:read identities:read"},
		"only spaces: every allowed scope":     {app: appB, scope: ptr("  "), want: "groups:read identities:read"},
		"subset":                               {app: appA, scope: ptr("tokens:read"), want: "tokens:read"},
		"sorted":                               {app: appA, scope: ptr("tokens:read groups:read"), want: "groups:read tokens:read"},
		"duplicates collapse":                  {app: appA, scope: ptr("groups:read groups:read tokens:read"), want: "groups:read tokens:read"},
		"extra spaces ignored":                 {app: appA, scope: ptr(" groups:read   tokens:read "), want: "groups:read tokens:read"},
		"refused":                              {app: appB, scope: ptr("groups:read tokens:delete"), code: "invalid_scope"},
		"narrowed":                             {app: narrow, scope: ptr("groups:read tokens:delete"), want: "groups:read"},
		"narrowed to nothing":                  {app: narrow, scope: ptr("tokens:delete"), code: "invalid_scope"},
		"case matters":                         {app: appB, scope: ptr("Groups:Read"), code: "invalid_scope"},
		"widened":                              {app: wide, scope: ptr("groups:read"), want: "groups:read scim:users:read tokens:delete"},
		"widened, omitted":                     {app: wide, want: "groups:read identities:read scim:users:read tokens:delete"},
		"widened with an allowed scope":        {app: wide, scope: ptr("identities:read"), want: "identities:read scim:users:read tokens:delete"},
		"widened, refused still refused":       {app: wide, scope: ptr("tokens:delete"), code: "invalid_scope"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.s.AddApplication(narrow)
			f.s.AddApplication(wide)
			form := mintForm()
			if tc.scope != nil {
				form.Set("scope", *tc.scope)
			}
			resp := f.do(t, request{path: issuerPath(tc.app) + "/token", form: form, basic: basicOf(tc.app)})
			if tc.code != "" {
				wantOAuthError(t, resp, http.StatusBadRequest, tc.code)
				return
			}
			if resp.status != http.StatusOK {
				t.Fatalf("status %d, body %s", resp.status, resp.body)
			}
			if got := resp.json(t)["scope"]; got != tc.want {
				t.Errorf("scope = %q, want %q", got, tc.want)
			}
			tok := f.s.Tokens()[0]
			if got := strings.Join(tok.Scopes, " "); got != tc.want {
				t.Errorf("recorded scopes = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestBasicCredentialsAreComparedRaw checks the documented Basic
// credentials, base64 of client_id:client_secret exactly as `curl -u` sends
// them: a client that form-encodes a secret holding + / = % first, as RFC
// 6749 §2.3.1 says, is refused, while the same secret in form fields works.
func TestBasicCredentialsAreComparedRaw(t *testing.T) {
	const secret = "a+b/c=d%e"
	app := appB
	app.ID, app.ClientID, app.ClientSecret = "app-special", "client/special+1", secret
	encoded := []string{url.QueryEscape(app.ClientID), url.QueryEscape(secret)}
	tests := map[string]struct {
		req    request
		status int
	}{
		"raw basic":          {request{form: mintForm(), basic: []string{app.ClientID, secret}}, http.StatusOK},
		"form-encoded basic": {request{form: mintForm(), basic: encoded}, http.StatusUnauthorized},
		"only the secret form-encoded": {
			request{form: mintForm(), basic: []string{app.ClientID, encoded[1]}}, http.StatusUnauthorized,
		},
		"form fields": {request{form: mintForm("client_id", app.ClientID, "client_secret", secret)}, http.StatusOK},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.s.AddApplication(app)
			tc.req.path = issuerPath(app) + "/token"
			resp := f.do(t, tc.req)
			if tc.status != http.StatusOK {
				wantOAuthError(t, resp, tc.status, "invalid_client")
				return
			}
			if resp.status != http.StatusOK {
				t.Fatalf("status %d, body %s", resp.status, resp.body)
			}
			if c := f.s.CallsTo(OpToken)[0]; c.BasicAuth && c.BasicPassword != secret {
				t.Errorf("recorded Basic password %q, want %q", c.BasicPassword, secret)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestTokenLifetime(t *testing.T) {
	noLimit := appB
	noLimit.ExpiresAfter = 0
	tests := map[string]struct {
		app  Application
		ask  string
		want int64
	}{
		"default is expires_after":         {app: appA, want: 86400},
		"zero expires_after means 90 days": {app: noLimit, want: 7776000},
		"asked lifetime":                   {app: appA, ask: "60", want: 60},
		"one second":                       {app: appA, ask: "1", want: 1},
		"exactly expires_after":            {app: appA, ask: "86400", want: 86400},
		"leading zeros":                    {app: appA, ask: "0060", want: 60},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			var pairs []string
			if tc.ask != "" {
				pairs = []string{"expiration_time", tc.ask}
			}
			got := f.mint(t, tc.app, pairs...)
			if got["expires_in"] != float64(tc.want) {
				t.Errorf("expires_in = %v, want %d", got["expires_in"], tc.want)
			}
			tok := f.s.Tokens()[0]
			if !tok.IssuedAt.Equal(f.clock.Now()) {
				t.Errorf("IssuedAt = %v, want the clock's %v", tok.IssuedAt, f.clock.Now())
			}
			if d := tok.ExpiresAt.Sub(tok.IssuedAt); d != time.Duration(tc.want)*time.Second {
				t.Errorf("ExpiresAt - IssuedAt = %v, want %ds", d, tc.want)
			}
		})
	}
}

func TestTokenResponse(t *testing.T) {
	f := newFixture(t)
	resp := f.do(t, request{path: issuerPath(appA) + "/token", form: mintForm("scope", "groups:read"), basic: basicOf(appA)})
	if resp.status != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.status, resp.body)
	}
	if got := resp.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	m := resp.json(t)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	want := map[string]bool{"access_token": true, "token_type": true, "expires_in": true, "scope": true}
	if len(m) != len(want) {
		t.Errorf("answer has fields %v, want exactly access_token, token_type, expires_in, scope", keys)
	}
	if m["token_type"] != "Bearer" {
		t.Errorf("token_type = %v, want Bearer", m["token_type"])
	}
	tok, ok := f.s.TokenByValue(m["access_token"].(string))
	if !ok {
		t.Fatal("the access token is not recorded")
	}
	wantTok := Token{
		ID: tok.ID, Value: m["access_token"].(string), Format: SelfContained,
		TenantID: appA.TenantID, RealmID: appA.RealmID, ApplicationID: appA.ID, ClientID: appA.ClientID,
		Scopes:   []string{"groups:read"},
		IssuedAt: f.clock.Now(), ExpiresAt: f.clock.Now().Add(24 * time.Hour),
	}
	if !reflect.DeepEqual(tok, wantTok) {
		t.Errorf("recorded token = %+v, want %+v", tok, wantTok)
	}
}

func TestTokenCustomClaimsRecorded(t *testing.T) {
	f := newFixture(t)
	f.mint(t, appA, "custom_claims", `{"role":"sync","n":12345678901234567890,"nested":{"a":[1,"b"]}}`)
	got := f.s.Tokens()[0].CustomClaims
	if got["role"] != "sync" || got["n"].(interface{ String() string }).String() != "12345678901234567890" {
		t.Errorf("custom claims = %#v", got)
	}
	// Copies handed out must not alias the fake's state.
	got["nested"].(map[string]any)["a"].([]any)[0] = "changed"
	if again := f.s.Tokens()[0].CustomClaims; again["nested"].(map[string]any)["a"].([]any)[0] == "changed" {
		t.Error("Tokens returned a copy that shares the custom claims")
	}
}

func TestTokenCallRecorded(t *testing.T) {
	f := newFixture(t)
	f.mint(t, appA, "scope", "groups:read", "expiration_time", "60")
	calls := f.s.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls recorded, want 1", len(calls))
	}
	c := calls[0]
	want := Call{
		Op: OpToken, Method: http.MethodPost, Path: issuerPath(appA) + "/token",
		ContentType: "application/x-www-form-urlencoded",
		Form:        url.Values{"grant_type": {"client_credentials"}, "scope": {"groups:read"}, "expiration_time": {"60"}},
		BasicAuth:   true, BasicUser: appA.ClientID, BasicPassword: appA.ClientSecret,
		Status: http.StatusOK, At: f.clock.Now(),
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("call = %+v\nwant   %+v", c, want)
	}
}

func TestOutliveMakesTokensLiveLongerThanAsked(t *testing.T) {
	f := newFixture(t)
	app := appA
	app.ID, app.ClientID, app.Outlive = "app-outlive", "client-outlive", time.Hour
	f.s.AddApplication(app)
	answer := f.mint(t, app, "expiration_time", "60")
	if answer["expires_in"] != float64(3660) {
		t.Fatalf("expires_in %v, want the 60 seconds asked for and an hour", answer["expires_in"])
	}
	tokens := f.s.Tokens()
	if life := tokens[len(tokens)-1].ExpiresAt.Sub(tokens[len(tokens)-1].IssuedAt); life != time.Hour+time.Minute {
		t.Fatalf("the token lives %v", life)
	}
}

func TestCapLifetimeIssuesShorterTokensThanAsked(t *testing.T) {
	f := newFixture(t)
	app := appA
	app.ID, app.ClientID, app.CapLifetime = "app-cap", "client-cap", time.Hour
	f.s.AddApplication(app)
	for asked, want := range map[string]float64{"86400": 3600, "60": 60} {
		answer := f.mint(t, app, "expiration_time", asked)
		if answer["expires_in"] != want {
			t.Fatalf("asked %s s: expires_in %v, want %v", asked, answer["expires_in"], want)
		}
		tokens := f.s.Tokens()
		if life := tokens[len(tokens)-1].ExpiresAt.Sub(tokens[len(tokens)-1].IssuedAt); life != time.Duration(want)*time.Second {
			t.Fatalf("asked %s s: the token lives %v", asked, life)
		}
	}
}
