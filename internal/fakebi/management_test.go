package fakebi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"
)

// listQueryOf is the documented query of the list call for app.
func listQueryOf(app Application, extra ...string) string {
	q := url.Values{"principal_type": {"application"}, "principal_id": {app.ID}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return "?" + q.Encode()
}

// listPage is the list call's answer.
type listPage struct {
	Tokens []struct {
		ID          string   `json:"id"`
		DisplayName string   `json:"display_name"`
		Scopes      []string `json:"scopes"`
		TokenSuffix string   `json:"token_suffix"`
		TokenFormat string   `json:"token_format"`
		Expires     string   `json:"expires"`
		IssuedAt    string   `json:"issued_at"`
		TokenType   string   `json:"token_type"`
	} `json:"tokens"`
	TotalSize     int    `json:"total_size"`
	NextPageToken string `json:"next_page_token"`
}

func (f *fixture) list(t *testing.T, bearer, query string) listPage {
	t.Helper()
	resp := f.do(t, request{method: http.MethodGet, path: tokensPath(appA) + query, bearer: bearer})
	if resp.status != http.StatusOK {
		t.Fatalf("list: status %d, body %s", resp.status, resp.body)
	}
	var page listPage
	if err := json.Unmarshal(resp.body, &page); err != nil {
		t.Fatalf("list answer %s: %v", resp.body, err)
	}
	return page
}

func TestListTokens(t *testing.T) {
	f := newFixture(t)
	admin := f.mintValue(t, appA, "scope", "tokens:read tokens:delete")
	f.mintValue(t, appB) // another application's token is not listed
	short := f.mintValue(t, appA, "scope", "groups:read", "expiration_time", "60")
	revoked := f.mintValue(t, appA, "scope", "groups:read")
	f.do(t, request{path: issuerPath(appA) + "/revoke", form: url.Values{"token": {revoked}}, basic: basicOf(appA)})
	kept := f.mintValue(t, appA, "scope", "identities:read groups:read", "expiration_time", "3600")
	f.clock.Advance(time.Minute) // short expires

	page := f.list(t, admin, listQueryOf(appA))
	if page.TotalSize != 2 || len(page.Tokens) != 2 || page.NextPageToken != "" {
		t.Fatalf("page = %+v, want the admin and the kept token only", page)
	}
	got := page.Tokens[1]
	tok, _ := f.s.TokenByValue(kept)
	if got.ID != tok.ID || got.DisplayName == "" || got.TokenSuffix != kept[len(kept)-4:] ||
		got.TokenFormat != "self_contained" || got.TokenType != "access" ||
		!reflect.DeepEqual(got.Scopes, []string{"groups:read", "identities:read"}) {
		t.Errorf("listed token = %+v", got)
	}
	if got.IssuedAt != tok.IssuedAt.Format(time.RFC3339) || got.Expires != tok.ExpiresAt.Format(time.RFC3339) {
		t.Errorf("listed times %s, %s; want %s, %s", got.IssuedAt, got.Expires, tok.IssuedAt, tok.ExpiresAt)
	}
	resp := f.do(t, request{method: http.MethodGet, path: tokensPath(appA) + listQueryOf(appA), bearer: admin})
	wantNoLeak(t, resp, admin, kept, short, revoked)
}

func TestListTokensPaging(t *testing.T) {
	f := newFixture(t)
	admin := f.mintValue(t, appA, "scope", "tokens:read tokens:delete")
	for range 4 {
		f.mintValue(t, appA)
	}
	all := f.s.Tokens()

	first := f.list(t, admin, listQueryOf(appA, "page_size", "2"))
	if first.TotalSize != 5 || len(first.Tokens) != 2 || first.NextPageToken == "" {
		t.Fatalf("first page = %+v", first)
	}
	// Deleting a token already shown must not shift the next page.
	f.do(t, request{method: http.MethodDelete, path: tokensPath(appA) + "/" + all[1].ID, bearer: admin})
	second := f.list(t, admin, listQueryOf(appA, "page_size", "2", "page_token", first.NextPageToken))
	third := f.list(t, admin, listQueryOf(appA, "page_size", "2", "page_token", second.NextPageToken))
	if second.TotalSize != 4 || len(second.Tokens) != 2 || second.NextPageToken == "" ||
		len(third.Tokens) != 1 || third.NextPageToken != "" {
		t.Fatalf("second page %+v, third page %+v", second, third)
	}
	ids := []string{first.Tokens[0].ID, first.Tokens[1].ID, second.Tokens[0].ID, second.Tokens[1].ID, third.Tokens[0].ID}
	want := []string{all[0].ID, all[1].ID, all[2].ID, all[3].ID, all[4].ID}
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("paged ids %v, want %v", ids, want)
	}
}

