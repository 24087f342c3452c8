package beyondidentity

// roles/: written, read back as written, listed and deleted.

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestRoleDefaultsAndNormalization(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	resp := e.writeRole("sync", map[string]any{"scopes": " identities:read,groups:read,identities:read "})
	if len(resp.Warnings) != 0 {
		t.Fatalf("unexpected warnings with the mount ceiling at 2160h: %v", resp.Warnings)
	}
	got := e.mustOK(logical.ReadOperation, "roles/sync", nil).Data
	want := map[string]any{
		"scopes":      []string{"groups:read", "identities:read"},
		"ttl":         int64(7776000),
		"max_ttl":     int64(0),
		"description": "",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("role = %#v, want %#v", got, want)
	}
}

func TestRoleTTLDefaults(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		data        map[string]any
		ttl, maxTTL int64
	}{
		"ttl only: max_ttl follows, as 0":  {map[string]any{"ttl": "1h"}, 3600, 0},
		"max_ttl only: ttl follows":        {map[string]any{"max_ttl": "2h"}, 7200, 7200},
		"both":                             {map[string]any{"ttl": "1h", "max_ttl": "24h"}, 3600, 86400},
		"seconds as integers":              {map[string]any{"ttl": 60, "max_ttl": 120}, 60, 120},
		"90 days is the longest":           {map[string]any{"max_ttl": "7776000s"}, 7776000, 7776000},
		"max_ttl only above the default":   {map[string]any{"max_ttl": "2160h"}, 7776000, 7776000},
		"ttl equal to max_ttl is accepted": {map[string]any{"ttl": "30m", "max_ttl": "30m"}, 1800, 1800},
		"zero means the default":           {map[string]any{"ttl": 0, "max_ttl": "0s"}, 7776000, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newTestBackend(t)
			tc.data["scopes"] = "identities:read"
			e.writeRole("r", tc.data)
			got := e.mustOK(logical.ReadOperation, "roles/r", nil).Data
			if got["ttl"] != tc.ttl || got["max_ttl"] != tc.maxTTL {
				t.Fatalf("ttl %v max_ttl %v, want %d %d", got["ttl"], got["max_ttl"], tc.ttl, tc.maxTTL)
			}
		})
	}
}

func TestRoleMaxTTLFollowsTTLUntilSet(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.writeRole("r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	e.mustOK(logical.UpdateOperation, "roles/r", map[string]any{"ttl": "2h"})
	got := e.mustOK(logical.ReadOperation, "roles/r", nil).Data
	if got["ttl"] != int64(7200) || got["max_ttl"] != int64(0) {
		t.Fatalf("a max_ttl never set should read 0: %v %v", got["ttl"], got["max_ttl"])
	}
	// It follows ttl: a credential lives ttl, and asking longer is refused.
	e.configure()
	resp, _ := e.request(logical.UpdateOperation, "creds/r", map[string]any{"ttl": "3h"})
	if resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "max_ttl of role \"r\", 2h (7200s)") {
		t.Fatalf("a max_ttl following ttl should bound creds at ttl: %s", errorText(resp))
	}
	e.mustOK(logical.UpdateOperation, "roles/r", map[string]any{"max_ttl": "3h"})
	e.mustOK(logical.UpdateOperation, "roles/r", map[string]any{"ttl": "1h"})
	got = e.mustOK(logical.ReadOperation, "roles/r", nil).Data
	if got["ttl"] != int64(3600) || got["max_ttl"] != int64(10800) {
		t.Fatalf("a max_ttl that was set should stay: %v %v", got["ttl"], got["max_ttl"])
	}
	// The documented reset reads back as written, 0, and follows ttl again.
	if got := e.mustOK(logical.UpdateOperation, "roles/r", map[string]any{"max_ttl": 0}).Data["max_ttl"]; got != int64(0) {
		t.Fatalf("the write of max_ttl=0 answers max_ttl %v, want 0", got)
	}
	if got := e.mustOK(logical.ReadOperation, "roles/r", nil).Data["max_ttl"]; got != int64(0) {
		t.Fatalf("max_ttl=0 should read back 0, got %v", got)
	}
	e.mustOK(logical.UpdateOperation, "roles/r", map[string]any{"ttl": "30m"})
	if resp, _ := e.request(logical.UpdateOperation, "creds/r", map[string]any{"ttl": "31m"}); resp == nil || !resp.IsError() ||
		!strings.Contains(resp.Error().Error(), "(1800s)") {
		t.Fatalf("after max_ttl=0 the role's max_ttl should follow ttl to 1800s: %s", errorText(resp))
	}
}

