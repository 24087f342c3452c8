package biclient

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/scope"
)

// Claims are what a token's own claims say of it: a JWT's payload, or an
// RFC 7662 introspection answer. They are read without checking any
// signature: Beyond Identity enforces the token, and the plugin only checks
// that the token grants what was asked, and refuses it otherwise.
type Claims struct {
	ID        string    // jti
	ExpiresAt time.Time // exp; zero when absent or malformed
	// Scopes are the scopes granted, from scope and scp, each a
	// space-separated string or a list of strings; HasScopes says whether
	// either claim is there.
	Scopes    []string
	HasScopes bool
	// Custom is bi_custom, the custom claims the token was minted with, as
	// JSON; nil when absent.
	Custom json.RawMessage
	// Unreadable says why what the claims grant cannot be trusted: claims
	// that cannot be read plainly (a key written twice, say), a claim in
	// two forms that disagree, in another case, or in a form that cannot be
	// read. Empty when the claims read plainly.
	Unreadable string
	// PayloadUnread says that a JWT's payload could not be read at all:
	// nothing of it is known, its exp included.
	PayloadUnread bool
}

// maxJWTLen bounds a JWT the plugin reads: a longer one is unreadable.
const maxJWTLen = 64 << 10

// grantClaims are the claims that say what a token grants: a key that
// differs from one of them only by case is a second form of it.
var grantClaims = []string{"scope", "scp", "bi_custom"}

// ReadClaims reads a JWT's claims, without checking any signature. A token
// is a JWT by its shape: three dot-separated parts, the first base64 of a
// JSON object with "alg". It reports false for any other token: an opaque
// one, whose claims only introspection tells. The header is read leniently
// (either base64 alphabet, padded or not), so that no token passes for
// opaque by a careless encoding; the payload strictly. A JWT whose payload
// cannot be read plainly comes back with Unreadable saying why and
// PayloadUnread set: nothing is known of it, its exp included.
func ReadClaims(token string) (Claims, bool) {
	header, payload, ok := jwtSegments(token)
	if !ok || !isJOSEHeader(header) {
		return Claims{}, false
	}
	data, problem := plainPayload(token, payload)
	var fields map[string]json.RawMessage
	if problem == "" && json.Unmarshal(data, &fields) != nil {
		problem = "encoding/json cannot read it" // PlainObjectProblem accepts only what it reads
	}
	if problem != "" {
		return Claims{Unreadable: "its payload cannot be read plainly: " + problem, PayloadUnread: true}, true
	}
	return claimsOf(fields), true
}

func jwtSegments(token string) (header, payload string, ok bool) {
	header, rest, found := strings.Cut(token, ".")
	payload, signature, found2 := strings.Cut(rest, ".")
	if !found || !found2 || header == "" || strings.Contains(signature, ".") {
		return "", "", false
	}
	return header, payload, true
}

// isJOSEHeader reports whether segment is a JOSE header: base64 of a JSON
// object with "alg".
func isJOSEHeader(segment string) bool {
	segment = strings.NewReplacer("+", "-", "/", "_").Replace(strings.TrimRight(segment, "="))
	decoded, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		return false
	}
	var header map[string]json.RawMessage
	if json.Unmarshal(bytes.TrimPrefix(decoded, []byte("\uFEFF")), &header) != nil {
		return false
	}
	_, hasAlg := header["alg"]
	return hasAlg
}

// plainPayload decodes a JWT's payload, or says why it cannot be read
// plainly: a token longer than maxJWTLen, anything but base64url without
// padding (RFC 7515), or a payload PlainObjectProblem refuses.
func plainPayload(token, segment string) ([]byte, string) {
	if len(token) > maxJWTLen {
		return nil, fmt.Sprintf("the token is longer than %d KiB", maxJWTLen>>10)
	}
	if strings.IndexFunc(segment, func(r rune) bool { return !isBase64URLChar(r) }) >= 0 {
		return nil, "it is not base64url without padding"
	}
	data, err := base64.RawURLEncoding.Strict().DecodeString(segment)
	if err != nil {
		return nil, "it is not base64url without padding"
	}
	if problem := PlainObjectProblem(data); problem != "" {
		return nil, problem
	}
	return data, ""
}

