package fakebi

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

func TestUnknownPaths(t *testing.T) {
	paths := []string{
		"/",
		"/v1",
		"/v1/tenants/tenant-1",
		"/v1/tenants/tenant-1/realms/realm-1",
		"/v1/tenants/tenant-1/realms/realm-1/applications",
		"/v1/tenants/tenant-1/realms/realm-1/applications/app-a",
		"/v1/tenants/tenant-1/realms/realm-1/applications/app-a/",
		"/v1/tenants/tenant-1/realms/realm-1/applications/app-a/token/",
		"/v1/tenants/tenant-1/realms/realm-1/applications/app-a/authorize",
		"/v1/tenants/tenant-1/realms/realm-1/applications/app-a/.well-known/other",
		"/v1/tenants/tenant-1/realms/realm-1/applications/app-a/tokens/id/more",
		// Served by Beyond Identity, but not by the fake: the plugin never calls them.
		"/v1/tenants/tenant-1/realms/realm-1/applications/app-a/tokens",
		"/v1/tenants/tenant-1/realms/realm-1/applications/app-a/.well-known/jwks.json",
		"/v1/tenants/tenant-1/realms/realm-1/applications/app-a/.well-known/openid-configuration",
		"/v1/tenants//realms/realm-1/introspect",
		"/v2/tenants/tenant-1/realms/realm-1/introspect",
	}
	for _, path := range paths {
		t.Run(path, func(t *testing.T) {
			f := newFixture(t)
			resp := f.do(t, request{method: http.MethodPost, path: path, form: mintForm(), basic: basicOf(appA)})
			wantAPIError(t, resp, http.StatusNotFound, "not_found")
			if calls := f.s.CallsTo(OpUnknown); len(calls) != 1 || calls[0].Status != http.StatusNotFound {
				t.Errorf("calls = %+v, want one unknown call answered 404", calls)
			}
		})
	}
}

func TestRouteOps(t *testing.T) {
	base := issuerPath(appA)
	tests := map[string]Op{
		base + "/token":      OpToken,
		base + "/revoke":     OpRevoke,
		introspectPath(appA): OpIntrospect,
		base + "/tokens":     OpUnknown,
		base + "/tokens/abc": OpUnknown,
		base + "/introspect": OpUnknown,
		"/healthz":           OpUnknown,
	}
	for path, want := range tests {
		if got := parseRoute(path); got.op != want {
			t.Errorf("parseRoute(%q).op = %q, want %q", path, got.op, want)
		}
	}
	if rt := parseRoute(base + "/revoke"); rt.tenant != "tenant-1" || rt.realm != "realm-1" || rt.app != "app-a" {
		t.Errorf("parseRoute = %+v", rt)
	}
}

func TestCallsRecording(t *testing.T) {
	f := newFixture(t)
	value := f.mintValue(t, appA)
	f.do(t, request{path: issuerPath(appA) + "/revoke", form: url.Values{"token": {value}, "client_id": {appA.ClientID}, "client_secret": {appA.ClientSecret}}})
	f.do(t, request{method: http.MethodGet, path: introspectPath(appA), bearer: value})
	f.do(t, request{method: http.MethodGet, path: "/nowhere"})

	calls := f.s.Calls()
	wantOps := []Op{OpToken, OpRevoke, OpIntrospect, OpUnknown}
	wantStatus := []int{200, 200, 405, 404}
	if len(calls) != len(wantOps) {
		t.Fatalf("%d calls, want %d", len(calls), len(wantOps))
	}
	for i, c := range calls {
		if c.Op != wantOps[i] || c.Status != wantStatus[i] {
			t.Errorf("call %d = %s %d, want %s %d", i, c.Op, c.Status, wantOps[i], wantStatus[i])
		}
	}
	revoke := calls[1]
	if revoke.BasicAuth || revoke.Form.Get("client_secret") != appA.ClientSecret || revoke.Form.Get("token") != value {
		t.Errorf("revoke call = %+v, want the form credentials recorded", revoke)
	}
	if calls[2].Bearer != value || calls[2].Form != nil {
		t.Errorf("introspect call = %+v, want the bearer and no form", calls[2])
	}
	if got := f.s.CallsTo(OpRevoke); len(got) != 1 || got[0].Path != issuerPath(appA)+"/revoke" {
		t.Errorf("CallsTo(revoke) = %+v", got)
	}

	// Copies must not alias the recorded calls.
	calls[1].Form.Set("token", "changed")
	if f.s.Calls()[1].Form.Get("token") != value {
		t.Error("Calls returned a form that shares the recorded one")
	}
	f.s.ResetCalls()
	if n := len(f.s.Calls()); n != 0 {
		t.Errorf("%d calls after ResetCalls", n)
	}
}

