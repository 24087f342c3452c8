//go:build e2e

package e2e

import (
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// TestUpstreamFaultsKeepTheirStatusThroughVault checks that the status a
// fault maps to reaches the HTTP client of a real Vault, with the message.
func TestUpstreamFaultsKeepTheirStatusThroughVault(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	e.write("beyondidentity/config", map[string]any{"max_retries": 1, "request_timeout": "5s", "verify_connection": false})
	tests := []struct {
		name   string
		fault  fakebi.Fault
		status int
		says   string
		// orphaned: the fault mints a token the plugin never sees, which
		// must stay the only one left valid.
		orphaned bool
	}{
		{"refused scope", fakebi.Fault{Status: 400, Body: `{"error":"invalid_scope","error_description":"not allowed"}`}, 400, "invalid_scope", false},
		{"throttled", fakebi.Fault{Status: 429, Body: `{"code":"too_many_requests"}`}, 503, "HTTP 429", false},
		{"failed", fakebi.Fault{Status: 500, Body: `{"code":"internal_server_error"}`}, 502, "may have issued a token", false},
		{"slow", fakebi.Fault{Delay: 10e9}, 504, "timed out after 5s", false},
		// These mint a token the plugin receives and must revoke.
		{"unusable answer", fakebi.Fault{Rewrite: func(a map[string]any) { a["token_type"] = "DPoP" }}, 502, "the token was revoked", false},
		{"wider grant", fakebi.Fault{Rewrite: func(a map[string]any) { a["scope"] = "identities:read tokens:read" }}, 400, "the token was revoked", false},
		// A gateway that passed the mint on and lost the answer.
		{"gateway error after the mint", fakebi.Fault{Status: 502, Body: "bad gateway", AfterMint: true}, 502, "may have issued a token", true},
	}
	orphans := 0
	for _, tc := range tests {
		e.fake.SetFault(fakebi.OpToken, tc.fault)
		minted := len(e.fake.Tokens())
		_, err := e.vault.Client.Logical().Read("beyondidentity/creds/r")
		var respErr *api.ResponseError
		if !errors.As(err, &respErr) || respErr.StatusCode != tc.status || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: got %v, want HTTP %d saying %q", tc.name, err, tc.status, tc.says)
		}
		if tc.orphaned {
			orphans++
		}
		if tc.says == "the token was revoked" && len(e.fake.Tokens()) != minted+1 {
			t.Errorf("%s: the fault should have minted a token for the plugin to revoke", tc.name)
		}
	}
	e.fake.ClearFaults()
	live := 0
	for _, token := range e.fake.Tokens() {
		if e.fake.IsActive(token.Value) {
			live++
		}
	}
	if live != orphans {
		t.Errorf("%d tokens were left valid, want only the %d the plugin never saw", live, orphans)
	}
}
