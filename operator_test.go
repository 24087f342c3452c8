package beyondidentity

// An operator's mistake gets an answer that says what to do, and nothing is
// stored or minted on a mistake.

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestAParameterThePathDoesNotTakeIsRefused(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	e.mustOK(logical.CreateOperation, "static-roles/ci", map[string]any{"scopes": "identities:read"})
	e.fake.ResetCalls()
	for name, tc := range map[string]struct {
		op        logical.Operation
		path      string
		data      map[string]any
		fragments []string
	}{
		"max-ttl on a role": {logical.CreateOperation, "roles/x", map[string]any{"scopes": "identities:read", "max-ttl": "1h"},
			[]string{"'max-ttl' is not a parameter of beyondidentity/roles/x (did you mean max_ttl?). It takes", "nothing was stored"}},
		"tll on a role": {logical.CreateOperation, "roles/x", map[string]any{"scopes": "identities:read", "tll": "1h"},
			[]string{"'tll'", "did you mean ttl?"}},
		"scope on a role": {logical.CreateOperation, "roles/x", map[string]any{"scope": "identities:read"},
			[]string{"'scope'", "did you mean scopes?"}},
		"a typo on a static role": {logical.UpdateOperation, "static-roles/ci", map[string]any{"rotation-period": "1h"},
			[]string{"'rotation-period'", "did you mean rotation_period?"}},
		"a typo on a creds read": {logical.ReadOperation, "creds/sync", map[string]any{"tttl": "1h"},
			[]string{"'tttl'", "did you mean ttl?", "nothing was minted"}},
		"a typo on a creds write": {logical.UpdateOperation, "creds/sync", map[string]any{"scope": "identities:read"},
			[]string{"'scope'", "did you mean scopes?", "nothing was minted"}},
		"a typo on config": {logical.UpdateOperation, "config", map[string]any{"client-secret": "x"},
			[]string{"'client-secret'", "did you mean client_secret?"}},
		"anything on rotate-role": {logical.UpdateOperation, "rotate-role/ci", map[string]any{"force": true},
			[]string{"'force' is not a parameter", "It takes no parameters"}},
		"nothing near": {logical.CreateOperation, "roles/x", map[string]any{"scopes": "identities:read", "colour": "blue"},
			[]string{"'colour' is not a parameter", "It takes only claims_template, custom_claims, description, max_ttl, scopes, ttl"}},
	} {
		t.Run(name, func(t *testing.T) {
			status, message := statusOf(e.request(tc.op, tc.path, tc.data))
			if status != http.StatusBadRequest {
				t.Fatalf("status %d: %q", status, message)
			}
			for _, fragment := range tc.fragments {
				if !strings.Contains(message, fragment) {
					t.Errorf("message %q lacks %q", message, fragment)
				}
			}
		})
	}
	if resp, _ := e.request(logical.ReadOperation, "roles/x", nil); resp != nil {
		t.Fatal("a refused write stored the role")
	}
	if calls := e.fake.Calls(); len(calls) != 0 {
		t.Fatalf("refused requests called Beyond Identity: %v", opsOf(calls))
	}
}

// A delete or a list given a parameter its path does not take is refused as
// a write is, and deletes nothing: confirm=no must never read as a yes.
func TestADeleteOrListWithAParameterItDoesNotTakeIsRefused(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	e.switchToSecondApplication()
	ids := e.mustOK(logical.ListOperation, "config/retained/", nil).Data["keys"].([]string)
	e.mustOK(logical.CreateOperation, "static-roles/ci", map[string]any{"scopes": "identities:read"})
	for name, tc := range map[string]struct {
		op        logical.Operation
		path      string
		fragments []string
	}{
		"confirm=no on a retained delete": {logical.DeleteOperation, "config/retained/" + ids[0],
			[]string{"'confirm' is not a parameter of beyondidentity/config/retained/" + ids[0], "It takes no parameters; nothing was deleted"}},
		"a typo on a role delete":        {logical.DeleteOperation, "roles/sync", []string{"'confirm'", "nothing was deleted"}},
		"a typo on a static role delete": {logical.DeleteOperation, "static-roles/ci", []string{"'confirm'", "nothing was deleted"}},
		"a config delete":                {logical.DeleteOperation, "config", []string{"'confirm'", "nothing was deleted"}},
		"a list of roles":                {logical.ListOperation, "roles/", []string{"'confirm' is not a parameter of beyondidentity/roles/"}},
		"a list of revocations":          {logical.ListOperation, "revocations/", []string{"'confirm'"}},
	} {
		t.Run(name, func(t *testing.T) {
			status, message := statusOf(e.request(tc.op, tc.path, map[string]any{"confirm": "no"}))
			if status != http.StatusBadRequest {
				t.Fatalf("status %d: %q", status, message)
			}
			for _, fragment := range tc.fragments {
				if !strings.Contains(message, fragment) {
					t.Errorf("message %q lacks %q", message, fragment)
				}
			}
		})
	}
	if after := e.mustOK(logical.ListOperation, "config/retained/", nil).Data["keys"].([]string); len(after) != len(ids) {
		t.Fatalf("a refused delete dropped retained credentials: %v, then %v", ids, after)
	}
	for _, path := range []string{"roles/sync", "static-roles/ci", "config"} {
		if resp := e.mustOK(logical.ReadOperation, path, nil); resp == nil {
			t.Fatalf("a refused delete removed %s", path)
		}
	}
}

