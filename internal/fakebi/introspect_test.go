package fakebi

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"
)

func TestIntrospectActive(t *testing.T) {
	tests := map[string]struct {
		app   Application
		pairs []string
		auth  func(t *testing.T, f *fixture) request // credentials of the caller
	}{
		"self-contained, basic auth": {
			app: appA, pairs: []string{"scope", "groups:read", "expiration_time", "300"},
			auth: func(t *testing.T, f *fixture) request { return request{basic: basicOf(appA)} },
		},
		"self-contained with custom claims": {
			app: appA, pairs: []string{"scope", "groups:read", "expiration_time", "300", "custom_claims", `{"team":"sre"}`},
			auth: func(t *testing.T, f *fixture) request { return request{basic: basicOf(appA)} },
		},
		"referential, basic auth": {
			app: appRef, pairs: []string{"scope", "identities:read", "expiration_time", "300"},
			auth: func(t *testing.T, f *fixture) request { return request{basic: basicOf(appRef)} },
		},
		"referential, form auth": {
			app: appRef, pairs: []string{"scope", "identities:read", "expiration_time", "300"},
			auth: func(t *testing.T, f *fixture) request {
				return request{form: url.Values{"client_id": {appRef.ClientID}, "client_secret": {appRef.ClientSecret}}}
			},
		},
		"another application of the realm, its own token": {
			app: appB, pairs: []string{"scope", "groups:read", "expiration_time", "300"},
			auth: func(t *testing.T, f *fixture) request { return request{basic: basicOf(appB)} },
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			value := f.mintValue(t, tc.app, tc.pairs...)
			tok, _ := f.s.TokenByValue(value)
			req := tc.auth(t, f)
			req.path = introspectPath(tc.app)
			if req.form == nil {
				req.form = url.Values{}
			}
			req.form.Set("token", value)
			resp := f.do(t, req)
			if resp.status != http.StatusOK {
				t.Fatalf("status %d, body %s", resp.status, resp.body)
			}
			wantNoLeak(t, resp, value)
			iat := float64(f.clock.Now().Unix())
			principal := "tenants/" + tc.app.TenantID + "/realms/" + tc.app.RealmID + "/applications/" + tc.app.ID
			want := map[string]any{
				"active": true, "scope": tc.pairs[1], "client_id": tc.app.ClientID, "token_type": "Bearer",
				"exp": iat + 300, "iat": iat, "nbf": iat, "jti": tok.ID, "sub": tc.app.ClientID,
				"aud": []any{"beyondidentity"}, "iss": f.ts.URL + issuerPath(tc.app),
				"bi_t": tc.app.TenantID, "bi_p": principal, "azp": principal, "bi_r": "*",
			}
			if tok.CustomClaims != nil {
				want["bi_custom"] = map[string]any{"team": "sre"}
			}
			if got := resp.json(t); !reflect.DeepEqual(got, want) {
				t.Errorf("introspection = %v\nwant            %v", got, want)
			}
		})
	}
}

func TestIntrospectInactive(t *testing.T) {
	tests := map[string]struct {
		prepare func(t *testing.T, f *fixture) (token string, caller request)
	}{
		"unknown token": {
			prepare: func(t *testing.T, f *fixture) (string, request) {
				return "not-a-token", request{basic: basicOf(appA)}
			},
		},
		"revoked": {
			prepare: func(t *testing.T, f *fixture) (string, request) {
				v := f.mintValue(t, appA)
				f.do(t, request{path: issuerPath(appA) + "/revoke", form: url.Values{"token": {v}}, basic: basicOf(appA)})
				return v, request{basic: basicOf(appA)}
			},
		},
		"expired": {
			prepare: func(t *testing.T, f *fixture) (string, request) {
				v := f.mintValue(t, appA, "expiration_time", "60")
				f.clock.Advance(60 * time.Second)
				return v, request{basic: basicOf(appA)}
			},
		},
		"another application's token": {
			prepare: func(t *testing.T, f *fixture) (string, request) {
				return f.mintValue(t, appB), request{basic: basicOf(appA)}
			},
		},
		"expired by the server's clock only": {
			prepare: func(t *testing.T, f *fixture) (string, request) {
				v := f.mintValue(t, appA, "expiration_time", "60")
				f.s.SetClock(func() time.Time { return f.clock.Now().Add(time.Minute) })
				return v, request{basic: basicOf(appA)}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			value, req := tc.prepare(t, f)
			req.path = introspectPath(appA)
			req.form = url.Values{"token": {value}}
			resp := f.do(t, req)
			if resp.status != http.StatusOK {
				t.Fatalf("status %d, body %s", resp.status, resp.body)
			}
			if got := resp.json(t); !reflect.DeepEqual(got, map[string]any{"active": false}) {
				t.Errorf("introspection = %v, want only active false", got)
			}
		})
	}
}

func TestIntrospectErrors(t *testing.T) {
	tests := map[string]struct {
		req           func(t *testing.T, f *fixture) request
		status        int
		code, apiCode string
	}{
		"no authentication": {
			req:    func(t *testing.T, f *fixture) request { return request{form: url.Values{"token": {"x"}}} },
			status: http.StatusUnauthorized, code: "invalid_client",
		},
		"wrong secret": {
			req: func(t *testing.T, f *fixture) request {
				return request{form: url.Values{"token": {"x"}}, basic: []string{appA.ClientID, "nope"}}
			},
			status: http.StatusUnauthorized, code: "invalid_client",
		},
		"application of another realm": {
			req: func(t *testing.T, f *fixture) request {
				return request{form: url.Values{"token": {"x"}}, basic: basicOf(appOtherRealm)}
			},
			status: http.StatusUnauthorized, code: "invalid_client",
		},
		"bearer is no client authentication": {
			req: func(t *testing.T, f *fixture) request {
				return request{form: url.Values{"token": {"x"}}, bearer: f.mintValue(t, appA, "scope", "tokens:introspect")}
			},
			status: http.StatusUnauthorized, code: "invalid_client",
		},
		"missing token": {
			req:    func(t *testing.T, f *fixture) request { return request{form: url.Values{}, basic: basicOf(appA)} },
			status: http.StatusBadRequest, code: "invalid_request",
		},
		"not a form": {
			req: func(t *testing.T, f *fixture) request {
				return request{body: "token=x", contentType: "text/plain", basic: basicOf(appA)}
			},
			status: http.StatusBadRequest, code: "invalid_request",
		},
		"GET": {
			req:    func(t *testing.T, f *fixture) request { return request{method: http.MethodGet, basic: basicOf(appA)} },
			status: http.StatusMethodNotAllowed, apiCode: "method_not_allowed",
		},
		"unknown realm": {
			req: func(t *testing.T, f *fixture) request {
				return request{path: "/v1/tenants/tenant-1/realms/nope/introspect", form: url.Values{"token": {"x"}}, basic: basicOf(appA)}
			},
			status: http.StatusNotFound, apiCode: "not_found",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			req := tc.req(t, f)
			if req.path == "" {
				req.path = introspectPath(appA)
			}
			resp := f.do(t, req)
			if tc.apiCode != "" {
				wantAPIError(t, resp, tc.status, tc.apiCode)
				return
			}
			wantOAuthError(t, resp, tc.status, tc.code)
		})
	}
}
