package biclient

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"time"
)

// Claims are the few JWT claims the plugin keeps for bookkeeping. They are
// read without checking the signature, so they never decide anything that
// matters for security: Beyond Identity, not the plugin, enforces the token.
type Claims struct {
	ID        string    // jti
	ExpiresAt time.Time // exp; zero when absent or malformed
	Scope     *string   // scope; nil when absent
}

// maxJWTLen bounds the input ReadClaims looks at.
const maxJWTLen = 64 << 10

// ReadClaims decodes the payload of a compact JWS. It reports false for
// anything that is not a three-part token with a JSON object payload, which
// is how an opaque (referential) token is recognised. Claims of the wrong
// type are left empty rather than failing the token.
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
	// Only the kept claims are copied out; each is decoded on its own so
	// that one of the wrong type leaves only itself empty. (Like every
	// struct decoding, a claim named in another case, "JTI", matches too.)
	var raw struct {
		JTI   json.RawMessage `json:"jti"`
		Scope json.RawMessage `json:"scope"`
		Exp   json.RawMessage `json:"exp"`
	}
	if !isJSONObject(payload) || json.Unmarshal(payload, &raw) != nil {
		return Claims{}, false
	}
	var claims Claims
	var jti, scope string
	if json.Unmarshal(raw.JTI, &jti) == nil {
		claims.ID = jti
	}
	if json.Unmarshal(raw.Scope, &scope) == nil {
		claims.Scope = &scope
	}
	var exp float64
	if json.Unmarshal(raw.Exp, &exp) == nil && exp > 0 && exp < math.MaxInt32*4 {
		claims.ExpiresAt = time.Unix(int64(exp), 0).UTC()
	}
	return claims, true
}