func TestEveryWriteAnswersWithWhatItStored(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	role := e.writeRole("x", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	if role.Data["ttl"] != int64(3600) || role.Data["max_ttl"] != int64(0) {
		t.Fatalf("a role write answers %v", role.Data)
	}
	// Writes merge with what is stored: the answer shows the merged role.
	role = e.mustOK(logical.UpdateOperation, "roles/x", map[string]any{"description": "nightly"})
	if role.Data["ttl"] != int64(3600) || role.Data["description"] != "nightly" {
		t.Fatalf("an update answers %v, want the stored ttl kept", role.Data)
	}
	static := e.mustOK(logical.CreateOperation, "static-roles/ci", map[string]any{"scopes": "identities:read"})
	if static.Data["token_id"] == "" || static.Data["next_vault_rotation"] == "" || static.Data["access_token"] != nil {
		t.Fatalf("a static-role write answers %v", keysOf(static.Data))
	}
	before := static.Data["token_id"]
	rotated := e.mustOK(logical.UpdateOperation, "rotate-role/ci", nil)
	if rotated.Data["token_id"] == before || rotated.Data["token_id"] != e.lastToken().ID || rotated.Data["last_vault_rotation"] == "" ||
		rotated.Data["next_vault_rotation"] == "" || len(rotated.Data) != 3 {
		t.Fatalf("rotate-role answers %v", rotated.Data)
	}
	assertNoSecretIn(t, e, strings.Join([]string{errorText(static), warningsOf(static)}, " "))
	for _, path := range []string{"roles/x", "static-roles/ci"} {
		if resp := e.mustOK(logical.DeleteOperation, path, nil); resp != nil {
			t.Errorf("deleting %s answers %v, want nothing (204)", path, resp.Data)
		}
	}
}

// A region that auth_url overrides does nothing: the write says so.
func TestARegionThatAuthURLOverridesIsWarnedOf(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	resp := e.mustOK(logical.CreateOperation, "config", e.configData(map[string]any{"region": "eu"}))
	if !strings.Contains(warningsOf(resp), "'region' (eu) has no effect while 'auth_url' is set") {
		t.Fatalf("warnings: %s", warningsOf(resp))
	}
}

// vault read <mount>/metrics shows the counters as JSON, one entry per
// series; format=prometheus gives the exposition (telemetry_test.go).
func TestMetricsAreJSONByDefault(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	e.issue("sync", nil)
	resp := e.mustOK(logical.ReadOperation, "metrics", nil)
	if got := resp.Data[`beyondidentity_tokens_issued_total{role="sync"}`]; got != float64(1) {
		t.Fatalf("tokens issued reads %v; data keys %v", got, keysOf(resp.Data))
	}
	if _, ok := resp.Data[`beyondidentity_upstream_latency_seconds_count{call="token"}`]; !ok {
		t.Fatal("the latency histogram has no count")
	}
	if resp.Data[logical.HTTPRawBody] != nil {
		t.Fatal("the JSON answer is a raw body")
	}
	status, message := statusOf(e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation,
		Path: "metrics", Data: map[string]any{"format": "yaml"}, Storage: e.storage}))
	if status != http.StatusBadRequest || !strings.Contains(message, "'format'") {
		t.Fatalf("format=yaml: %d %q", status, message)
	}
}

// A name the role paths refuse gets an answer that says which names are
// valid, not Vault's "unsupported path"; a duration that is none says what
// durations are.
func TestAnInvalidNameOrDurationSaysWhatWouldDo(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	for _, path := range []string{"roles/scim.", "static-roles/-x", "creds/a/b", "static-creds/x!", "rotate-role/.x"} {
		status, message := statusOf(e.request(logical.UpdateOperation, path, map[string]any{"scopes": "identities:read"}))
		if status != http.StatusBadRequest || !strings.Contains(message, "may use only letters, digits") {
			t.Errorf("%s: %d %q", path, status, message)
		}
	}
	status, message := statusOf(e.request(logical.CreateOperation, "roles/x", map[string]any{"scopes": "identities:read", "ttl": "1 day"}))
	if status != http.StatusBadRequest || !strings.Contains(message, "'ttl' must be a duration") || !strings.Contains(message, "1 day is 24h") {
		t.Fatalf("ttl=\"1 day\": %d %q", status, message)
	}
	if resp, _ := e.request(logical.ReadOperation, "roles/x", nil); resp != nil {
		t.Fatal("a refused write stored the role")
	}
}

// The wrong path names the right one: creds/ of a static role, and
// static-creds/ or rotate-role/ of a role of leases, is a 400 that says
// which path serves it, and mints nothing.
func TestTheWrongPathNamesTheRightOne(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	e.mustOK(logical.CreateOperation, "static-roles/ci-export", map[string]any{"scopes": "identities:read"})
	e.fake.ResetCalls()
	for _, tc := range []struct {
		op        logical.Operation
		path      string
		fragments []string
	}{
		{logical.ReadOperation, "creds/ci-export", []string{`"ci-export" is a static role`, "read it at beyondidentity/static-creds/ci-export"}},
		{logical.ReadOperation, "static-creds/sync", []string{`"sync" is a role of leases`, "beyondidentity/creds/sync"}},
		{logical.UpdateOperation, "rotate-role/sync", []string{`"sync" is a role of leases`, "beyondidentity/rotate-role/sync serves only static roles"}},
	} {
		status, message := statusOf(e.request(tc.op, tc.path, nil))
		if status != http.StatusBadRequest {
			t.Errorf("%s: %d %q", tc.path, status, message)
		}
		for _, fragment := range tc.fragments {
			if !strings.Contains(message, fragment) {
				t.Errorf("%s: message %q lacks %q", tc.path, message, fragment)
			}
		}
	}
	if calls := e.fake.Calls(); len(calls) != 0 {
		t.Fatalf("a wrong path called Beyond Identity: %v", opsOf(calls))
	}
}
