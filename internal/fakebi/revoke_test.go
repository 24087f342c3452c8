package fakebi

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

func TestRevoke(t *testing.T) {
	// Each case mints a victim token and sometimes a bearer token, then
	// revokes the victim with the case's request.
	tests := map[string]struct {
		victimApp   Application
		setup       func(t *testing.T, f *fixture, victim string)
		req         func(t *testing.T, f *fixture, victim string) request
		wantRevoked bool
	}{
		"basic auth revokes own token": {
			victimApp: appA,
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{form: url.Values{"token": {victim}}, basic: basicOf(appA)}
			},
			wantRevoked: true,
		},
		"form auth revokes own token": {
			victimApp: appA,
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{form: url.Values{"token": {victim}, "client_id": {appA.ClientID}, "client_secret": {appA.ClientSecret}}}
			},
			wantRevoked: true,
		},
		"token_type_hint is ignored": {
			victimApp: appA,
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{form: url.Values{"token": {victim}, "token_type_hint": {"refresh_token"}}, basic: basicOf(appA)}
			},
			wantRevoked: true,
		},
		"referential token": {
			victimApp: appRef,
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{path: issuerPath(appRef) + "/revoke", form: url.Values{"token": {victim}}, basic: basicOf(appRef)}
			},
			wantRevoked: true,
		},
		"another application's token is left alone": {
			victimApp: appB,
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{form: url.Values{"token": {victim}}, basic: basicOf(appA)}
			},
		},
		"own token at another application's endpoint is left alone": {
			victimApp: appA,
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{path: issuerPath(appB) + "/revoke", form: url.Values{"token": {victim}}, basic: basicOf(appB)}
			},
		},
		"unknown token": {
			victimApp: appA,
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{form: url.Values{"token": {"not-a-token"}}, basic: basicOf(appA)}
			},
		},
		"already revoked": {
			victimApp: appA,
			setup: func(t *testing.T, f *fixture, victim string) {
				f.do(t, request{path: issuerPath(appA) + "/revoke", form: url.Values{"token": {victim}}, basic: basicOf(appA)})
			},
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{form: url.Values{"token": {victim}}, basic: basicOf(appA)}
			},
			wantRevoked: true,
		},
		"expired": {
			victimApp: appA,
			setup: func(t *testing.T, f *fixture, victim string) {
				f.clock.Advance(25 * time.Hour)
			},
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{form: url.Values{"token": {victim}}, basic: basicOf(appA)}
			},
			wantRevoked: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			victim := f.mintValue(t, tc.victimApp)
			if tc.setup != nil {
				tc.setup(t, f, victim)
			}
			req := tc.req(t, f, victim)
			if req.path == "" {
				req.path = issuerPath(appA) + "/revoke"
			}
			resp := f.do(t, req)
			if resp.status != http.StatusOK || len(resp.body) != 0 {
				t.Fatalf("status %d body %q, want 200 with an empty body", resp.status, resp.body)
			}
			tok, _ := f.s.TokenByValue(victim)
			if revoked := !tok.RevokedAt.IsZero(); revoked != tc.wantRevoked {
				t.Errorf("revoked = %v, want %v", revoked, tc.wantRevoked)
			}
			if tc.wantRevoked && f.s.IsActive(victim) {
				t.Error("revoked token is still active")
			}
		})
	}
}

func TestRevokeKeepsFirstRevocationTime(t *testing.T) {
	f := newFixture(t)
	victim := f.mintValue(t, appA)
	revoke := request{path: issuerPath(appA) + "/revoke", form: url.Values{"token": {victim}}, basic: basicOf(appA)}
	f.do(t, revoke)
	first, _ := f.s.TokenByValue(victim)
	f.clock.Advance(time.Minute)
	f.do(t, revoke)
	second, _ := f.s.TokenByValue(victim)
	if !first.RevokedAt.Equal(f.clock.Now().Add(-time.Minute)) || !second.RevokedAt.Equal(first.RevokedAt) {
		t.Errorf("RevokedAt %v then %v, want the first revocation's time", first.RevokedAt, second.RevokedAt)
	}
}

func TestRevokeErrors(t *testing.T) {
	tests := map[string]struct {
		req     func(t *testing.T, f *fixture, victim string) request
		status  int
		code    string
		apiCode string
	}{
		"no authentication": {
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{form: url.Values{"token": {victim}}}
			},
			status: http.StatusUnauthorized, code: "invalid_client",
		},
		"wrong basic secret": {
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{form: url.Values{"token": {victim}}, basic: []string{appA.ClientID, "wrong"}}
			},
			status: http.StatusUnauthorized, code: "invalid_client",
		},
		"another application's credentials": {
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{form: url.Values{"token": {victim}}, basic: basicOf(appB)}
			},
			status: http.StatusUnauthorized, code: "invalid_client",
		},
		"wrong form secret": {
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{form: url.Values{"token": {victim}, "client_id": {appA.ClientID}, "client_secret": {"x"}}}
			},
			status: http.StatusUnauthorized, code: "invalid_client",
		},
		"basic and form": {
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{form: url.Values{"token": {victim}, "client_secret": {appA.ClientSecret}}, basic: basicOf(appA)}
			},
			status: http.StatusBadRequest, code: "invalid_request",
		},
		"bearer with tokens:delete is no client authentication": {
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{form: url.Values{"token": {victim}}, bearer: f.mintValue(t, appA, "scope", "tokens:delete")}
			},
			status: http.StatusUnauthorized, code: "invalid_client",
		},
		"form-encoded basic secret": {
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{form: url.Values{"token": {victim}}, basic: []string{appA.ClientID, url.QueryEscape(appA.ClientSecret)}}
			},
			status: http.StatusUnauthorized, code: "invalid_client",
		},
		"missing token": {
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{form: url.Values{}, basic: basicOf(appA)}
			},
			status: http.StatusBadRequest, code: "invalid_request",
		},
		"JSON body": {
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{body: `{"token":"x"}`, contentType: "application/json", basic: basicOf(appA)}
			},
			status: http.StatusBadRequest, code: "invalid_request",
		},
		"GET": {
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{method: http.MethodGet, basic: basicOf(appA)}
			},
			status: http.StatusMethodNotAllowed, apiCode: "method_not_allowed",
		},
		"unknown application": {
			req: func(t *testing.T, f *fixture, victim string) request {
				return request{path: issuerPath(Application{TenantID: "tenant-1", RealmID: "realm-1", ID: "nope"}) + "/revoke",
					form: url.Values{"token": {victim}}, basic: basicOf(appA)}
			},
			status: http.StatusNotFound, apiCode: "not_found",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			victim := f.mintValue(t, appA)
			req := tc.req(t, f, victim)
			if req.path == "" {
				req.path = issuerPath(appA) + "/revoke"
			}
			resp := f.do(t, req)
			wantNoLeak(t, resp, victim, appA.ClientSecret)
			if tc.apiCode != "" {
				wantAPIError(t, resp, tc.status, tc.apiCode)
			} else {
				wantOAuthError(t, resp, tc.status, tc.code)
			}
			if !f.s.IsActive(victim) {
				t.Error("a refused revocation revoked the token")
			}
		})
	}
}
