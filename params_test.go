package beyondidentity

// A parameter the path does not take is refused, and a bad name or
// duration says what would do.

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
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

// A secret field of the wrong type is refused before the framework
// converts it, whose error would quote the value: the answer names the
// field and what it must be, and neither it nor the log at trace holds any
// part of the secret. Vault's existence check, which runs first, answers
// without an error.
func TestASecretOfTheWrongTypeIsRefusedWithoutItsValue(t *testing.T) {
	t.Parallel()
	const secret = "wrong-type-secret-Zq81xWv3"
	for name, tc := range map[string]struct {
		value any
		kind  string
	}{
		"a key given twice on the command line": {[]any{secret, secret}, "a list: give it once"},
		"a list of one":                         {[]any{secret}, "a list"},
		"a list of strings":                     {[]string{secret}, "a list"},
		"an object":                             {map[string]any{"v": secret}, "an object"},
		"a number":                              {json.Number("12345678901234567890"), "a number"},
		"a bool":                                {true, "a bool"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newTestBackend(t)
			data := e.configData(map[string]any{"client_secret": tc.value})
			for _, op := range []logical.Operation{logical.CreateOperation, logical.UpdateOperation} {
				req := &logical.Request{Operation: op, Path: "config", Storage: e.storage, Data: data}
				// Neither error is printed: it may quote the secret.
				if _, _, err := e.b.HandleExistenceCheck(context.Background(), req); err != nil {
					t.Fatal("the existence check failed, which Vault logs as an ERROR of its own")
				}
				status, message := statusOf(e.request(op, "config", data))
				for _, part := range []string{"Zq81xWv3", "12345678901234567890"} {
					if strings.Contains(message, part) {
						t.Fatalf("%s: the answer quotes the secret", op)
					}
				}
				if status != http.StatusBadRequest || !strings.Contains(message, "'client_secret' must be a string") ||
					!strings.Contains(message, tc.kind) || !strings.Contains(message, "nothing was stored") {
					t.Fatalf("%s: status %d, message %q", op, status, message)
				}
			}
			if strings.Contains(e.logs.String(), "Zq81xWv3") || strings.Contains(e.logs.String(), "12345678901234567890") {
				t.Fatal("the log holds the secret")
			}
			if resp, _ := e.request(logical.ReadOperation, "config", nil); resp != nil {
				t.Fatal("a refused write stored the config")
			}
			if calls := e.fake.Calls(); len(calls) != 0 {
				t.Fatalf("a refused write called Beyond Identity: %v", opsOf(calls))
			}
		})
	}
}

// An internal route is never published: path-help and the OpenAPI document
// list only paths an operator may call, and a bad name still gets its
// answer.
func TestNoCatchAllRouteIsPublished(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	for _, path := range e.b.Paths {
		if strings.Contains(path.Pattern, "(?P<family>") || strings.Contains(path.Pattern, ".+") {
			t.Errorf("route %q is a catch-all", path.Pattern)
		}
	}
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.HelpOperation, Path: "", Storage: e.storage})
	if err != nil {
		t.Fatal(err)
	}
	doc, ok := resp.Data["openapi"].(*framework.OASDocument)
	if !ok {
		t.Fatalf("no OpenAPI document in the help: %T", resp.Data["openapi"])
	}
	for path := range doc.Paths {
		if strings.Contains(path, "{family}") {
			t.Errorf("the OpenAPI document publishes the catch-all %s", path)
		}
	}
}
