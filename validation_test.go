package beyondidentity

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// TestBadInputIsA400NamingTheField feeds every rule a value that breaks it
// and checks for a 400 whose message names the field, with no secret in it,
// no call to Beyond Identity and nothing saved.
func TestBadInputIsA400NamingTheField(t *testing.T) {
	t.Parallel()
	longID := strings.Repeat("a", 129)
	hugeClaims := map[string]any{"blob": strings.Repeat("x", 9000)}
	tests := map[string]struct {
		op    logical.Operation
		path  string
		data  map[string]any // for config: overrides of a valid config
		field string
	}{
		"config tenant_id missing":              {logical.CreateOperation, "config", map[string]any{"tenant_id": nil}, "tenant_id"},
		"config tenant_id with a slash":         {logical.CreateOperation, "config", map[string]any{"tenant_id": "a/../b"}, "tenant_id"},
		"config tenant_id too long":             {logical.CreateOperation, "config", map[string]any{"tenant_id": longID}, "tenant_id"},
		"config realm_id empty":                 {logical.CreateOperation, "config", map[string]any{"realm_id": ""}, "realm_id"},
		"config application_id with space":      {logical.CreateOperation, "config", map[string]any{"application_id": "my app"}, "application_id"},
		"config client_id with colon":           {logical.CreateOperation, "config", map[string]any{"client_id": "a:b"}, "client_id"},
		"config client_id missing":              {logical.CreateOperation, "config", map[string]any{"client_id": nil}, "client_id"},
		"config client_secret missing":          {logical.CreateOperation, "config", map[string]any{"client_secret": nil}, "client_secret"},
		"config client_secret with space":       {logical.CreateOperation, "config", map[string]any{"client_secret": "two words"}, "client_secret"},
		"config region unknown":                 {logical.CreateOperation, "config", map[string]any{"region": "mars"}, "region"},
		"config auth_url plain http":            {logical.CreateOperation, "config", map[string]any{"auth_url": "http://auth.example.com"}, "auth_url"},
		"config auth_url other scheme":          {logical.CreateOperation, "config", map[string]any{"auth_url": "ftp://auth.example.com"}, "auth_url"},
		"config auth_url with credentials":      {logical.CreateOperation, "config", map[string]any{"auth_url": "https://u:p@auth.example.com"}, "auth_url"},
		"config auth_url with query":            {logical.CreateOperation, "config", map[string]any{"auth_url": "https://auth.example.com/?a=b"}, "auth_url"},
		"config auth_url relative":              {logical.CreateOperation, "config", map[string]any{"auth_url": "auth.example.com"}, "auth_url"},
		"config ca_cert not PEM":                {logical.CreateOperation, "config", map[string]any{"ca_cert": "not a certificate"}, "ca_cert"},
		"config ca_cert a private key":          {logical.CreateOperation, "config", map[string]any{"ca_cert": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, "ca_cert"},
		"config request_timeout zero":           {logical.CreateOperation, "config", map[string]any{"request_timeout": "0s"}, "request_timeout"},
		"config request_timeout too long":       {logical.CreateOperation, "config", map[string]any{"request_timeout": "10m"}, "request_timeout"},
		"config request_timeout not a duration": {logical.CreateOperation, "config", map[string]any{"request_timeout": "soon"}, "request_timeout"},
		"config verify_connection not a bool":   {logical.CreateOperation, "config", map[string]any{"verify_connection": "perhaps"}, "verify_connection"},

		"role scopes missing":           {logical.CreateOperation, "roles/r", map[string]any{"ttl": "1h"}, "scopes"},
		"role scopes upper case":        {logical.CreateOperation, "roles/r", map[string]any{"scopes": "Identities:Read"}, "scopes"},
		"role scope of one segment":     {logical.CreateOperation, "roles/r", map[string]any{"scopes": "identities"}, "scopes"},
		"role scope with empty segment": {logical.CreateOperation, "roles/r", map[string]any{"scopes": "identities::read"}, "scopes"},
		"role scope with a space":       {logical.CreateOperation, "roles/r", map[string]any{"scopes": []string{"identities: read"}}, "scopes"},
		"role scopes only commas":       {logical.CreateOperation, "roles/r", map[string]any{"scopes": ",,"}, "scopes"},
		"role ttl negative":             {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "ttl": "-1h"}, "ttl"},
		"role ttl above max_ttl":        {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "ttl": "2h", "max_ttl": "1h"}, "max_ttl"},
		"role ttl above 90 days":        {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "ttl": "7776001s"}, "ttl"},
		"role max_ttl above 90 days":    {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "max_ttl": "2161h"}, "max_ttl"},
		"role max_ttl not a duration":   {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "max_ttl": "forever"}, "max_ttl"},
		"role custom_claims not JSON":   {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "custom_claims": "team=sre"}, "custom_claims"},
		"role custom_claims empty key":  {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "custom_claims": map[string]any{"": 1}}, "custom_claims"},
		"role custom_claims too large":  {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "custom_claims": hugeClaims}, "custom_claims"},
		"role scope too long":           {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:" + strings.Repeat("b", 5000)}, "scopes"},
		"role too many scopes":          {logical.CreateOperation, "roles/r", map[string]any{"scopes": manyScopes(65)}, "scopes"},
		"role description too long":     {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "description": strings.Repeat("d", 200<<10)}, "description"},
		"role name too long":            {logical.CreateOperation, "roles/" + strings.Repeat("n", 129), map[string]any{"scopes": "a:b"}, "name"},

		"creds unknown role":          {logical.ReadOperation, "creds/nope", nil, "name"},
		"creds ttl above max_ttl":     {logical.UpdateOperation, "creds/reader", map[string]any{"ttl": "2h"}, "ttl"},
		"creds ttl not a duration":    {logical.UpdateOperation, "creds/reader", map[string]any{"ttl": "later"}, "ttl"},
		"creds scope outside role":    {logical.UpdateOperation, "creds/reader", map[string]any{"scopes": "groups:read"}, "scopes"},
		"creds scope malformed":       {logical.UpdateOperation, "creds/reader", map[string]any{"scopes": "GROUPS"}, "scopes"},
		"creds scopes given but none": {logical.UpdateOperation, "creds/reader", map[string]any{"scopes": ""}, "scopes"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newTestBackend(t)
			e.configure()
			e.writeRole("reader", map[string]any{"scopes": "identities:read", "ttl": "1h"})
			data := tc.data
			if tc.path == "config" {
				e.mustOK(logical.DeleteOperation, "config", nil)
				data = e.configData(tc.data)
			}
			before := len(e.fake.Calls())
			resp, err := e.request(tc.op, tc.path, data)
			if err != nil {
				t.Fatalf("want a 400 error response, got a server error: %v", err)
			}
			if resp == nil || !resp.IsError() {
				t.Fatalf("want a 400 error response, got %s", errorText(resp))
			}
			status, _ := logical.RespondErrorCommon(&logical.Request{Operation: tc.op}, resp, nil)
			if status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", status)
			}
			msg := resp.Error().Error()
			if !strings.Contains(msg, tc.field) {
				t.Fatalf("message %q does not name %q", msg, tc.field)
			}
			if strings.Contains(msg, testClientSecret) || strings.Contains(msg, "two words") {
				t.Fatal("message echoes the client secret")
			}
			if calls := e.fake.Calls()[before:]; len(calls) != 0 {
				t.Fatalf("bad input still called Beyond Identity: %v", opsOf(calls))
			}
			if tc.path == "config" {
				if got, _ := e.request(logical.ReadOperation, "config", nil); got != nil {
					t.Fatal("bad config was saved")
				}
			}
		})
	}
}

// The bounds themselves are accepted.
func TestInputAtItsBoundsIsAccepted(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.writeRole(strings.Repeat("n", 128), map[string]any{
		"scopes": append(manyScopes(63), "a:"+strings.Repeat("b", 126)), "description": strings.Repeat("d", 1024),
	})
}

func TestCredsOnUnconfiguredMountIsA400(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.writeRole("reader", map[string]any{"scopes": "identities:read"})
	resp, err := e.request(logical.ReadOperation, "creds/reader", nil)
	if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "write beyondidentity/config first") {
		t.Fatalf("resp=%s err=%v", errorText(resp), err)
	}
}
