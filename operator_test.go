package beyondidentity

// What an operator meets across paths: every write answers with what it
// stored, and an unknown or wrong path for a role names the right one.

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

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

// Every path that hands out or rotates a credential answers an unknown
// role alike: a 400 naming it. Reading an unknown role's definition stays
// a 404, as in Vault's own engines.
func TestAnUnknownRoleIsA400WhereverACredentialIsAskedFor(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	for _, c := range []struct {
		op   logical.Operation
		path string
	}{{logical.ReadOperation, "creds/nope"}, {logical.ReadOperation, "static-creds/nope"}, {logical.UpdateOperation, "rotate-role/nope"}} {
		status, message := statusOf(e.request(c.op, c.path, nil))
		if status != http.StatusBadRequest || !strings.Contains(message, `"nope" does not exist`) || !strings.Contains(message, "'name'") {
			t.Errorf("%s: %d %q", c.path, status, message)
		}
	}
	for _, path := range []string{"roles/nope", "static-roles/nope"} {
		if resp, err := e.request(logical.ReadOperation, path, nil); resp != nil || err != nil {
			t.Errorf("reading %s: %s %v, want nothing (a 404)", path, errorText(resp), err)
		}
	}
}
