package beyondidentity

// Failures as the operator reads them: each upstream fault's status and
// words.

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// faultCase is one way Beyond Identity, the network or the operator can
// misbehave while a credential is issued, and what the operator must see.
type faultCase struct {
	// setup provokes the fault; the backend is configured, with role
	// "sync" (ttl 1h) and the calls of configuring forgotten.
	setup func(e *testEnv)
	// status is the HTTP status Vault answers with.
	status int
	// message holds the parts the error must carry: the call and the cause.
	message []string
	// tokenCalls is how many token calls the fault allows (retries included).
	tokenCalls int
	// orphans is how many tokens the fault leaves live because Beyond
	// Identity issued them without the plugin learning them; each must
	// expire on its own within the requested hour.
	orphans int
}

// mayHaveIssued is the note of a token call whose outcome is unknown.
const mayHaveIssued = "may have issued a token"

// faultTable is the fault table of docs/troubleshooting.md, as tests.
func faultTable() map[string]faultCase {
	jsonFault := func(status int, body string, header map[string]string) func(e *testEnv) {
		return func(e *testEnv) {
			e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: status, Body: body, Header: header})
		}
	}
	rewrite := func(edit func(map[string]any)) func(e *testEnv) {
		return func(e *testEnv) { e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Rewrite: edit}) }
	}
	afterMint := func(f fakebi.Fault) func(e *testEnv) {
		return func(e *testEnv) {
			f.AfterMint = true
			e.fake.SetFault(fakebi.OpToken, f)
		}
	}
	return map[string]faultCase{
		"400 invalid_scope": {
			setup:  jsonFault(400, `{"error":"invalid_scope","error_description":"scope roles:read is not allowed"}`, nil),
			status: 400, message: []string{"token call", "HTTP 400 invalid_scope", "roles:read is not allowed"}, tokenCalls: 1,
		},
		"401 invalid_client": {
			setup:  jsonFault(401, `{"error":"invalid_client","error_description":"client authentication failed"}`, nil),
			status: 400, message: []string{"token call", "HTTP 401 invalid_client", "client authentication failed"}, tokenCalls: 1,
		},
		"403 forbidden": {
			setup:  jsonFault(403, `{"code":"forbidden","message":"application is disabled"}`, nil),
			status: 400, message: []string{"token call", "HTTP 403 forbidden", "application is disabled"}, tokenCalls: 1,
		},
		"409 conflict": {
			setup:  jsonFault(409, `{"code":"conflict","message":"token limit reached"}`, nil),
			status: 400, message: []string{"token call", "HTTP 409 conflict", "token limit reached"}, tokenCalls: 1,
		},
		"422 unprocessable entity": {
			setup:  jsonFault(422, `{"code":"unprocessable_entity","message":"custom_claims is not an object"}`, nil),
			status: 400, message: []string{"token call", "HTTP 422 unprocessable_entity"}, tokenCalls: 1,
		},
		"404 unknown tenant, realm or application": {
			setup:  func(e *testEnv) { e.fake.RemoveApplication(testTenant, testRealm, testApplication) },
			status: 400, message: []string{"token call", "HTTP 404 not_found"}, tokenCalls: 1,
		},
		"429 with Retry-After, lasting": {
			setup:  jsonFault(429, `{"code":"too_many_requests","message":"slow down"}`, map[string]string{"Retry-After": "1"}),
			status: 503, message: []string{"token call", "HTTP 429 too_many_requests", "retry after 1s", "gave up after 4 attempts"}, tokenCalls: 4,
		},
		"429 with RateLimit-Reset only, lasting": {
			setup:  jsonFault(429, `{"code":"too_many_requests","message":"slow down"}`, map[string]string{"RateLimit-Reset": "1", "RateLimit-Remaining": "0"}),
			status: 503, message: []string{"token call", "HTTP 429", "retry after 1s"}, tokenCalls: 4,
		},
		"429 without any hint, lasting": {
			setup:  jsonFault(429, `{"code":"too_many_requests","message":"slow down"}`, nil),
			status: 503, message: []string{"token call", "HTTP 429 too_many_requests"}, tokenCalls: 4,
		},
		"429 once": {
			setup: func(e *testEnv) {
				e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: 429, Body: `{"code":"too_many_requests"}`, Header: map[string]string{"Retry-After": "1"}, Times: 1})
			},
			status: 200, tokenCalls: 2,
		},
		"500": {
			setup:  jsonFault(500, `{"code":"internal_server_error","message":"database unavailable"}`, nil),
			status: 502, message: []string{"token call", "HTTP 500 internal_server_error", "may have issued a token", "within the requested lifetime of 1h0m0s"}, tokenCalls: 1,
		},
		"502": {
			// A gateway's 502 may follow a mint: the call is never repeated.
			setup:  jsonFault(502, `<html>Bad Gateway</html>`, nil),
			status: 502, message: []string{"token call", "HTTP 502", mayHaveIssued}, tokenCalls: 1,
		},
		"503, lasting": {
			setup:  jsonFault(503, `{"code":"service_unavailable","message":"maintenance"}`, nil),
			status: 503, message: []string{"token call", "HTTP 503", "maintenance"}, tokenCalls: 4,
		},
		"504": {
			setup:  jsonFault(504, ``, nil),
			status: 502, message: []string{"token call", "HTTP 504", mayHaveIssued}, tokenCalls: 1,
		},
		"500 after the token was issued": {
			setup:  afterMint(fakebi.Fault{Status: 500, Body: `{"code":"internal_server_error"}`}),
			status: 502, message: []string{"HTTP 500", mayHaveIssued, "within the requested lifetime of 1h0m0s"}, tokenCalls: 1, orphans: 1,
		},
		"timeout after the token was issued": {
			setup: func(e *testEnv) {
				e.mustOK(logical.UpdateOperation, "config", map[string]any{"request_timeout": "1s", "verify_connection": false})
				afterMint(fakebi.Fault{Delay: 5 * time.Second})(e)
			},
			status: 504, message: []string{"timed out after 1s (request_timeout)", mayHaveIssued}, tokenCalls: 1, orphans: 1,
		},
		"502 after the token was issued": {
			// A gateway that passed the request on and lost the answer:
			// one token exists that the plugin never saw, and only one,
			// because the call is not repeated.
			setup:  afterMint(fakebi.Fault{Status: 502, Body: ``}),
			status: 502, message: []string{"HTTP 502", mayHaveIssued, "within the requested lifetime of 1h0m0s"}, tokenCalls: 1, orphans: 1,
		},
		"504 after the token was issued": {
			setup:  afterMint(fakebi.Fault{Status: 504, Body: ``}),
			status: 502, message: []string{"HTTP 504", mayHaveIssued}, tokenCalls: 1, orphans: 1,
		},
		"503 once": {
			setup:  func(e *testEnv) { e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: 503, Body: `{}`, Times: 1}) },
			status: 200, tokenCalls: 2,
		},
		"slower than request_timeout": {
			setup: func(e *testEnv) {
				e.mustOK(logical.UpdateOperation, "config", map[string]any{"request_timeout": "1s", "verify_connection": false})
				e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Delay: 5 * time.Second})
			},
			status: 504, message: []string{"token call", "timed out after 1s (request_timeout)", "may have issued a token"}, tokenCalls: 1,
		},
		"connection refused": {
			setup: func(e *testEnv) {
				e.mustOK(logical.UpdateOperation, "config", e.configData(map[string]any{"auth_url": closedPortURL(e.t), "verify_connection": false}))
			},
			status: 502, message: []string{"token call", "connection refused", "gave up after 4 attempts"}, tokenCalls: 0,
		},
		"connection reset mid-body": {
			setup:  func(e *testEnv) { e.fake.SetFault(fakebi.OpToken, fakebi.Fault{ResetConnection: true}) },
			status: 502, message: []string{"token call", "may have issued a token"}, tokenCalls: 1,
		},
		"HTML body": {
			setup: func(e *testEnv) {
				e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: 200, Body: "<html><body>Please sign in</body></html>", ContentType: "text/html"})
			},
			status: 502, message: []string{"token call", "unusable answer", "not a JSON object", "may have issued a token"}, tokenCalls: 1,
		},
		"JSON without access_token": {
			setup:  jsonFault(200, `{"token_type":"Bearer","expires_in":3600}`, nil),
			status: 502, message: []string{"token call", "no access_token", "may have issued a token"}, tokenCalls: 1,
		},
		"token_type other than Bearer": {
			setup:  rewrite(func(body map[string]any) { body["token_type"] = "DPoP" }),
			status: 502, message: []string{"token call", `token_type is "DPoP"`, "the token was revoked"}, tokenCalls: 1,
		},
		"expires_in missing": {
			setup:  rewrite(func(body map[string]any) { delete(body, "expires_in") }),
			status: 502, message: []string{"token call", "no expires_in", "was revoked"}, tokenCalls: 1,
		},
		"expires_in zero": {
			setup:  rewrite(func(body map[string]any) { body["expires_in"] = 0 }),
			status: 502, message: []string{"token call", "expires_in is 0", "was revoked"}, tokenCalls: 1,
		},
		"expires_in negative": {
			setup:  rewrite(func(body map[string]any) { body["expires_in"] = -60 }),
			status: 502, message: []string{"token call", "expires_in is -60", "was revoked"}, tokenCalls: 1,
		},
		"body larger than the read limit": {
			setup:  jsonFault(200, `{"access_token":"`+strings.Repeat("a", 2<<20)+`"}`, nil),
			status: 502, message: []string{"token call", "body larger than 1048576 bytes", "may have issued a token"}, tokenCalls: 1,
		},
		"untrusted TLS certificate": {
			setup: func(e *testEnv) {
				e.mustOK(logical.UpdateOperation, "config", e.configData(map[string]any{"auth_url": e.tlsFakeURL(), "verify_connection": false}))
			},
			status: 502, message: []string{"token call", "certificate signed by unknown authority"}, tokenCalls: 0,
		},
		"TLS with ca_cert": {
			setup: func(e *testEnv) {
				url, caPEM := e.tlsFakeURL(), e.tlsFakeCA()
				e.mustOK(logical.UpdateOperation, "config", e.configData(map[string]any{"auth_url": url, "ca_cert": caPEM, "verify_connection": false}))
			},
			status: 200, tokenCalls: 1,
		},
	}
}