func isBase64URLChar(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

// claimsOf reads the members of a JSON object of claims. A claim of the
// wrong type is left empty (jti, exp) or makes the grant unreadable (scope,
// scp, bi_custom), never the whole set.
func claimsOf(fields map[string]json.RawMessage) Claims {
	var claims Claims
	var jti string
	if json.Unmarshal(fields["jti"], &jti) == nil {
		claims.ID = jti
	}
	var exp float64
	if json.Unmarshal(fields["exp"], &exp) == nil && exp > 0 && exp < math.MaxInt32*4 {
		claims.ExpiresAt = time.Unix(int64(exp), 0).UTC()
	}
	if raw, ok := fields["bi_custom"]; ok && string(raw) != "null" {
		claims.Custom = raw
	}
	claims.Unreadable = grantProblem(fields)
	if claims.Unreadable == "" {
		claims.Scopes, claims.HasScopes, claims.Unreadable = scopeClaims(fields)
	}
	return claims
}

// grantProblem says what makes a claim set's grant ambiguous: a grant
// claim written in another case as well. (A key written twice never gets
// here: PlainObjectProblem refuses it.)
func grantProblem(fields map[string]json.RawMessage) string {
	for key := range fields {
		for _, claim := range grantClaims {
			if key != claim && strings.EqualFold(key, claim) {
				return fmt.Sprintf("the claim %q is a second form of %q", CleanText(key, 32), claim)
			}
		}
	}
	return ""
}

// scopeClaims reads scope and scp. When both are there they must grant the
// same; each is a space-separated string or a list of scope strings.
func scopeClaims(fields map[string]json.RawMessage) ([]string, bool, string) {
	var granted []string
	found := false
	for _, claim := range []string{"scope", "scp"} {
		raw, ok := fields[claim]
		if !ok {
			continue
		}
		scopes, err := scopeClaim(raw)
		if err != "" {
			return nil, false, fmt.Sprintf("the claim %q %s", claim, err)
		}
		if found && !slices.Equal(scopes, granted) {
			return nil, false, `the claims "scope" and "scp" grant different scopes`
		}
		granted, found = scopes, true
	}
	return granted, found, ""
}

// scopeClaim reads one scope claim into the normal form, or says why it
// cannot.
func scopeClaim(raw json.RawMessage) ([]string, string) {
	var text string
	if json.Unmarshal(raw, &text) == nil {
		return checkedScopes(scope.Parse(text))
	}
	var list []string
	if json.Unmarshal(raw, &list) != nil {
		return nil, "is neither a string nor a list of strings"
	}
	for _, s := range list {
		if strings.ContainsAny(s, " \t\r\n") {
			return nil, "lists an entry that holds several scopes"
		}
	}
	return checkedScopes(scope.Normalize(list))
}

// checkedScopes passes scopes that are all well-formed, or says which is
// not: a scope that is none is no grant the plugin can compare.
func checkedScopes(scopes []string) ([]string, string) {
	for _, s := range scopes {
		if !scope.Valid(s) {
			return nil, fmt.Sprintf("grants %q, which is not a scope (%s)", CleanText(s, 64), scope.Syntax)
		}
	}
	return scopes, ""
}

// objectFields splits a JSON object into its members, raw. It reports
// false for anything encoding/json does not read as one JSON object;
// problem says why an object it reads cannot be read plainly
// (PlainObjectProblem), "" when it can.
func objectFields(data []byte) (fields map[string]json.RawMessage, problem string, ok bool) {
	if !isJSONObject(data) || json.Unmarshal(data, &fields) != nil || fields == nil {
		return nil, "", false
	}
	return fields, PlainObjectProblem(data), true
}
