package biclient

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestAJWTWhosePayloadCannotBeReadPlainlyIsUnreadable: a token shaped like
// a JWT is one, and a payload that readers could read differently (or Go
// not at all) makes its grant unreadable, never an opaque token that only
// introspection checks.
func TestAJWTWhosePayloadCannotBeReadPlainlyIsUnreadable(t *testing.T) {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256"}`))
	raw := func(payload string) string {
		return header + "." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
	}
	const claims = `{"scope":"a:read","bi_custom":{"k":"v"}}`
	for name, tc := range map[string]struct {
		token, problem string
	}{
		"standard base64 with padding": {header + "." + base64.StdEncoding.EncodeToString([]byte(claims+" ")) + ".c2ln", "not base64url"},
		"standard alphabet":            {header + "." + base64.RawStdEncoding.EncodeToString([]byte(`{"scope":"a:read","x":"??>"}`)) + ".c2ln", "not base64url"},
		"a byte-order mark":            {raw("\uFEFF" + claims), "byte-order mark"},
		"NaN":                          {raw(`{"scope":"a:read","bi_custom":{"k":NaN}}`), "NaN or Infinity"},
		"Infinity":                     {raw(`{"scope":"a:read","bi_custom":{"k":Infinity}}`), "NaN or Infinity"},
		"-Infinity":                    {raw(`{"scope":"a:read","bi_custom":{"k":-Infinity}}`), "NaN or Infinity"},
		"a hex number":                 {raw(`{"scope":"a:read","bi_custom":{"k":0x10}}`), "not valid JSON"},
		"a leading zero":               {raw(`{"scope":"a:read","bi_custom":{"k":01}}`), "not valid JSON"},
		"trailing bytes":               {raw(claims + `x`), "bytes follow"},
		"a second object":              {raw(claims + `{"scope":"a:read b:write"}`), "bytes follow"},
		"nesting past the bound":       {raw(`{"scope":"a:read","bi_custom":` + strings.Repeat(`[`, maxJSONDepth) + strings.Repeat(`]`, maxJSONDepth) + `}`), "deeper than 64"},
		"a token over 64 KiB":          {raw(`{"scope":"a:read","pad":"` + strings.Repeat("x", maxJWTLen) + `"}`), "longer than 64 KiB"},
		"a key twice, nested":          {raw(`{"scope":"a:read","bi_custom":{"vault_entity":"FORGED","vault_entity":"real"}}`), `"vault_entity" appears more than once`},
		"a key twice, escaped":         {raw(`{"scope":"a:read","bi_custom":{"vault_entity":"FORGED","vault\u005fentity":"real"}}`), `"vault_entity" appears more than once`},
		"a claim twice, escaped":       {raw(`{"scope":"a:read","sc\u006fpe":"a:read b:write"}`), `"scope" appears more than once`},
		"a key twice, deep in a list":  {raw(`{"scope":"a:read","bi_custom":{"l":[{"a":1,"a":2}]}}`), `"a" appears more than once`},
		"invalid UTF-8":                {raw(`{"scope":"a:read","bi_custom":{"k` + "\xff" + `":1,"k` + "\xfe" + `":2}}`), "invalid UTF-8"},
		"a lone surrogate":             {raw(`{"scope":"a:read","bi_custom":{"k\ud800":1,"k\udfff":2}}`), "lone surrogate"},
		"not an object":                {raw(`["scope"]`), "not a JSON object"},
		"an empty payload":             {header + "..c2ln", "not a JSON object"},
	} {
		t.Run(name, func(t *testing.T) {
			claims, isJWT := ReadClaims(tc.token)
			if !isJWT {
				t.Fatal("a token shaped like a JWT was taken for an opaque one")
			}
			if !strings.Contains(claims.Unreadable, tc.problem) || !claims.PayloadUnread || claims.HasScopes || claims.Custom != nil {
				t.Fatalf("Unreadable %q (payload unread %v, scopes %v): want it to say %q and nothing read",
					claims.Unreadable, claims.PayloadUnread, claims.HasScopes, tc.problem)
			}
		})
	}
}

// TestWhatEveryReaderReadsAlikeIsRead: the plain reader refuses only what
// readers may disagree on.
func TestWhatEveryReaderReadsAlikeIsRead(t *testing.T) {
	for name, payload := range map[string]string{
		"escapes":                `{"scope":"a:read","bi_custom":{"k\u00e9\ud83d\ude00\n\"":"\/x","k":-0.5e+10}}`,
		"nesting at the bound":   `{"scope":"a:read","bi_custom":` + strings.Repeat(`[`, maxJSONDepth-1) + strings.Repeat(`]`, maxJSONDepth-1) + `}`,
		"whitespace around":      " \t\r\n" + `{ "scope" : "a:read" , "bi_custom" : { } , "n" : [ 1 , true , false , null ] }` + " \n",
		"same key, other object": `{"scope":"a:read","bi_custom":{"a":{"k":1},"b":{"k":1}}}`,
		"a number beyond float":  `{"scope":"a:read","bi_custom":{"n":1e400}}`,
	} {
		t.Run(name, func(t *testing.T) {
			claims, isJWT := ReadClaims(jwtWithPayload(payload))
			if !isJWT || claims.Unreadable != "" || !claims.HasScopes {
				t.Fatalf("a plain payload was refused: %q", claims.Unreadable)
			}
		})
	}
}

