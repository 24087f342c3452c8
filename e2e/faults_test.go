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
	}{
		{"refused scope", fakebi.Fault{Status: 400, Body: `{"error":"invalid_scope","error_description":"not allowed"}`}, 400, "invalid_scope"},
		{"throttled", fakebi.Fault{Status: 429, Body: `{"code":"too_many_requests"}`}, 503, "HTTP 429"},
		{"failed", fakebi.Fault{Status: 500, Body: `{"code":"internal_server_error"}`}, 502, "may have issued a token"},
		{"slow", fakebi.Fault{Delay: 10e9}, 504, "timed out after 5s"},
	}
	for _, tc := range tests {
		e.fake.SetFault(fakebi.OpToken, tc.fault)
		_, err := e.vault.client.Logical().Read("beyondidentity/creds/r")
		var respErr *api.ResponseError
		if !errors.As(err, &respErr) || respErr.StatusCode != tc.status || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: got %v, want HTTP %d saying %q", tc.name, err, tc.status, tc.says)
		}
	}
	e.fake.ClearFaults()
	for _, token := range e.fake.Tokens() {
		if e.fake.IsActive(token.Value) {
			t.Errorf("token %s was left valid", token.ID)
		}
	}
}
