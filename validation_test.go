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
		op   logical.Operation
		path string
		data map[string]any // for config: overrides of a valid config
		// field is the field the message must name, quoted as 'field';
		// rule is the part of the message that states the rule broken.
		field, rule string
	}{
		"config tenant_id missing":              {logical.CreateOperation, "config", map[string]any{"tenant_id": nil}, "tenant_id", "is required"},
		"config tenant_id with a slash":         {logical.CreateOperation, "config", map[string]any{"tenant_id": "a/../b"}, "tenant_id", "only letters, digits"},
		"config tenant_id too long":             {logical.CreateOperation, "config", map[string]any{"tenant_id": longID}, "tenant_id", "at most 128 characters"},
		"config realm_id empty":                 {logical.CreateOperation, "config", map[string]any{"realm_id": ""}, "realm_id", "must not be empty"},
		"config application_id with space":      {logical.CreateOperation, "config", map[string]any{"application_id": "my app"}, "application_id", "only letters, digits"},
		"config client_id with colon":           {logical.CreateOperation, "config", map[string]any{"client_id": "a:b"}, "client_id", "must not contain ':'"},
		"config client_id missing":              {logical.CreateOperation, "config", map[string]any{"client_id": nil}, "client_id", "is required"},
		"config client_id too long":             {logical.CreateOperation, "config", map[string]any{"client_id": strings.Repeat("c", 257)}, "client_id", "at most 256 characters"},
		"config client_secret missing":          {logical.CreateOperation, "config", map[string]any{"client_secret": nil}, "client_secret", "is required"},
		"config client_secret with space":       {logical.CreateOperation, "config", map[string]any{"client_secret": "two words"}, "client_secret", "printable ASCII characters without spaces"},
		"config client_secret too long":         {logical.CreateOperation, "config", map[string]any{"client_secret": strings.Repeat("s", 1025)}, "client_secret", "at most 1024 characters"},
		"config region unknown":                 {logical.CreateOperation, "config", map[string]any{"region": "mars"}, "region", "must be one of eu, us, us-fedramp"},
		"config auth_url plain http":            {logical.CreateOperation, "config", map[string]any{"auth_url": "http://auth.example.com"}, "auth_url", "must use https://"},
		"config auth_url other scheme":          {logical.CreateOperation, "config", map[string]any{"auth_url": "ftp://auth.example.com"}, "auth_url", "must use https://"},
		"config auth_url with credentials":      {logical.CreateOperation, "config", map[string]any{"auth_url": "https://u:p@auth.example.com"}, "auth_url", "must not contain credentials"},
		"config auth_url with query":            {logical.CreateOperation, "config", map[string]any{"auth_url": "https://auth.example.com/?a=b"}, "auth_url", "must not contain a query"},
		"config auth_url relative":              {logical.CreateOperation, "config", map[string]any{"auth_url": "auth.example.com"}, "auth_url", "must be an absolute URL"},
		"config ca_cert not PEM":                {logical.CreateOperation, "config", map[string]any{"ca_cert": "not a certificate"}, "ca_cert", "PEM bundle of at least one certificate"},
		"config ca_cert a private key":          {logical.CreateOperation, "config", map[string]any{"ca_cert": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, "ca_cert", "only PEM CERTIFICATE blocks"},
		"config request_timeout zero":           {logical.CreateOperation, "config", map[string]any{"request_timeout": "0s"}, "request_timeout", "between 1s and 5m0s"},
		"config request_timeout too long":       {logical.CreateOperation, "config", map[string]any{"request_timeout": "10m"}, "request_timeout", "between 1s and 5m0s"},
		"config request_timeout not a duration": {logical.CreateOperation, "config", map[string]any{"request_timeout": "soon"}, "request_timeout", "soon"},
		"config max_retries negative":           {logical.CreateOperation, "config", map[string]any{"max_retries": -1}, "max_retries", "between 0 and 10, got -1"},
		"config max_retries above 10":           {logical.CreateOperation, "config", map[string]any{"max_retries": 11}, "max_retries", "between 0 and 10, got 11"},
		"config max_concurrent_requests zero":   {logical.CreateOperation, "config", map[string]any{"max_concurrent_requests": 0}, "max_concurrent_requests", "between 1 and 256, got 0"},
		"config max_concurrent_requests 257":    {logical.CreateOperation, "config", map[string]any{"max_concurrent_requests": 257}, "max_concurrent_requests", "between 1 and 256, got 257"},
		"config verify_connection not a bool":   {logical.CreateOperation, "config", map[string]any{"verify_connection": "perhaps"}, "verify_connection", "perhaps"},

		"role scopes missing":           {logical.CreateOperation, "roles/r", map[string]any{"ttl": "1h"}, "scopes", "is required"},
		"role scopes upper case":        {logical.CreateOperation, "roles/r", map[string]any{"scopes": "Identities:Read"}, "scopes", "which is not a scope"},
		"role scope of one segment":     {logical.CreateOperation, "roles/r", map[string]any{"scopes": "identities"}, "scopes", "which is not a scope"},
		"role scope with empty segment": {logical.CreateOperation, "roles/r", map[string]any{"scopes": "identities::read"}, "scopes", "which is not a scope"},
		"role scope with a space":       {logical.CreateOperation, "roles/r", map[string]any{"scopes": []string{"identities: read"}}, "scopes", "which is not a scope"},
		"role scopes only commas":       {logical.CreateOperation, "roles/r", map[string]any{"scopes": ",,"}, "scopes", "is required"},
		"role scope too long":           {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:" + strings.Repeat("b", 127)}, "scopes", "of 129 characters: each must be at most 128"},
		"role scope far too long":       {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:" + strings.Repeat("b", 5000)}, "scopes", "each must be at most 128"},
		"role too many scopes":          {logical.CreateOperation, "roles/r", map[string]any{"scopes": manyScopes(65)}, "scopes", "at most 64 scopes, got 65"},
		"role ttl negative":             {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "ttl": "-1h"}, "ttl", "cannot provide negative value"},
		"role ttl above max_ttl":        {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "ttl": "2h", "max_ttl": "1h"}, "ttl", "'ttl' of 2h (7200s) must not exceed 'max_ttl' of 1h (3600s)"},
		"role ttl above 90 days":        {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "ttl": "7776001s"}, "ttl", "at most 7776000s (90 days)"},
		"role max_ttl above 90 days":    {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "max_ttl": "2161h"}, "max_ttl", "at most 7776000s (90 days)"},
		"role max_ttl not a duration":   {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "max_ttl": "forever"}, "max_ttl", "forever"},
		"role custom_claims not JSON":   {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "custom_claims": "team=sre"}, "custom_claims", "must be a JSON object"},
		"role custom_claims empty key":  {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "custom_claims": map[string]any{"": 1}}, "custom_claims", "must not have an empty key"},
		"role custom_claims too large":  {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "custom_claims": hugeClaims}, "custom_claims", "at most 8192 bytes of JSON, got 9011"},
		"role description too long":     {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "description": strings.Repeat("d", 1025)}, "description", "at most 1024 characters, got 1025"},
		"role description far too long": {logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "description": strings.Repeat("d", 200<<10)}, "description", "at most 1024 characters"},
		"role name too long":            {logical.CreateOperation, "roles/" + strings.Repeat("n", 129), map[string]any{"scopes": "a:b"}, "name", "at most 128 characters"},

		"creds unknown role":          {logical.ReadOperation, "creds/nope", nil, "name", "must be a role written at beyondidentity/roles/nope"},
		"creds ttl above max_ttl":     {logical.UpdateOperation, "creds/reader", map[string]any{"ttl": "2h"}, "ttl", "'ttl' of 2h (7200s) must not exceed the max_ttl of role \"reader\", 1h (3600s)"},
		"creds ttl not a duration":    {logical.UpdateOperation, "creds/reader", map[string]any{"ttl": "later"}, "ttl", "later"},
		"creds scope outside role":    {logical.UpdateOperation, "creds/reader", map[string]any{"scopes": "groups:read"}, "scopes", "must be a subset of the scopes of role \"reader\": it does not grant groups:read"},
		"creds scope malformed":       {logical.UpdateOperation, "creds/reader", map[string]any{"scopes": "GROUPS"}, "scopes", "which is not a scope"},
		"creds scopes given but none": {logical.UpdateOperation, "creds/reader", map[string]any{"scopes": ""}, "scopes", "at least one of the role's scopes"},
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
			if !strings.Contains(msg, "'"+tc.field+"'") && !strings.Contains(msg, `"`+tc.field+`"`) {
				t.Fatalf("message %q does not name '%s'", msg, tc.field)
			}
			if !strings.Contains(msg, tc.rule) {
				t.Fatalf("message %q does not state the rule %q", msg, tc.rule)
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
		// {"blob":"..."} is 11 bytes of JSON around the value: 8192 in all.
		"custom_claims": map[string]any{"blob": strings.Repeat("x", 8192-11)},
	})
	for _, bounds := range []map[string]any{
		{"max_retries": 0, "max_concurrent_requests": 1, "request_timeout": "1s"},
		{"max_retries": 10, "max_concurrent_requests": 256, "request_timeout": "5m"},
	} {
		e.mustOK(logical.CreateOperation, "config", e.configData(bounds))
		read := e.mustOK(logical.ReadOperation, "config", nil)
		if read.Data["max_retries"] != bounds["max_retries"] || read.Data["max_concurrent_requests"] != bounds["max_concurrent_requests"] {
			t.Fatalf("config at its bounds %v reads back %v", bounds, read.Data)
		}
	}
}