// TestFaultTable issues a credential under each fault and checks the
// answer: its status class, a message that names the call and the cause and
// carries no secret, the calls made, and nothing left behind (no lease, no
// live token).
func TestFaultTable(t *testing.T) {
	t.Parallel()
	for name, tc := range faultTable() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newTestBackend(t)
			e.configure()
			e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
			tc.setup(e)
			e.fake.ResetCalls()

			resp, err := e.request(logical.ReadOperation, "creds/sync", nil)
			status, message := statusOf(resp, err)
			if status != tc.status {
				t.Fatalf("status %d, want %d (%s)", status, tc.status, message)
			}
			for _, part := range tc.message {
				if !strings.Contains(message, part) {
					t.Errorf("message lacks %q: %s", part, message)
				}
			}
			if calls := len(e.fake.CallsTo(fakebi.OpToken)); calls != tc.tokenCalls {
				t.Errorf("%d token calls reached the fake, want %d", calls, tc.tokenCalls)
			}
			if strings.Contains(message, mayHaveIssued) != (tc.orphans > 0 || strings.Contains(strings.Join(tc.message, " "), mayHaveIssued)) {
				t.Errorf("the outcome-unknown note is wrongly present or absent: %s", message)
			}
			var live []fakebi.Token
			for _, token := range e.fake.Tokens() {
				if e.fake.IsActive(token.Value) {
					live = append(live, token)
				}
			}
			if tc.status == http.StatusOK {
				// Success means a lease holding the one live token.
				if resp == nil || resp.Secret == nil || len(live) != 1 || resp.Data["access_token"] != live[0].Value {
					t.Fatalf("a successful read must lease the one live token: lease %v, %d live tokens", resp != nil && resp.Secret != nil, len(live))
				}
				return
			}
			if resp != nil && resp.Secret != nil {
				t.Error("a failed request returned a lease")
			}
			for _, token := range live {
				if life := token.ExpiresAt.Sub(token.IssuedAt); life != time.Hour {
					t.Errorf("orphan token %s lives %s, not the requested hour", token.ID, life)
				}
			}
			if len(live) != tc.orphans {
				t.Errorf("%d tokens were left valid, want %d", len(live), tc.orphans)
			}
			assertNoSecretIn(t, e, message)
			e.assertNoSecretsLogged()
		})
	}
}

