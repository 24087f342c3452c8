package fakebi

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFaultReplacesAnswer(t *testing.T) {
	tests := map[string]struct {
		op          Op
		fault       Fault
		req         func(t *testing.T, f *fixture) request
		wantStatus  int
		wantType    string
		wantHeaders map[string]string
	}{
		"token 503 with Retry-After": {
			op:         OpToken,
			fault:      Fault{Status: 503, Body: `{"code":"internal_server_error","message":"down"}`, Header: map[string]string{"Retry-After": "7"}},
			req:        func(t *testing.T, f *fixture) request { return mintRequestOf(appA) },
			wantStatus: 503, wantType: "application/json", wantHeaders: map[string]string{"Retry-After": "7"},
		},
		"token 200 with a body that is not JSON": {
			op:         OpToken,
			fault:      Fault{Status: 200, Body: "<html>proxy</html>", ContentType: "text/html"},
			req:        func(t *testing.T, f *fixture) request { return mintRequestOf(appA) },
			wantStatus: 200, wantType: "text/html",
		},
		"status 0 means 200": {
			op:         OpToken,
			fault:      Fault{Body: `{}`},
			req:        func(t *testing.T, f *fixture) request { return mintRequestOf(appA) },
			wantStatus: 200, wantType: "application/json",
		},
		"revoke 500": {
			op:         OpRevoke,
			fault:      Fault{Status: 500, Body: `{"code":"internal_server_error","message":"x"}`},
			req:        func(t *testing.T, f *fixture) request { return revokeRequestOf(appA, f.mintValue(t, appA)) },
			wantStatus: 500, wantType: "application/json",
		},
		"introspect 502": {
			op:    OpIntrospect,
			fault: Fault{Status: 502, Body: "bad gateway", ContentType: "text/plain"},
			req: func(t *testing.T, f *fixture) request {
				return request{path: introspectPath(appA), form: url.Values{"token": {"x"}}, basic: basicOf(appA)}
			},
			wantStatus: 502, wantType: "text/plain",
		},
		"introspect 429": {
			op:    OpIntrospect,
			fault: Fault{Status: 429, Body: `{"code":"too_many_requests","message":"slow down"}`, Header: map[string]string{"RateLimit-Reset": "3"}},
			req: func(t *testing.T, f *fixture) request {
				return request{path: introspectPath(appA), form: url.Values{"token": {f.mintValue(t, appA)}}, basic: basicOf(appA)}
			},
			wantStatus: 429, wantType: "application/json", wantHeaders: map[string]string{"RateLimit-Reset": "3"},
		},
		"unknown path 418": {
			op:         OpUnknown,
			fault:      Fault{Status: 418, Body: "teapot"},
			req:        func(t *testing.T, f *fixture) request { return request{method: http.MethodGet, path: "/elsewhere"} },
			wantStatus: 418, wantType: "application/json",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			req := tc.req(t, f)
			before := f.s.Tokens()
			f.s.SetFault(tc.op, tc.fault)
			resp := f.do(t, req)
			if resp.status != tc.wantStatus || string(resp.body) != tc.fault.Body {
				t.Fatalf("got %d %q, want %d %q", resp.status, resp.body, tc.wantStatus, tc.fault.Body)
			}
			if got := resp.header.Get("Content-Type"); got != tc.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tc.wantType)
			}
			for k, v := range tc.wantHeaders {
				if got := resp.header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			after := f.s.Tokens()
			if len(after) != len(before) {
				t.Errorf("a faulted request minted a token")
			}
			for _, tok := range after {
				if !tok.RevokedAt.IsZero() {
					t.Errorf("a faulted request revoked a token")
				}
			}
			calls := f.s.CallsTo(tc.op)
			if last := calls[len(calls)-1]; last.Status != tc.wantStatus {
				t.Errorf("recorded status %d, want %d", last.Status, tc.wantStatus)
			}
		})
	}
}

// mintRequestOf is a plain mint request for app.
func mintRequestOf(app Application) request {
	return request{path: issuerPath(app) + "/token", form: mintForm(), basic: basicOf(app)}
}

// revokeRequestOf is a revoke request of token by app.
func revokeRequestOf(app Application, token string) request {
	return request{path: issuerPath(app) + "/revoke", form: url.Values{"token": {token}}, basic: basicOf(app)}
}