func TestIsActiveFollowsTheClock(t *testing.T) {
	f := newFixture(t)
	value := f.mintValue(t, appA, "expiration_time", "60")
	if !f.s.IsActive(value) {
		t.Fatal("fresh token is not active")
	}
	f.clock.Advance(59 * time.Second)
	if !f.s.IsActive(value) {
		t.Error("token inactive before exp")
	}
	f.clock.Advance(time.Second)
	if f.s.IsActive(value) {
		t.Error("token active at exp")
	}
	if f.s.IsActive("never-minted") {
		t.Error("unknown token active")
	}
	if _, ok := f.s.TokenByValue("never-minted"); ok {
		t.Error("TokenByValue found an unknown token")
	}
}

func TestRemoveApplication(t *testing.T) {
	f := newFixture(t)
	value := f.mintValue(t, appA)
	f.s.RemoveApplication(appA.TenantID, appA.RealmID, appA.ID)
	wantAPIError(t, f.do(t, mintRequestOf(appA)), http.StatusNotFound, "not_found")
	if !f.s.IsActive(value) {
		t.Error("removing the application revoked its tokens")
	}
	f.s.AddApplication(appA)
	f.mint(t, appA)
}

func TestAddApplicationCopiesScopes(t *testing.T) {
	f := newFixture(t)
	app := appB
	app.ID, app.AllowedScopes = "app-copy", []string{"groups:read"}
	f.s.AddApplication(app)
	app.AllowedScopes[0] = "tokens:delete"
	if got := f.mint(t, app)["scope"]; got != "groups:read" {
		t.Errorf("scope = %v: AddApplication kept the caller's slice", got)
	}
}

func TestCallObserver(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	var seen []Call
	f.s.SetCallObserver(func(c Call) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, c)
	})
	f.mint(t, appA)
	f.do(t, request{method: http.MethodGet, path: "/nowhere"})
	f.ts.Close() // the observer runs after the answer: wait for the handlers
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0].Op != OpToken || seen[0].Status != 200 || seen[1].Status != 404 {
		t.Errorf("observed %+v", seen)
	}
}

func TestDefaultClockIsRealTime(t *testing.T) {
	s := New()
	if d := time.Since(s.now()); d < 0 || d > time.Minute {
		t.Errorf("default clock is %v off", d)
	}
}

func TestInFlight(t *testing.T) {
	f := newFixture(t)
	f.s.SetFault(OpToken, Fault{Delay: time.Minute})
	const n = 3
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	for range n {
		wg.Go(func() { _, _ = f.sendContext(ctx, mintRequestOf(appA)) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.s.InFlight() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := f.s.InFlight(); got != n {
		t.Fatalf("InFlight = %d, want %d", got, n)
	}
	f.s.ResetMaxInFlight()
	if got := f.s.MaxInFlight(); got != n {
		t.Errorf("MaxInFlight after a reset = %d, want the %d still in flight", got, n)
	}
	cancel()
	wg.Wait()
	f.ts.Close() // waits for the handlers
	if in, peak := f.s.InFlight(), f.s.MaxInFlight(); in != 0 || peak != n {
		t.Errorf("after the burst: InFlight %d, MaxInFlight %d; want 0 and %d", in, peak, n)
	}
	f.s.ResetMaxInFlight()
	if got := f.s.MaxInFlight(); got != 0 {
		t.Errorf("MaxInFlight after a reset with nothing in flight = %d", got)
	}
}