// TestAFailureIsAnsweredOnceWithItsStatus: a 400 refusal, however wrapped,
// is an error response; any other refusal keeps its status over the whole
// message; not configured names the mount's config; any other error is the
// plugin's own.
func TestAFailureIsAnsweredOnceWithItsStatus(t *testing.T) {
	t.Parallel()
	req := &logical.Request{MountPoint: "bi/"}
	resp, err := answer(req, fmt.Errorf("minting: %w", badRequest("'ttl' must be shorter")))
	if err != nil || !resp.IsError() || resp.Error().Error() != "minting: 'ttl' must be shorter" {
		t.Fatalf("a wrapped 400: %v %v", resp, err)
	}
	_, err = answer(req, withOutcome(refuse(http.StatusBadGateway, "the token does not show it"), "the token was revoked"))
	var coded logical.HTTPCodedError
	if !errors.As(err, &coded) || coded.Code() != http.StatusBadGateway || err.Error() != "the token does not show it; the token was revoked" {
		t.Fatalf("a wrapped 502: %v", err)
	}
	if _, isCoded := err.(logical.HTTPCodedError); !isCoded { //nolint:errorlint // the outer error's own type is the point
		t.Fatal("the answer's error is not itself coded: Vault reads only the outer error's type")
	}
	resp, err = answer(req, fmt.Errorf("rotating: %w", errNotConfigured))
	if err != nil || resp.Error().Error() != "the mount is not configured: write bi/config first" {
		t.Fatalf("not configured: %v %v", resp, err)
	}
	plain := errors.New("storage is down")
	if resp, err := answer(req, plain); resp != nil || err != plain || //nolint:errorlint // the very error, unwrapped
		statusOfFailure(err) != http.StatusInternalServerError {
		t.Fatalf("a plain error: %v %v", resp, err)
	}
}