func TestFaultTimes(t *testing.T) {
	f := newFixture(t)
	f.s.SetFault(OpToken, Fault{Status: 500, Body: "{}", Times: 2})
	want := []int{500, 500, 200, 200}
	for i, status := range want {
		if got := f.do(t, mintRequestOf(appA)).status; got != status {
			t.Fatalf("request %d: status %d, want %d", i, got, status)
		}
	}

	f.s.SetFault(OpToken, Fault{Status: 500, Body: "{}"})
	for i := range 5 {
		if got := f.do(t, mintRequestOf(appA)).status; got != 500 {
			t.Fatalf("request %d under a fault without Times: status %d", i, got)
		}
	}
	f.s.ClearFaults()
	if got := f.do(t, mintRequestOf(appA)).status; got != 200 {
		t.Fatalf("after ClearFaults: status %d", got)
	}
}

func TestFaultIsPerOpAndReplaced(t *testing.T) {
	f := newFixture(t)
	f.s.SetFault(OpRevoke, Fault{Status: 500, Body: "{}"})
	f.s.SetFault(OpToken, Fault{Status: 502, Body: "{}"})
	f.s.SetFault(OpToken, Fault{Status: 504, Body: "{}"})
	if got := f.do(t, mintRequestOf(appA)).status; got != 504 {
		t.Errorf("token status %d, want the replacing fault's 504", got)
	}
	f.s.SetFault(OpToken, Fault{Status: 500, Times: 1})
	f.do(t, mintRequestOf(appA))
	value := f.mintValue(t, appA)
	if got := f.do(t, revokeRequestOf(appA, value)).status; got != 500 {
		t.Errorf("revoke status %d, want 500", got)
	}
}

func TestFaultTimesConcurrent(t *testing.T) {
	f := newFixture(t)
	f.s.SetFault(OpUnknown, Fault{Status: 500, Body: "{}", Times: 5})
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			resp, err := f.send(request{method: http.MethodGet, path: "/elsewhere"})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			counts[resp.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts[500] != 5 || counts[404] != 35 {
		t.Errorf("statuses %v, want exactly 5 faulted", counts)
	}
}

func TestFaultDelayOnlyKeepsTheAnswer(t *testing.T) {
	f := newFixture(t)
	const delay = 100 * time.Millisecond
	f.s.SetFault(OpToken, Fault{Delay: delay, Times: 1})
	start := time.Now()
	f.mint(t, appA)
	if elapsed := time.Since(start); elapsed < delay {
		t.Errorf("answer came after %v, want at least %v", elapsed, delay)
	}
	if len(f.s.Tokens()) != 1 {
		t.Error("a delay-only fault stopped the mint")
	}
}

func TestFaultDelayStopsWhenTheClientGivesUp(t *testing.T) {
	f := newFixture(t)
	f.s.SetFault(OpToken, Fault{Status: 500, Delay: time.Minute})
	start := time.Now()
	_, err := f.sendAndGiveUp(t, mintRequestOf(appA), func() bool { return len(f.s.Calls()) == 1 })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the client's cancellation", err)
	}
	f.ts.Close() // waits for the handler: it must have stopped waiting
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("the handler kept waiting for %v after the client left", elapsed)
	}
	if calls := f.s.Calls(); len(calls) != 1 || calls[0].Status != 0 {
		t.Errorf("calls = %+v, want one without an answer", calls)
	}
}

// sendAndGiveUp sends a request and cancels it as soon as reached reports
// that the server got far enough, as an impatient client would.
func (f *fixture) sendAndGiveUp(t *testing.T, rq request, reached func() bool) (response, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for !reached() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	return f.sendContext(ctx, rq)
}

// sendContext sends a request bound to ctx and reads the whole answer.
func (f *fixture) sendContext(ctx context.Context, rq request) (response, error) {
	req, err := buildRequest(f.ts.URL, rq)
	if err != nil {
		return response{}, err
	}
	res, err := f.ts.Client().Do(req.WithContext(ctx))
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: body}, err
}

func TestFaultResetConnection(t *testing.T) {
	tests := map[string]struct {
		fault  Fault
		status int
	}{
		"with a body":    {fault: Fault{ResetConnection: true, Body: `{"access_token":"abcdefghijklmnopqrstuvwxyz","token_type":"Bearer"}`}, status: 200},
		"without a body": {fault: Fault{ResetConnection: true, Status: 502}, status: 502},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.s.SetFault(OpToken, tc.fault)
			req, err := buildRequest(f.ts.URL, mintRequestOf(appA))
			if err != nil {
				t.Fatal(err)
			}
			res, err := f.ts.Client().Do(req)
			if err == nil {
				_, err = io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != tc.status {
					t.Errorf("status line %d, want %d", res.StatusCode, tc.status)
				}
			}
			if err == nil {
				t.Fatal("the client read a whole answer from a reset connection")
			}
			t.Logf("client error: %v", err)
			if n := len(f.s.Tokens()); n != 0 {
				t.Errorf("%d tokens minted, want none", n)
			}
			if calls := f.s.Calls(); len(calls) != 1 || calls[0].Status != tc.status {
				t.Errorf("calls = %+v, want one with status %d", calls, tc.status)
			}
		})
	}
}

