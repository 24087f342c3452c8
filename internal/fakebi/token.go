package fakebi

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/scope"
)

// mintRequest is a validated client-credentials request.
type mintRequest struct {
	scopes   []string
	lifetime int64 // seconds
	custom   json.RawMessage
}

// handleToken serves POST {issuer}/token, the client-credentials grant, in
// RFC 6749 order: body, client, grant type, then the grant's parameters.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, in *incoming) {
	apps := s.applications(in.route.tenant, in.route.realm, in.route.app)
	if !knownPost(w, r, apps) {
		return
	}
	req, oerr := checkMint(in, apps)
	if oerr != nil {
		oerr.write(w)
		return
	}
	tok := s.mint(issuerURL(r, in.route), apps[0], req)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok.Value,
		"token_type":   "Bearer",
		"expires_in":   req.lifetime,
		"scope":        scope.Format(tok.Scopes),
	})
}

// checkMint authenticates and validates a token request.
func checkMint(in *incoming, apps []Application) (mintRequest, *oauthError) {
	app, oerr := authenticate(in, apps)
	if oerr != nil {
		return mintRequest{}, oerr
	}
	switch in.form.Get("grant_type") {
	case "client_credentials":
	case "":
		return mintRequest{}, &oauthError{"invalid_request", "grant_type is required"}
	default:
		return mintRequest{}, &oauthError{"unsupported_grant_type", "only grant_type client_credentials is supported"}
	}
	var req mintRequest
	if req.scopes, oerr = grantScopes(in.form.Get("scope"), app); oerr != nil {
		return req, oerr
	}
	if req.lifetime, oerr = parseLifetime(in.form, app); oerr != nil {
		return req, oerr
	}
	if capped := int64(app.CapLifetime / time.Second); capped > 0 {
		req.lifetime = min(req.lifetime, capped)
	}
	req.lifetime += int64(app.Outlive / time.Second)
	if raw, ok := in.form["custom_claims"]; ok {
		if _, ok := decodeObject(raw[0]); !ok {
			return req, &oauthError{"invalid_request", "custom_claims must be a JSON object"}
		}
		req.custom = json.RawMessage(raw[0])
	}
	return req, nil
}

// grantScopes decides the scopes of a token: every allowed scope when none
// is asked for, else the requested ones, which must all be allowed unless
// the application narrows grants; plus any scopes the application widens
// grants with.
func grantScopes(requested string, app Application) ([]string, *oauthError) {
	granted := scope.Parse(requested)
	if len(granted) == 0 {
		granted = app.AllowedScopes
	} else if refused := scope.Missing(granted, app.AllowedScopes); len(refused) > 0 {
		if !app.NarrowScopes {
			return nil, &oauthError{"invalid_scope", fmt.Sprintf("scope %s is not allowed for this application", strings.Join(refused, ", "))}
		}
		if granted = scope.Missing(granted, refused); len(granted) == 0 {
			// Nothing left to grant once the refused scopes are dropped.
			return nil, &oauthError{"invalid_scope", "none of the requested scopes is allowed for this application"}
		}
	}
	return scope.Normalize(append(append([]string{}, granted...), app.WidenScopes...)), nil
}

// parseLifetime reads expiration_time: whole seconds, at least one and at
// most the application's expires_after, which is also the default.
func parseLifetime(form url.Values, app Application) (int64, *oauthError) {
	limit := int64(app.ExpiresAfter / time.Second)
	if limit <= 0 {
		limit = 7776000 // the documented default of Management API applications: 90 days
	}
	values, ok := form["expiration_time"]
	if !ok {
		return limit, nil
	}
	seconds, err := strconv.ParseInt(values[0], 10, 64)
	if err != nil || strings.Trim(values[0], "0123456789") != "" || seconds < 1 || seconds > limit {
		return 0, &oauthError{"invalid_request", fmt.Sprintf("expiration_time must be a whole number of seconds from 1 to %d, the application's expires_after", limit)}
	}
	return seconds, nil
}