func TestListTokensErrors(t *testing.T) {
	tests := map[string]struct {
		method string
		path   string
		bearer func(t *testing.T, f *fixture) string
		status int
		code   string
	}{
		"no bearer": {
			bearer: func(t *testing.T, f *fixture) string { return "" },
			status: http.StatusUnauthorized, code: "unauthorized",
		},
		"unknown bearer": {
			bearer: func(t *testing.T, f *fixture) string { return "made-up" },
			status: http.StatusUnauthorized, code: "unauthorized",
		},
		"revoked bearer": {
			bearer: func(t *testing.T, f *fixture) string {
				v := f.mintValue(t, appA)
				f.do(t, request{path: issuerPath(appA) + "/revoke", form: url.Values{"token": {v}}, basic: basicOf(appA)})
				return v
			},
			status: http.StatusUnauthorized, code: "unauthorized",
		},
		"expired bearer": {
			bearer: func(t *testing.T, f *fixture) string {
				v := f.mintValue(t, appA, "expiration_time", "5")
				f.clock.Advance(5 * time.Second)
				return v
			},
			status: http.StatusUnauthorized, code: "unauthorized",
		},
		"bearer without tokens:read": {
			bearer: func(t *testing.T, f *fixture) string { return f.mintValue(t, appA, "scope", "tokens:delete") },
			status: http.StatusForbidden, code: "forbidden",
		},
		"bearer of another tenant": {
			bearer: func(t *testing.T, f *fixture) string { return f.mintValue(t, appOtherTenant) },
			status: http.StatusForbidden, code: "forbidden",
		},
		"unknown application": {
			path:   issuerPath(Application{TenantID: "tenant-1", RealmID: "realm-1", ID: "nope"}) + "/tokens" + listQueryOf(Application{ID: "nope"}),
			status: http.StatusNotFound, code: "not_found",
		},
		"POST": {
			method: http.MethodPost,
			status: http.StatusMethodNotAllowed, code: "method_not_allowed",
		},
		"missing principal_type": {
			path:   tokensPath(appA) + "?principal_id=app-a",
			status: http.StatusBadRequest, code: "bad_request",
		},
		"other principal_id": {
			path:   tokensPath(appA) + listQueryOf(appB),
			status: http.StatusBadRequest, code: "bad_request",
		},
		"page_size 0": {
			path:   tokensPath(appA) + listQueryOf(appA, "page_size", "0"),
			status: http.StatusBadRequest, code: "bad_request",
		},
		"page_size 101": {
			path:   tokensPath(appA) + listQueryOf(appA, "page_size", "101"),
			status: http.StatusBadRequest, code: "bad_request",
		},
		"page_size not a number": {
			path:   tokensPath(appA) + listQueryOf(appA, "page_size", "ten"),
			status: http.StatusBadRequest, code: "bad_request",
		},
		"bad page_token": {
			path:   tokensPath(appA) + listQueryOf(appA, "page_token", "!!"),
			status: http.StatusBadRequest, code: "bad_request",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			bearer := f.mintValue(t, appA)
			if tc.bearer != nil {
				bearer = tc.bearer(t, f)
			}
			req := request{method: tc.method, path: tc.path, bearer: bearer}
			if req.method == "" {
				req.method = http.MethodGet
			}
			if req.path == "" {
				req.path = tokensPath(appA) + listQueryOf(appA)
			}
			resp := f.do(t, req)
			wantAPIError(t, resp, tc.status, tc.code)
			wantNoLeak(t, resp, bearer)
			if tc.status == http.StatusUnauthorized && resp.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestListTokensDefaultPageSize(t *testing.T) {
	f := newFixture(t)
	admin := f.mintValue(t, appA)
	for range 100 {
		f.mintValue(t, appRef)
		f.mintValue(t, appA, "scope", "groups:read")
	}
	page := f.list(t, admin, listQueryOf(appA))
	if page.TotalSize != 101 || len(page.Tokens) != 100 || page.NextPageToken == "" {
		t.Errorf("page has %d of %d tokens, next %q; want 100 of 101 and a next page", len(page.Tokens), page.TotalSize, page.NextPageToken)
	}
}

func TestDeleteToken(t *testing.T) {
	tests := map[string]struct {
		bearerScope string
		victimApp   Application
		id          func(victim Token) string
		status      int
		code        string // empty: success
	}{
		"own token":               {bearerScope: "tokens:delete", victimApp: appA, status: http.StatusOK},
		"without the scope":       {bearerScope: "tokens:read", victimApp: appA, status: http.StatusForbidden, code: "forbidden"},
		"unknown id":              {bearerScope: "tokens:delete", victimApp: appA, id: func(Token) string { return "nope" }, status: http.StatusNotFound, code: "not_found"},
		"another app's id":        {bearerScope: "tokens:delete", victimApp: appB, status: http.StatusNotFound, code: "not_found"},
		"a token prefix is no id": {bearerScope: "tokens:delete", victimApp: appA, id: func(v Token) string { return v.Value[:20] }, status: http.StatusNotFound, code: "not_found"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			bearer := f.mintValue(t, appA, "scope", tc.bearerScope)
			victim, _ := f.s.TokenByValue(f.mintValue(t, tc.victimApp))
			id := victim.ID
			if tc.id != nil {
				id = tc.id(victim)
			}
			resp := f.do(t, request{method: http.MethodDelete, path: tokensPath(appA) + "/" + id, bearer: bearer})
			if tc.code != "" {
				wantAPIError(t, resp, tc.status, tc.code)
				if !f.s.IsActive(victim.Value) {
					t.Error("a refused delete revoked the token")
				}
				return
			}
			if resp.status != tc.status || len(resp.body) != 0 {
				t.Fatalf("status %d body %q, want 200 and an empty body", resp.status, resp.body)
			}
			if f.s.IsActive(victim.Value) {
				t.Error("deleted token is still active")
			}
			again := f.do(t, request{method: http.MethodDelete, path: tokensPath(appA) + "/" + id, bearer: bearer})
			wantAPIError(t, again, http.StatusNotFound, "not_found")
		})
	}
}

func TestDeleteTokenErrors(t *testing.T) {
	f := newFixture(t)
	bearer := f.mintValue(t, appA)
	victim := f.s.Tokens()[0]
	tests := map[string]struct {
		req    request
		status int
		code   string
	}{
		"GET":                   {request{method: http.MethodGet, path: tokensPath(appA) + "/" + victim.ID, bearer: bearer}, http.StatusMethodNotAllowed, "method_not_allowed"},
		"no bearer":             {request{method: http.MethodDelete, path: tokensPath(appA) + "/" + victim.ID}, http.StatusUnauthorized, "unauthorized"},
		"basic is not a bearer": {request{method: http.MethodDelete, path: tokensPath(appA) + "/" + victim.ID, basic: basicOf(appA)}, http.StatusUnauthorized, "unauthorized"},
		"other tenant":          {request{method: http.MethodDelete, path: "/v1/tenants/tenant-2/realms/realm-1/applications/app-d/tokens/" + victim.ID, bearer: bearer}, http.StatusForbidden, "forbidden"},
		"unknown app":           {request{method: http.MethodDelete, path: "/v1/tenants/tenant-1/realms/realm-1/applications/nope/tokens/" + victim.ID, bearer: bearer}, http.StatusNotFound, "not_found"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			wantAPIError(t, f.do(t, tc.req), tc.status, tc.code)
			if !f.s.IsActive(victim.Value) {
				t.Fatal("a refused delete revoked the token")
			}
		})
	}
}