func TestFaultAfterMint(t *testing.T) {
	tests := map[string]struct {
		op          Op
		fault       Fault
		giveUp      bool // the client gives up once the token is minted
		wantStatus  int  // 0: the client sees an error
		wantMinted  bool
		wantRevoked bool
	}{
		"token 500 after minting": {
			op: OpToken, fault: Fault{AfterMint: true, Status: 500, Body: "{}"},
			wantStatus: 500, wantMinted: true,
		},
		"token reset after minting": {
			op: OpToken, fault: Fault{AfterMint: true, ResetConnection: true},
			wantMinted: true,
		},
		"token answer delayed past the client's patience": {
			op: OpToken, fault: Fault{AfterMint: true, Delay: time.Minute}, giveUp: true,
			wantMinted: true,
		},
		"token answer delayed, then sent": {
			op: OpToken, fault: Fault{AfterMint: true, Delay: 20 * time.Millisecond},
			wantStatus: 200, wantMinted: true,
		},
		"token 500 without minting": {
			op: OpToken, fault: Fault{Status: 500, Body: "{}"},
			wantStatus: 500,
		},
		"revoke 503 after revoking": {
			op: OpRevoke, fault: Fault{AfterMint: true, Status: 503, Body: "{}"},
			wantStatus: 503, wantMinted: true, wantRevoked: true,
		},
		"revoke 503 without revoking": {
			op: OpRevoke, fault: Fault{Status: 503, Body: "{}"},
			wantStatus: 503, wantMinted: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			req := mintRequestOf(appA)
			if tc.op == OpRevoke {
				req = revokeRequestOf(appA, f.mintValue(t, appA))
			}
			f.s.SetFault(tc.op, tc.fault)
			var resp response
			var err error
			if tc.giveUp {
				resp, err = f.sendAndGiveUp(t, req, func() bool { return len(f.s.Tokens()) == 1 })
			} else {
				resp, err = f.sendContext(context.Background(), req)
			}
			switch {
			case tc.wantStatus == 0 && err == nil && resp.status == http.StatusOK:
				t.Fatalf("got 200, want a failed request")
			case tc.wantStatus != 0 && (err != nil || resp.status != tc.wantStatus):
				t.Fatalf("got %d, %v; want %d", resp.status, err, tc.wantStatus)
			}
			f.ts.Close() // let the handler finish before looking at the state
			tokens := f.s.Tokens()
			if minted := len(tokens) == 1; minted != tc.wantMinted {
				t.Fatalf("%d tokens, want minted: %v", len(tokens), tc.wantMinted)
			}
			if tc.wantMinted {
				if revoked := !tokens[0].RevokedAt.IsZero(); revoked != tc.wantRevoked {
					t.Errorf("revoked = %v, want %v", revoked, tc.wantRevoked)
				}
			}
		})
	}
}

func TestFaultAfterMintIgnoredElsewhere(t *testing.T) {
	f := newFixture(t)
	f.s.SetFault(OpIntrospect, Fault{AfterMint: true, Status: 500, Body: "{}"})
	resp := f.do(t, request{path: introspectPath(appA), form: url.Values{"token": {"x"}}, basic: basicOf(appA)})
	if resp.status != 500 {
		t.Errorf("status %d, want the fault's 500", resp.status)
	}
}

func TestFaultHeaderOverridesContentType(t *testing.T) {
	f := newFixture(t)
	f.s.SetFault(OpToken, Fault{Status: 502, Body: "x", Header: map[string]string{"Content-Type": "text/plain"}})
	if got := f.do(t, mintRequestOf(appA)).header.Get("Content-Type"); got != "text/plain" {
		t.Errorf("Content-Type = %q, want the extra header's", got)
	}
}

