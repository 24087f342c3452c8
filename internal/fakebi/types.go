package fakebi

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"
)

// TokenFormat is the format of the access tokens an application issues.
type TokenFormat string

const (
	// SelfContained tokens are JWTs whose claims anyone can read.
	SelfContained TokenFormat = "self_contained"
	// Referential tokens are opaque strings; only introspection reveals their claims.
	Referential TokenFormat = "referential"
)

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
	// WidenScopes are added to every grant, allowed or not: the token
	// answer's scope, the JWT's scope claim, introspection and Token.Scopes
	// all carry them. It stands for a server that grants more than asked.
	WidenScopes []string
	// CapLifetime, when set, is the longest a token lives, whatever
	// expiration_time asks: a server that silently issues shorter tokens
	// than asked (ExpiresAfter refuses a longer request instead). The
	// answer's expires_in says the capped life.
	CapLifetime time.Duration
	// Outlive is added to the lifetime asked for, in the token and in its
	// answer's expires_in: a server that issues tokens living longer than
	// asked, so a test can tell a revoked token from one that expired.
	Outlive time.Duration
	// Misreport makes the tokens' own claims (the JWT's, and what
	// introspection shows) say other than their answer: a server whose
	// answer cannot be trusted.
	Misreport Misreport
}

// Misreport is how a token's own claims differ from its answer's.
type Misreport struct {
	// ExtraScopes are granted by the token's claims beyond the answer's
	// scope, in the place ScopeForm says.
	ExtraScopes []string
	// ScopeForm is how the claims carry the scopes.
	ScopeForm ScopeForm
	// DropCustomClaims leaves bi_custom out of the claims, whatever
	// custom_claims were sent.
	DropCustomClaims bool
	// Payload, when set, writes a JWT's payload segment from its claims
	// (JSON, as introspection shows them): a server that writes what a
	// plain reader refuses (a key twice, NaN, standard base64...). Nil
	// means base64url of the claims, as RFC 7515 says.
	Payload func(claims []byte) string
}

// ScopeForm is how a token's claims carry its scopes.
type ScopeForm string

// The forms of the scope claims. Every form but the first two keeps scope
// as the answer says and puts the ExtraScopes elsewhere.
const (
	ScopeString   ScopeForm = ""          // "scope": "a:read b:read", the documented form, extras included
	ScopeList     ScopeForm = "list"      // "scope": ["a:read", "b:read"], extras included
	ScopeTwice    ScopeForm = "twice"     // "scope" a second time, with the extras
	ScopeTwoCases ScopeForm = "two-cases" // "Scope" beside "scope", with the extras
	ScopeInScp    ScopeForm = "scp"       // "scp" beside "scope", with the extras
)

// Op names the endpoint a request was addressed to.
type Op string

// The endpoints of the fake; OpUnknown is any other path.
const (
	OpToken      Op = "token"
	OpRevoke     Op = "revoke"
	OpIntrospect Op = "introspect"
	OpUnknown    Op = "unknown"
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
		c.Form, _ = url.ParseQuery(c.Form.Encode())
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

// mintedToken is the fake's record of a token.
type mintedToken struct {
	Token
	issuer    string          // iss claim, repeated by introspection
	custom    json.RawMessage // custom_claims as sent, the source of CustomClaims
	misreport Misreport       // the application's, when the token was minted
}

// export returns a copy of t that shares nothing with the record.
func (t *mintedToken) export() Token {
	out := t.Token
	out.Scopes = slices.Clone(t.Scopes)
	if t.custom != nil {
		out.CustomClaims, _ = decodeObject(string(t.custom))
	}
	return out
}

// activeAt reports whether t works at the given time.
func (t *mintedToken) activeAt(now time.Time) bool {
	return t.RevokedAt.IsZero() && now.Before(t.ExpiresAt)
}

// issuedBy reports whether app issued t.
func (t *mintedToken) issuedBy(app Application) bool {
	return t.TenantID == app.TenantID && t.RealmID == app.RealmID && t.ApplicationID == app.ID
}

// decodeObject decodes one JSON object, keeping numbers as json.Number; nil
// when raw is anything else.
func decodeObject(raw string) (map[string]any, bool) {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil || m == nil || strings.TrimSpace(raw[dec.InputOffset():]) != "" {
		return nil, false
	}
	return m, true
}