// TestAJWTIsKnownByItsShape: three parts whose header is a JSON object
// with alg, whatever base64 the header is written in; anything else is
// opaque.
func TestAJWTIsKnownByItsShape(t *testing.T) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"scope":"a:read"}`))
	for header, want := range map[string]bool{
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256"}`)):          true,
		base64.StdEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)): true,
		base64.RawURLEncoding.EncodeToString([]byte(`{"al\u0067":"none"}`)):      true,
		base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT"}`)):            false,
		base64.RawURLEncoding.EncodeToString([]byte(`"alg"`)):                    false,
		"not-base64!": false,
	} {
		if _, isJWT := ReadClaims(header + "." + payload + ".c2ln"); isJWT != want {
			t.Errorf("a token with header %q read as a JWT: %v", header, isJWT)
		}
	}
	for _, opaque := range []string{"", "abc", "a.b", "a.b.c.d", ".b.c"} {
		if _, isJWT := ReadClaims(opaque); isJWT {
			t.Errorf("%q read as a JWT", opaque)
		}
	}
}

// TestAnUnreadableJWTMayLiveAsLongAsAnyToken: nothing of its payload is
// known, its exp included, so whoever must revoke it counts it alive for
// the longest life a token may have.
func TestAnUnreadableJWTMayLiveAsLongAsAnyToken(t *testing.T) {
	token := jwtWithPayload(`{"scope":"a:read","exp":1,"x":NaN}`)
	sentAt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	parsed, err := ParseTokenResponse([]byte(`{"access_token":"`+token+`","token_type":"Bearer","expires_in":60}`), sentAt, sentAt, nil)
	if err != nil || parsed.Format != FormatJWT || parsed.Claims == nil || parsed.Claims.Unreadable == "" {
		t.Fatalf("want a JWT whose claims are unreadable, got %v", err)
	}
	if parsed.LatestEnd.Before(sentAt.Add(MaxTokenLifetime)) {
		t.Fatalf("latest end %v: a token whose exp cannot be read may live until %v", parsed.LatestEnd, sentAt.Add(MaxTokenLifetime))
	}
}

// TestPlainObjectReadsAsEncodingJSONDoes: what the plain reader accepts,
// it decodes to exactly what encoding/json with UseNumber gives, numbers
// written as in the text; what it refuses, PlainObject refuses with the
// same words, and gives no value.
func TestPlainObjectReadsAsEncodingJSONDoes(t *testing.T) {
	for _, text := range []string{
		`{}`,
		` {"a" : [ ] , "b" : { } } `,
		`{"k\u00e9\ud83d\ude00\n\"":"\/x","k":-0.5e+10,"ascii then escape":"ab\tc","é":"ü"}`,
		`{"n":[1,1.0,1e0,-0,100000000000000000001,1E-7],"t":true,"f":false,"z":null}`,
		`{"deep":{"l":[{"a":[[]]},"s",{"b":{}}]}}`,
	} {
		got, problem := PlainObject([]byte(text))
		if problem != "" {
			t.Fatalf("PlainObject(%s) refused it: %s", text, problem)
		}
		decoder := json.NewDecoder(strings.NewReader(text))
		decoder.UseNumber()
		var want map[string]any
		if err := decoder.Decode(&want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("PlainObject(%s) = %#v, encoding/json reads %#v", text, got, want)
		}
	}
	for _, text := range []string{`{"a":1,"\u0061":2}`, `{"l":[{"k":1,"k":1}]}`, `{"k":"` + "\xff" + `"}`, `[1]`, `{"n":-Infinity}`} {
		got, problem := PlainObject([]byte(text))
		if problem == "" || problem != PlainObjectProblem([]byte(text)) || got != nil {
			t.Errorf("PlainObject(%q) = %v, %q; PlainObjectProblem says %q", text, got, problem, PlainObjectProblem([]byte(text)))
		}
	}
}

// FuzzPlainObject: whatever PlainObject accepts, encoding/json with
// UseNumber reads to the same value, and PlainObjectProblem agrees.
func FuzzPlainObject(f *testing.F) {
	for _, seed := range []string{`{"a":[1,"b",{"c":null}]}`, `{"k\u00e9":-1.5e3}`, `{"a":1,"\u0061":2}`, `{"s":"a\"b\\c"}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, problem := PlainObject(data)
		if problem != PlainObjectProblem(data) {
			t.Fatalf("PlainObject says %q, PlainObjectProblem %q", problem, PlainObjectProblem(data))
		}
		if problem != "" {
			return
		}
		decoder := json.NewDecoder(bytes.NewReader(data))
		decoder.UseNumber()
		var want map[string]any
		if err := decoder.Decode(&want); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("PlainObject read %#v, encoding/json %#v (%v)", got, want, err)
		}
	})
}