func TestFaultEchoRequest(t *testing.T) {
	tests := map[string]struct {
		op    Op
		req   func(t *testing.T, f *fixture) request
		echos []string // what the message must repeat, raw
	}{
		"token with Basic credentials": {
			op:    OpToken,
			req:   func(t *testing.T, f *fixture) request { return mintRequestOf(appA) },
			echos: []string{"grant_type=client_credentials", "Basic " + base64.StdEncoding.EncodeToString([]byte(appA.ClientID+":"+appA.ClientSecret))},
		},
		"token with form credentials": {
			op: OpToken,
			req: func(t *testing.T, f *fixture) request {
				return request{path: issuerPath(appA) + "/token", form: mintForm("client_id", appA.ClientID, "client_secret", appA.ClientSecret)}
			},
			echos: []string{"client_secret=" + url.QueryEscape(appA.ClientSecret)},
		},
		"revoke": {
			op:    OpRevoke,
			req:   func(t *testing.T, f *fixture) request { return revokeRequestOf(appA, "the-revoked-token") },
			echos: []string{"token=the-revoked-token", "Basic "},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.s.SetFault(tc.op, Fault{Status: http.StatusBadGateway, EchoRequest: true, Body: "ignored"})
			resp := f.do(t, tc.req(t, f))
			wantAPIError(t, resp, http.StatusBadGateway, "bad_gateway")
			message := resp.json(t)["message"].(string)
			for _, echo := range tc.echos {
				if !strings.Contains(message, echo) {
					t.Errorf("message %q does not echo %q", message, echo)
				}
			}
			if n := len(f.s.Tokens()); n != 0 {
				t.Errorf("%d tokens minted without AfterMint", n)
			}
		})
	}
}

func TestFaultRewrite(t *testing.T) {
	f := newFixture(t)
	f.s.SetFault(OpToken, Fault{Times: 1, Rewrite: func(a map[string]any) {
		a["token_type"] = "DPoP"
		delete(a, "expires_in")
	}})
	answer := f.mint(t, appA, "expiration_time", "60")
	if answer["token_type"] != "DPoP" || answer["expires_in"] != nil || answer["scope"] == nil {
		t.Errorf("rewritten answer = %v", answer)
	}
	if !f.s.IsActive(answer["access_token"].(string)) {
		t.Error("the token of a rewritten answer does not exist")
	}
	if got := f.mint(t, appA); got["token_type"] != "Bearer" {
		t.Errorf("the rewrite outlived its Times: %v", got)
	}

	// A refusal passes unchanged: there is no token answer to rewrite.
	f.s.SetFault(OpToken, Fault{Rewrite: func(a map[string]any) { a["error"] = "rewritten" }})
	wantOAuthError(t, f.do(t, request{path: issuerPath(appA) + "/token", form: mintForm(), basic: []string{appA.ClientID, "wrong"}}),
		http.StatusUnauthorized, "invalid_client")

	// An introspection that is active but has no jti.
	value := f.mintValue(t, appRef)
	f.s.SetFault(OpIntrospect, Fault{Rewrite: func(a map[string]any) { delete(a, "jti") }})
	got := f.do(t, request{path: introspectPath(appRef), form: url.Values{"token": {value}}, basic: basicOf(appRef)}).json(t)
	if got["active"] != true || got["exp"] == nil || got["jti"] != nil {
		t.Errorf("introspection = %v, want active without a jti", got)
	}
	if calls := f.s.CallsTo(OpIntrospect); calls[len(calls)-1].Status != http.StatusOK {
		t.Errorf("recorded status %d", calls[len(calls)-1].Status)
	}
}

// TestFaultRewriteBody: a raw rewrite sends what no encoder writes, here a
// key twice, with a Content-Length that matches, and mints all the same.
func TestFaultRewriteBody(t *testing.T) {
	f := newFixture(t)
	f.s.SetFault(OpToken, Fault{Times: 1, RewriteBody: func(body []byte) []byte {
		return append([]byte(`{"access_token":"first",`), body[1:]...)
	}})
	resp := f.do(t, request{path: issuerPath(appA) + "/token", form: mintForm(), basic: basicOf(appA)})
	if resp.status != http.StatusOK || !bytes.HasPrefix(resp.body, []byte(`{"access_token":"first","access_token":"`)) {
		t.Fatalf("HTTP %d, body %q: want the access_token written twice", resp.status, resp.body)
	}
	if resp.header.Get("Content-Length") != strconv.Itoa(len(resp.body)) {
		t.Errorf("Content-Length %s for a body of %d bytes", resp.header.Get("Content-Length"), len(resp.body))
	}
	if len(f.s.Tokens()) != 1 || !f.s.IsActive(f.s.Tokens()[0].Value) {
		t.Error("the token of a rewritten answer does not exist")
	}
}