func TestRoleUpdateKeepsUnsetFields(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.writeRole("r", map[string]any{
		"scopes": "identities:read", "ttl": "1h", "max_ttl": "2h",
		"custom_claims": map[string]any{"team": "sre"}, "description": "sync job",
	})
	e.mustOK(logical.UpdateOperation, "roles/r", map[string]any{"scopes": []string{"groups:read"}})
	got := e.mustOK(logical.ReadOperation, "roles/r", nil).Data
	if !reflect.DeepEqual(got["scopes"], []string{"groups:read"}) || got["ttl"] != int64(3600) || got["max_ttl"] != int64(7200) ||
		got["description"] != "sync job" || !reflect.DeepEqual(got["custom_claims"], map[string]any{"team": "sre"}) {
		t.Fatalf("update lost fields: %#v", got)
	}
	resp, _ := e.request(logical.UpdateOperation, "roles/r", map[string]any{"max_ttl": "30m"})
	if resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "'ttl' of 1h (3600s) must not exceed 'max_ttl' of 30m (1800s)") {
		t.Fatalf("lowering max_ttl under the stored ttl: %s", errorText(resp))
	}
}

func TestRoleListAndDelete(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	for _, name := range []string{"b", "a", "c"} {
		e.writeRole(name, map[string]any{"scopes": "identities:read"})
	}
	keys := e.mustOK(logical.ListOperation, "roles/", nil).Data["keys"]
	if !reflect.DeepEqual(keys, []string{"a", "b", "c"}) {
		t.Fatalf("list = %v", keys)
	}
	e.mustOK(logical.DeleteOperation, "roles/b", nil)
	if resp, _ := e.request(logical.ReadOperation, "roles/b", nil); resp != nil {
		t.Fatal("deleted role still readable")
	}
	keys = e.mustOK(logical.ListOperation, "roles/", nil).Data["keys"]
	if !reflect.DeepEqual(keys, []string{"a", "c"}) {
		t.Fatalf("list after delete = %v", keys)
	}
}

func TestRoleWarnsWhenTheMountCeilingCaps(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.sys.MaxLeaseTTLVal = 768 * time.Hour
	resp := e.writeRole("long", map[string]any{"scopes": "identities:read"})
	if resp == nil || len(resp.Warnings) != 1 {
		t.Fatalf("want one warning, got %v", resp)
	}
	warning := resp.Warnings[0]
	for _, part := range []string{"ttl of 2160h (7776000s) exceeds", "768h (2764800s)", "capped", "vault secrets tune -max-lease-ttl=2160h beyondidentity/"} {
		if !strings.Contains(warning, part) {
			t.Errorf("warning %q lacks %q", warning, part)
		}
	}
	if resp := e.writeRole("short", map[string]any{"scopes": "identities:read", "ttl": "24h"}); len(resp.Warnings) != 0 {
		t.Fatalf("a role under the ceiling must not warn: %v", resp.Warnings)
	}
	resp = e.writeRole("odd", map[string]any{"scopes": "identities:read", "ttl": "1h", "max_ttl": "2764801s"})
	if resp == nil || !strings.Contains(resp.Warnings[0], "-max-lease-ttl=2764801s") {
		t.Fatalf("the tune command must carry the exact max_ttl: %v", resp)
	}
}

// Role names are case-sensitive, like the paths Vault's policies match: a
// policy denying creds/admin must not be bypassed through creds/ADMIN.
func TestRoleNamesAreCaseSensitive(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	e.writeRole("admin", map[string]any{"scopes": "identities:update"})
	if resp := e.mustOK(logical.ReadOperation, "roles/ADMIN", nil); resp != nil {
		t.Fatal("roles/ADMIN read the role admin")
	}
	resp, err := e.request(logical.ReadOperation, "creds/ADMIN", nil)
	if err != nil || resp == nil || !resp.IsError() || e.mintedSinceConfigure() != 0 {
		t.Fatalf("creds/ADMIN must not issue admin's token: %s %v", errorText(resp), err)
	}
	e.writeRole("Admin", map[string]any{"scopes": "groups:read"})
	if got := e.mustOK(logical.ReadOperation, "roles/admin", nil).Data["scopes"]; !reflect.DeepEqual(got, []string{"identities:update"}) {
		t.Fatalf("writing roles/Admin changed admin: %v", got)
	}
}