// mint creates, records and returns a copy of a token of app.
func (s *Server) mint(issuer string, app Application, req mintRequest) Token {
	issuedAt := time.Unix(s.now().Unix(), 0).UTC()
	tok := &mintedToken{issuer: issuer, custom: req.custom, misreport: app.Misreport, Token: Token{
		ID: randomString(24), Format: cmp.Or(app.TokenFormat, SelfContained),
		TenantID: app.TenantID, RealmID: app.RealmID, ApplicationID: app.ID, ClientID: app.ClientID,
		Scopes: req.scopes, IssuedAt: issuedAt, ExpiresAt: issuedAt.Add(time.Duration(req.lifetime) * time.Second),
	}}
	tok.Value = randomString(48)
	if tok.Format == SelfContained {
		tok.Value = jwt(tok)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = append(s.tokens, tok)
	s.byValue[tok.Value] = tok
	return tok.export()
}

// claims returns the documented JWT claims of t, also the basis of
// introspection, changed as the application misreports.
func (t *mintedToken) claims() map[string]any {
	principal := fmt.Sprintf("tenants/%s/realms/%s/applications/%s", t.TenantID, t.RealmID, t.ApplicationID)
	c := map[string]any{
		"iss": t.issuer, "sub": t.ClientID, "aud": []string{"beyondidentity"},
		"exp": t.ExpiresAt.Unix(), "nbf": t.IssuedAt.Unix(), "iat": t.IssuedAt.Unix(),
		"jti": t.ID, "scope": scope.Format(t.Scopes),
		"azp": principal, "bi_p": principal, "bi_t": t.TenantID, "bi_r": "*",
	}
	if t.custom != nil && !t.misreport.DropCustomClaims {
		c["bi_custom"] = t.custom
	}
	if len(t.misreport.ExtraScopes) == 0 && t.misreport.ScopeForm == ScopeString {
		return c
	}
	wider := t.widerScopes()
	switch t.misreport.ScopeForm {
	case ScopeString:
		c["scope"] = scope.Format(wider)
	case ScopeList:
		c["scope"] = wider
	case ScopeTwoCases:
		c["Scope"] = scope.Format(wider)
	case ScopeInScp:
		c["scp"] = scope.Format(wider)
	}
	return c
}

// widerScopes are t's scopes and the application's misreported extras.
func (t *mintedToken) widerScopes() []string {
	return scope.Normalize(append(slices.Clone(t.Scopes), t.misreport.ExtraScopes...))
}

// claimsJSON encodes t's claims with extra members, and for ScopeTwice a
// second scope member, the wider one, which no map can hold.
func (t *mintedToken) claimsJSON(extra map[string]any) []byte {
	c := t.claims()
	maps.Copy(c, extra) // a nil extra copies nothing
	// Cannot fail: custom_claims, the only part from outside, decoded as JSON.
	encoded, _ := json.Marshal(c)
	if t.misreport.ScopeForm == ScopeTwice {
		wider, _ := json.Marshal(scope.Format(t.widerScopes()))
		encoded = append(append(append(encoded[:len(encoded)-1], `,"scope":`...), wider...), '}')
	}
	return encoded
}

// keyID is the kid of every JWT of the process.
var keyID = randomString(16)

// jwt returns a JWT of t's claims with the documented RS256 header. The
// signature is random bytes of an RS256 signature's length: the plugin reads
// the claims without verifying them, so a real key would only cost time.
func jwt(t *mintedToken) string {
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": keyID})
	enc := base64.RawURLEncoding.EncodeToString
	payload := enc(t.claimsJSON(nil))
	if t.misreport.Payload != nil {
		payload = t.misreport.Payload(t.claimsJSON(nil))
	}
	return enc(header) + "." + payload + "." + randomString(256)
}

// randomString returns n random bytes, base64url encoded without padding.
func randomString(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never fails: it aborts the program instead (Go 1.24+).
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
