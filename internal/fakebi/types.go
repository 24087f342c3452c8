package fakebi

import (
	"net/url"
	"slices"
	"time"
)

// TokenFormat is the format of the access tokens an application issues.
type TokenFormat string

const (
	// SelfContained tokens are RS256-signed JWTs whose claims anyone can read.
	SelfContained TokenFormat = "self_contained"
	// Referential tokens are opaque strings; only introspection reveals their claims.
	Referential TokenFormat = "referential"
)

// defaultExpiresAfter is the Management API application's documented default
// token lifetime (90 days), used when Application.ExpiresAfter is zero.
const defaultExpiresAfter = 7776000 * time.Second

// Application is one Beyond Identity application holding client credentials.
type Application struct {
	TenantID, RealmID, ID  string
	ClientID, ClientSecret string
	// AllowedScopes are the scopes tokens may carry; a mint without `scope`
	// gets all of them.
	AllowedScopes []string
	// ExpiresAfter is token_configuration.expires_after: the default token
	// lifetime and the upper bound for expiration_time. Zero means 7776000s.
	ExpiresAfter time.Duration
	// TokenFormat is the format of minted tokens; zero means SelfContained.
	TokenFormat TokenFormat
	// NarrowScopes makes the token endpoint silently drop requested scopes the
	// application does not allow, instead of answering 400 invalid_scope.
	NarrowScopes bool
}

// lifetime returns the application's token lifetime in whole seconds.
func (a Application) lifetime() int64 {
	seconds := int64(a.ExpiresAfter / time.Second)
	if seconds <= 0 {
		return int64(defaultExpiresAfter / time.Second)
	}
	return seconds
}

// format returns the application's token format, applying the default.
func (a Application) format() TokenFormat {
	if a.TokenFormat == "" {
		return SelfContained
	}
	return a.TokenFormat
}

// Op names the endpoint a request was addressed to.
type Op string

// The endpoints of the fake.
const (
	OpToken       Op = "token"
	OpRevoke      Op = "revoke"
	OpIntrospect  Op = "introspect"
	OpJWKS        Op = "jwks"
	OpDiscovery   Op = "discovery"
	OpListTokens  Op = "list_tokens"
	OpDeleteToken Op = "delete_token"
	OpUnknown     Op = "unknown"
)

// Call records one request exactly as received, secrets included, so that a
// test can assert what the client sent. It never leaves the process unless a
// test prints it.
type Call struct {
	Op           Op
	Method, Path string
	ContentType  string
	// Form is the parsed body of an application/x-www-form-urlencoded
	// request; nil for other requests.
	Form                     url.Values
	BasicAuth                bool
	BasicUser, BasicPassword string
	Bearer                   string
	// Status is the status the fake answered; 0 while the answer is pending,
	// or when the client went away before the fake answered.
	Status int
	// At is the arrival time according to the server's clock.
	At time.Time
}

// clone returns a deep copy of c.
func (c Call) clone() Call {
	if c.Form != nil {
		form := make(url.Values, len(c.Form))
		for k, v := range c.Form {
			form[k] = slices.Clone(v)
		}
		c.Form = form
	}
	return c
}

// Token is one token the fake minted.
type Token struct {
	// ID is the jti: 32 URL-safe characters.
	ID string
	// Value is the access token itself.
	Value                                      string
	Format                                     TokenFormat
	TenantID, RealmID, ApplicationID, ClientID string
	// Scopes are the granted scopes, sorted.
	Scopes []string
	// CustomClaims are the custom_claims sent at mint time (nil when none).
	// Numbers are json.Number so that they round-trip exactly.
	CustomClaims        map[string]any
	IssuedAt, ExpiresAt time.Time
	// RevokedAt is zero while the token is not revoked.
	RevokedAt time.Time
}

// clone returns a deep copy of t.
func (t Token) clone() Token {
	t.Scopes = slices.Clone(t.Scopes)
	if t.CustomClaims != nil {
		t.CustomClaims = cloneJSON(t.CustomClaims).(map[string]any)
	}
	return t
}

// activeAt reports whether t works at the given time.
func (t Token) activeAt(now time.Time) bool {
	return t.RevokedAt.IsZero() && now.Before(t.ExpiresAt)
}

// hasScope reports whether t carries scope.
func (t Token) hasScope(scope string) bool {
	return slices.Contains(t.Scopes, scope)
}

// mintedToken is the fake's record of a token: the exported view plus what
// only the fake needs.
type mintedToken struct {
	Token
	seq    int64  // mint order, used as the list cursor
	issuer string // iss claim, repeated by introspection
}
