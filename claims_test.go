package beyondidentity

// Custom claims and claims templates come back unchanged from any JSON
// reader: numbers it would round, nesting past the bound and text after a
// template's object are refused on write.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestANumberAJSONReaderMayRoundIsRefusedOnWrite(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	e.fake.ResetCalls()
	refused := map[string]any{
		"infinity":              json.Number("1e400"),
		"underflow":             json.Number("1e-400"),
		"2^53+1":                json.Number("9007199254740993"),
		"-(2^53+1)":             json.Number("-9007199254740993"),
		"a big integer":         json.Number("12345678901234567891"),
		"an exponent integer":   json.Number("1e16"),
		"17 significant digits": json.Number("0.30000000000000001"),
		"a huge exponent":       json.Number("1e1000000000000"),
		"a float above 2^53":    float64(1e20),
	}
	for name, number := range refused {
		for _, tc := range []struct {
			op   logical.Operation
			path string
			data map[string]any
		}{
			{logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "custom_claims": map[string]any{"n": number}}},
			{logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "custom_claims": `{"deep":{"list":[1,` + numberString(number) + `]}}`}},
			{logical.CreateOperation, "roles/r", map[string]any{"scopes": "a:b", "claims_template": `{"who": {{identity.entity.id}}, "n": ` + numberString(number) + `}`}},
			{logical.CreateOperation, "static-roles/s", map[string]any{"scopes": "identities:read", "custom_claims": map[string]any{"n": number}}},
		} {
			t.Run(name+" "+tc.path, func(t *testing.T) {
				status, message := statusOf(e.request(tc.op, tc.path, tc.data))
				if status != http.StatusBadRequest || !strings.Contains(message, "which a JSON reader may round") ||
					!strings.Contains(message, "2^53") || !strings.Contains(message, "write it as a string") {
					t.Fatalf("status %d: %q", status, message)
				}
			})
		}
	}
	for _, path := range []string{"roles/r", "static-roles/s"} {
		if resp, _ := e.request(logical.ReadOperation, path, nil); resp != nil {
			t.Fatalf("a refused write stored %s", path)
		}
	}
	if calls := e.fake.Calls(); len(calls) != 0 {
		t.Fatalf("refused writes called Beyond Identity: %v", opsOf(calls))
	}
}

// Numbers a reader gives back unchanged are kept as written, end to end.
func TestANumberAJSONReaderKeepsIsStoredAsWritten(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	const claims = `{"max":9007199254740992,"min":-9007199254740992,"half":1.50,"tenth":0.1,"small":2.5e-3,"zero":-0,"big":1e15}`
	e.writeRole("r", map[string]any{"scopes": "identities:read", "custom_claims": claims,
		"claims_template": `{"who": {{identity.entity.id}}, "ratio": 0.75}`})
	got, _ := json.Marshal(e.mustOK(logical.ReadOperation, "roles/r", nil).Data["custom_claims"])
	if want := `{"big":1e15,"half":1.50,"max":9007199254740992,"min":-9007199254740992,"small":2.5e-3,"tenth":0.1,"zero":-0}`; string(got) != want {
		t.Fatalf("custom_claims read %s, want %s", got, want)
	}
	e.mustOK(logical.CreateOperation, "roles/native", map[string]any{"scopes": "identities:read",
		"custom_claims": map[string]any{"f": 1.5, "i": 42, "max": float64(1 << 53)}})
	// Beyond Identity gets them as written, and its token's bi_custom
	// passes the check of what was sent.
	e.writeRole("sent", map[string]any{"scopes": "identities:read", "custom_claims": claims})
	e.issue("sent", nil)
	sent := e.lastToken().CustomClaims
	if fmt.Sprint(sent["max"]) != "9007199254740992" || fmt.Sprint(sent["half"]) != "1.50" || fmt.Sprint(sent["small"]) != "2.5e-3" {
		t.Fatalf("Beyond Identity was sent %v", sent)
	}
}

