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
	// Unreadable says why what the claims grant cannot be trusted: a claim
	// that appears twice, in two forms that disagree, in another case, or in
	// a form that cannot be read. Empty when the claims read plainly.
	Unreadable string
}

// maxJWTLen bounds the input ReadClaims looks at.
const maxJWTLen = 64 << 10

// grantClaims are the claims that say what a token grants: a key that
// differs from one of them only by case is a second form of it.
var grantClaims = []string{"scope", "scp", "bi_custom"}

// ReadClaims decodes the payload of a compact JWS. It reports false for
// anything that is not a three-part token with a JSON object payload, which
// is how an opaque (referential) token is recognised.
func ReadClaims(token string) (Claims, bool) {
	if len(token) > maxJWTLen {
		return Claims{}, false
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return Claims{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return Claims{}, false
	}
	fields, duplicated, ok := objectFields(payload)
	if !ok {
		return Claims{}, false
	}
	return claimsOf(fields, duplicated), true
}

// claimsOf reads the members of a JSON object of claims. A claim of the
// wrong type is left empty (jti, exp) or makes the grant unreadable (scope,
// scp, bi_custom), never the whole set.
func claimsOf(fields map[string]json.RawMessage, duplicated []string) Claims {
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
	claims.Unreadable = grantProblem(fields, duplicated)
	if claims.Unreadable == "" {
		claims.Scopes, claims.HasScopes, claims.Unreadable = scopeClaims(fields)
	}
	return claims
}

// grantProblem says what makes a claim set's grant ambiguous: a key that
// appears twice, or a grant claim written in another case as well.
func grantProblem(fields map[string]json.RawMessage, duplicated []string) string {
	if len(duplicated) > 0 {
		return fmt.Sprintf("the claim %q appears more than once", CleanText(duplicated[0], 32))
	}
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
		return scope.Parse(text), ""
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
	return scope.Normalize(list), ""
}

// objectFields splits a JSON object into its members, raw, and lists the
// keys that appear more than once (encoding/json would silently keep the
// last). It reports false for anything but one JSON object.
func objectFields(data []byte) (map[string]json.RawMessage, []string, bool) {
	var fields map[string]json.RawMessage
	if !isJSONObject(data) || json.Unmarshal(data, &fields) != nil || fields == nil {
		return nil, nil, false
	}
	if topLevelMembers(data) == len(fields) {
		return fields, nil, true
	}
	return fields, duplicatedKeys(data), true
}

// topLevelMembers counts the members of a valid JSON object: the colons
// outside strings at its first depth. It is the cheap test for a key that
// appears twice, which a token's claims almost never hold.
func topLevelMembers(data []byte) int {
	members, depth, inString, escaped := 0, 0, false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		case c == ':' && depth == 1:
			members++
		}
	}
	return members
}

// duplicatedKeys lists the keys of a valid JSON object that appear more
// than once, in order.
func duplicatedKeys(data []byte) []string {
	decoder := json.NewDecoder(bytes.NewReader(data))
	_, _ = decoder.Token() // {
	seen := map[string]bool{}
	var duplicated []string
	for decoder.More() {
		key, err := decoder.Token()
		if err != nil {
			return duplicated
		}
		var value json.RawMessage
		if decoder.Decode(&value) != nil {
			return duplicated
		}
		if name, _ := key.(string); seen[name] {
			duplicated = append(duplicated, name)
		} else {
			seen[name] = true
		}
	}
	return duplicated
}