func TestRoleCustomClaimsAsJSONString(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.writeRole("r", map[string]any{"scopes": "identities:read", "custom_claims": `{"team":"sre","level":2,"id":9007199254740992}`})
	got, _ := json.Marshal(e.mustOK(logical.ReadOperation, "roles/r", nil).Data["custom_claims"])
	if string(got) != `{"id":9007199254740992,"level":2,"team":"sre"}` {
		t.Fatalf("custom_claims = %s", got)
	}
	e.mustOK(logical.UpdateOperation, "roles/r", map[string]any{"custom_claims": ""})
	if got := e.mustOK(logical.ReadOperation, "roles/r", nil).Data["custom_claims"]; got != nil {
		t.Fatalf("an empty string should clear custom_claims, got %#v", got)
	}
}

// Vault runs the existence check before the request, with the same data,
// and logs any error it returns as an ERROR of its own: it answers whether
// the role exists whatever the request carries, and the request itself is
// refused.
func TestRoleExistenceCheckAnswersWhateverTheRequestCarries(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.writeRole("r", map[string]any{"scopes": "a:b"})
	for name, data := range map[string]map[string]any{
		"claims as a string":      {"scopes": "a:b", "custom_claims": `{"team":"sre"}`},
		"claims that are no JSON": {"scopes": "a:b", "custom_claims": "team=sre"},
		"an unknown parameter":    {"scopes": "a:b", "max-ttl": "1h"},
		"a duration that is none": {"scopes": "a:b", "ttl": "1 day"},
		"a list for a string":     {"scopes": "a:b", "description": []any{"a", "b"}},
	} {
		t.Run(name, func(t *testing.T) {
			for role, want := range map[string]bool{"r": true, "absent": false} {
				req := &logical.Request{Operation: logical.UpdateOperation, Path: "roles/" + role, Storage: e.storage, Data: data}
				checked, exists, err := e.b.HandleExistenceCheck(context.Background(), req)
				if err != nil || !checked || exists != want {
					t.Fatalf("existence check of roles/%s: checked=%v exists=%v err=%v, want %v and no error", role, checked, exists, err, want)
				}
			}
		})
	}
	status, message := statusOf(e.request(logical.UpdateOperation, "roles/r", map[string]any{"custom_claims": "team=sre"}))
	if status != http.StatusBadRequest || !strings.Contains(message, "'custom_claims' must be a JSON object") {
		t.Fatalf("the request itself: %d %q", status, message)
	}
}

// Answers that say the fix: OAuth's space-separated scopes get a hint to
// use commas.
func TestSpaceSeparatedScopesAreToldToUseCommas(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	for _, tc := range []struct {
		op   logical.Operation
		path string
	}{{logical.CreateOperation, "roles/r"}, {logical.CreateOperation, "static-roles/s"}, {logical.UpdateOperation, "creds/sync"}} {
		status, message := statusOf(e.request(tc.op, tc.path, map[string]any{"scopes": "identities:read  groups:read"}))
		if status != http.StatusBadRequest || !strings.Contains(message, "separate scopes with commas") ||
			!strings.Contains(message, "identities:read,groups:read") {
			t.Errorf("%s: %d %q", tc.path, status, message)
		}
	}
}

// A role and a static role never share a name: the second write is a 400
// naming the first, and stores nothing.
func TestARoleAndAStaticRoleMayNotShareAName(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	e.mustOK(logical.CreateOperation, "static-roles/ci", map[string]any{"scopes": "identities:read"})
	minted := e.mintedSinceConfigure()
	status, message := statusOf(e.request(logical.CreateOperation, "roles/ci", map[string]any{"scopes": "identities:read"}))
	if status != http.StatusBadRequest || !strings.Contains(message, "is already a static role (beyondidentity/static-roles/ci)") {
		t.Fatalf("a role named as a static role: %d %q", status, message)
	}
	status, message = statusOf(e.request(logical.CreateOperation, "static-roles/sync", map[string]any{"scopes": "identities:read"}))
	if status != http.StatusBadRequest || !strings.Contains(message, "is already a role of leases (beyondidentity/roles/sync)") {
		t.Fatalf("a static role named as a role: %d %q", status, message)
	}
	if resp, _ := e.request(logical.ReadOperation, "roles/ci", nil); resp != nil {
		t.Fatal("the refused role was stored")
	}
	if resp, _ := e.request(logical.ReadOperation, "static-roles/sync", nil); resp != nil {
		t.Fatal("the refused static role was stored")
	}
	if e.mintedSinceConfigure() != minted {
		t.Fatal("the refused static role minted a token")
	}
	// The wrong-path hints still name the other path.
	status, message = statusOf(e.request(logical.ReadOperation, "static-creds/sync", nil))
	if status != http.StatusBadRequest || !strings.Contains(message, "beyondidentity/creds/sync") {
		t.Fatalf("static-creds of a role: %d %q", status, message)
	}
}
