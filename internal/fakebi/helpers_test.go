package fakebi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// secretWithSpecials holds every character that form encoding changes and
// the plugin allows in a secret.
const secretWithSpecials = "a+b/c=d%e"

// The applications every fixture holds. appA and appB share a realm,
// appOtherRealm and appOtherTenant do not.
var (
	appA = Application{
		TenantID: "tenant-1", RealmID: "realm-1", ID: "app-a",
		ClientID: "client-a", ClientSecret: secretWithSpecials,
		AllowedScopes: []string{"tokens:read", "tokens:delete", "tokens:introspect", "identities:read", "groups:read"},
		ExpiresAfter:  24 * time.Hour,
	}
	appB = Application{
		TenantID: "tenant-1", RealmID: "realm-1", ID: "app-b",
		ClientID: "client-b", ClientSecret: "secret-b",
		AllowedScopes: []string{"identities:read", "groups:read"},
	}
	appRef = Application{
		TenantID: "tenant-1", RealmID: "realm-1", ID: "app-ref",
		ClientID: "client-ref", ClientSecret: "secret-ref",
		AllowedScopes: []string{"tokens:read", "tokens:introspect", "identities:read"},
		TokenFormat:   Referential,
	}
	appOtherRealm = Application{
		TenantID: "tenant-1", RealmID: "realm-2", ID: "app-c",
		ClientID: "client-c", ClientSecret: "secret-c",
		AllowedScopes: []string{"tokens:read", "tokens:delete", "tokens:introspect"},
	}
	appOtherTenant = Application{
		TenantID: "tenant-2", RealmID: "realm-1", ID: "app-d",
		ClientID: "client-d", ClientSecret: "secret-d",
		AllowedScopes: []string{"tokens:read", "tokens:delete", "tokens:introspect"},
	}
)

// fixture is a fake served on loopback with a fake clock.
type fixture struct {
	s     *Server
	ts    *httptest.Server
	clock *fakeClock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := New()
	clock := newFakeClock()
	s.SetClock(clock.Now)
	for _, app := range []Application{appA, appB, appRef, appOtherRealm, appOtherTenant} {
		s.AddApplication(app)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return &fixture{s: s, ts: ts, clock: clock}
}

// issuerPath returns the issuer path of app.
func issuerPath(app Application) string {
	return "/v1/tenants/" + app.TenantID + "/realms/" + app.RealmID + "/applications/" + app.ID
}

// introspectPath returns the introspection path of app's realm.
func introspectPath(app Application) string {
	return "/v1/tenants/" + app.TenantID + "/realms/" + app.RealmID + "/introspect"
}

// request describes one HTTP request of a test.
type request struct {
	method      string
	path        string
	form        url.Values // encoded as the body when body is empty
	body        string
	contentType string // defaults to the form type when form is set
	basic       []string
	bearer      string
	header      map[string]string
}

// response is what a test got back.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a map.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

func (f *fixture) do(t *testing.T, rq request) response {
	t.Helper()
	resp, err := f.send(rq)
	if err != nil {
		t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	return resp
}

func (f *fixture) send(rq request) (response, error) {
	req, err := buildRequest(f.ts.URL, rq)
	if err != nil {
		return response{}, err
	}
	res, err := f.ts.Client().Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: res.StatusCode, header: res.Header, body: body}, nil
}

func buildRequest(base string, rq request) (*http.Request, error) {
	method := rq.method
	if method == "" {
		method = http.MethodPost
	}
	body, contentType := rq.body, rq.contentType
	if body == "" && rq.form != nil {
		body = rq.form.Encode()
		if contentType == "" {
			contentType = "application/x-www-form-urlencoded"
		}
	}
	req, err := http.NewRequest(method, base+rq.path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if rq.basic != nil {
		req.SetBasicAuth(rq.basic[0], rq.basic[1])
	}
	if rq.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+rq.bearer)
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	return req, nil
}

// basicOf returns app's credentials for HTTP Basic.
func basicOf(app Application) []string {
	return []string{app.ClientID, app.ClientSecret}
}

// mintForm is a client-credentials form with extra parameters.
func mintForm(pairs ...string) url.Values {
	form := url.Values{"grant_type": {"client_credentials"}}
	for i := 0; i+1 < len(pairs); i += 2 {
		form.Set(pairs[i], pairs[i+1])
	}
	return form
}

// mint obtains a token for app and returns the token endpoint's answer.
func (f *fixture) mint(t *testing.T, app Application, pairs ...string) map[string]any {
	t.Helper()
	resp := f.do(t, request{path: issuerPath(app) + "/token", form: mintForm(pairs...), basic: basicOf(app)})
	if resp.status != http.StatusOK {
		t.Fatalf("minting for %s: status %d, body %s", app.ID, resp.status, resp.body)
	}
	return resp.json(t)
}

// mintValue obtains a token for app and returns the access token.
func (f *fixture) mintValue(t *testing.T, app Application, pairs ...string) string {
	t.Helper()
	return f.mint(t, app, pairs...)["access_token"].(string)
}

// wantOAuthError checks an RFC 6749 error answer.
func wantOAuthError(t *testing.T, resp response, status int, code string) map[string]any {
	t.Helper()
	if resp.status != status {
		t.Fatalf("status = %d, want %d (body %s)", resp.status, status, resp.body)
	}
	m := resp.json(t)
	if m["error"] != code {
		t.Fatalf("error = %v, want %q (body %s)", m["error"], code, resp.body)
	}
	if d, _ := m["error_description"].(string); d == "" {
		t.Fatalf("error_description is empty (body %s)", resp.body)
	}
	return m
}

// wantAPIError checks a Management API error answer.
func wantAPIError(t *testing.T, resp response, status int, code string) {
	t.Helper()
	if resp.status != status {
		t.Fatalf("status = %d, want %d (body %s)", resp.status, status, resp.body)
	}
	m := resp.json(t)
	if m["code"] != code {
		t.Fatalf("code = %v, want %q (body %s)", m["code"], code, resp.body)
	}
	if msg, _ := m["message"].(string); msg == "" {
		t.Fatalf("message is empty (body %s)", resp.body)
	}
}

// wantNoLeak fails when an answer contains a secret or a token.
func wantNoLeak(t *testing.T, resp response, secrets ...string) {
	t.Helper()
	for _, secret := range secrets {
		if secret != "" && strings.Contains(string(resp.body), secret) {
			t.Fatalf("answer %s leaks a secret or a token", resp.body)
		}
	}
}