func TestClaimsNestingIsBounded(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	nested := func(levels int, inner string) string {
		// Closing braces apart: a template reads }} as a placeholder's end.
		return strings.Repeat(`{"a":`, levels-1) + inner + strings.Repeat(` }`, levels-1)
	}
	for name, tc := range map[string]struct {
		data map[string]any
		ok   bool
	}{
		"custom_claims at 32 levels":                      {map[string]any{"custom_claims": nested(32, `{"b":1}`)}, true},
		"custom_claims at 33 levels":                      {map[string]any{"custom_claims": nested(33, `{"b":1}`)}, false},
		"custom_claims lists count":                       {map[string]any{"custom_claims": nested(31, `{"b":[[1]]}`)}, false},
		"custom_claims 5000 levels":                       {map[string]any{"custom_claims": nested(5000, `{}`)}, false},
		"custom_claims object 33 levels":                  {map[string]any{"custom_claims": nestedMap(33)}, false},
		"custom_claims object 32 levels":                  {map[string]any{"custom_claims": nestedMap(32)}, true},
		"a placeholder at level 32":                       {map[string]any{"claims_template": nested(31, `{"who":{{identity.entity.id}} }`)}, true},
		"claims_template at 33 levels":                    {map[string]any{"claims_template": nested(33, `{"who":"x"}`)}, false},
		"a placeholder at level 33, as a list may render": {map[string]any{"claims_template": nested(32, `{"g":{{identity.entity.groups.names}} }`)}, false},
		"claims_template 1000 levels":                     {map[string]any{"claims_template": nested(1000, `{}`)}, false},
		"a brace inside a string is no level":             {map[string]any{"claims_template": nested(32, `{"s":"{[{["}`)}, true},
	} {
		t.Run(name, func(t *testing.T) {
			data := map[string]any{"scopes": "identities:read"}
			for k, v := range tc.data {
				data[k] = v
			}
			status, message := statusOf(e.request(logical.CreateOperation, "roles/deep", data))
			if tc.ok {
				if status != http.StatusOK {
					t.Fatalf("refused: %q", message)
				}
				return
			}
			if status != http.StatusBadRequest || !strings.Contains(message, "at most 32 levels") {
				t.Fatalf("status %d: %q", status, message)
			}
		})
	}
}

// nestedMap is an object levels deep, as a JSON request body arrives.
func nestedMap(levels int) map[string]any {
	object := map[string]any{"b": 1}
	for range levels - 1 {
		object = map[string]any{"a": object}
	}
	return object
}

func TestNothingMayFollowAClaimsObject(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	for name, data := range map[string]map[string]any{
		"a ] after a template":        {"claims_template": `{"who": {{identity.entity.id}} }]`},
		"a } after a template":        {"claims_template": `{"who": {{identity.entity.id}} } }`},
		"a second object":             {"claims_template": `{"who": {{identity.entity.id}} } {"x":1}`},
		"a } after custom_claims":     {"custom_claims": `{"team":"sre"}}`},
		"a ] after custom_claims":     {"custom_claims": `{"team":"sre"}]`},
		"a value after custom_claims": {"custom_claims": `{"team":"sre"} 1`},
	} {
		t.Run(name, func(t *testing.T) {
			data["scopes"] = "identities:read"
			status, message := statusOf(e.request(logical.CreateOperation, "roles/trailing", data))
			if status != http.StatusBadRequest || !strings.Contains(message, "with nothing after it") {
				t.Fatalf("status %d: %q", status, message)
			}
		})
	}
	if resp, _ := e.request(logical.ReadOperation, "roles/trailing", nil); resp != nil {
		t.Fatal("a refused write stored the role")
	}
}

func TestKeptExact(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]bool{
		"0": true, "-0": true, "9007199254740992": true, "-9007199254740992": true, "9007199254740993": false,
		"9.007199254740992e15": true, "90071992547409920e-1": true, "1e16": false, "1.5": true, "1.50": true,
		"0.1": true, "2.5e-3": true, "0.30000000000000001": false, "0.3": true, "1e400": false, "1e-400": false,
		"1e308": false, "1.7976931348623157e308": false, "5e-324": true, "1e-1000000000000": false, "": false, "-": false, "1.2.3": false,
	} {
		if got := keptExact(text); got != want {
			t.Errorf("keptExact(%q) = %v, want %v", text, got, want)
		}
	}
}

func numberString(n any) string {
	text, _ := numberText(n)
	return text
}
