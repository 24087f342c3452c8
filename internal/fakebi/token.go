package fakebi

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// audience is the aud claim of Management API tokens.
const audience = "beyondidentity"

// mintRequest is a validated client-credentials request.
type mintRequest struct {
	scopes       []string
	lifetime     int64 // seconds
	customClaims map[string]any
}

// tokenResponse is the RFC 6749 §5.1 answer of the token endpoint.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// handleToken serves POST {issuer}/token, the client-credentials grant.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, in *incoming) {
	app, ok := s.application(in.route.tenant, in.route.realm, in.route.app)
	if !ok {
		writeAPIError(w, http.StatusNotFound, "not_found", "application not found")
		return
	}
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	req, oerr := checkMint(in, app)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	tok, err := s.mint(issuerURL(r, in.route), app, req)
	if err != nil {
		writeAPIError(w, http.StatusInternalServerError, "internal_server_error", "the token could not be minted")
		return
	}
	noStore(w)
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: tok.Value,
		TokenType:   "Bearer",
		ExpiresIn:   req.lifetime,
		Scope:       strings.Join(tok.Scopes, " "),
	})
}

// checkMint authenticates and validates a token request in RFC 6749 order:
// body, client, grant type, then the grant's parameters.
func checkMint(in *incoming, app Application) (mintRequest, *oauthError) {
	if oerr := checkForm(in); oerr != nil {
		return mintRequest{}, oerr
	}
	if oerr := authenticateApp(in, app); oerr != nil {
		return mintRequest{}, oerr
	}
	if oerr := checkGrantType(in.form); oerr != nil {
		return mintRequest{}, oerr
	}
	return parseMintParams(in.form, app)
}

// checkGrantType accepts only the client-credentials grant.
func checkGrantType(form url.Values) *oauthError {
	grant, ok := form["grant_type"]
	if !ok || grant[0] == "" {
		return invalidRequest("grant_type is required")
	}
	if grant[0] != "client_credentials" {
		return &oauthError{status: http.StatusBadRequest, code: "unsupported_grant_type",
			description: "only grant_type client_credentials is supported"}
	}
	return nil
}

// parseMintParams validates scope, expiration_time and custom_claims.
func parseMintParams(form url.Values, app Application) (mintRequest, *oauthError) {
	var req mintRequest
	var oerr *oauthError
	if req.scopes, oerr = grantScopes(form.Get("scope"), app); oerr != nil {
		return req, oerr
	}
	if req.lifetime, oerr = parseLifetime(form, app); oerr != nil {
		return req, oerr
	}
	if req.customClaims, oerr = parseCustomClaims(form); oerr != nil {
		return req, oerr
	}
	return req, nil
}

// grantScopes decides the scopes of a token: every allowed scope when none
// is asked for, else the requested ones, which must all be allowed unless
// the application narrows grants.
func grantScopes(requested string, app Application) ([]string, *oauthError) {
	if strings.TrimSpace(requested) == "" {
		return sortedUnique(app.AllowedScopes), nil
	}
	var granted, refused []string
	for _, scope := range strings.Split(requested, " ") {
		switch {
		case scope == "":
		case slices.Contains(app.AllowedScopes, scope):
			granted = append(granted, scope)
		default:
			refused = append(refused, scope)
		}
	}
	refused = sortedUnique(refused)
	if len(refused) > 0 && !app.NarrowScopes {
		return nil, &oauthError{status: http.StatusBadRequest, code: "invalid_scope",
			description: fmt.Sprintf("scope %s is not allowed for this application", strings.Join(refused, ", "))}
	}
	if len(granted) == 0 {
		// Nothing left to grant once the refused scopes are dropped.
		return nil, &oauthError{status: http.StatusBadRequest, code: "invalid_scope",
			description: "none of the requested scopes is allowed for this application"}
	}
	return sortedUnique(granted), nil
}

// sortedUnique returns a sorted copy of scopes without duplicates, never nil.
func sortedUnique(scopes []string) []string {
	out := slices.Clone(scopes)
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out
}

// parseLifetime reads expiration_time: whole seconds, at least one and at
// most the application's expires_after, which is also the default.
func parseLifetime(form url.Values, app Application) (int64, *oauthError) {
	limit := app.lifetime()
	values, ok := form["expiration_time"]
	if !ok {
		return limit, nil
	}
	raw := values[0]
	if raw == "" || strings.Trim(raw, "0123456789") != "" {
		return 0, invalidRequest("expiration_time must be a whole number of seconds")
	}
	seconds, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || seconds > limit {
		return 0, invalidRequest(fmt.Sprintf("expiration_time must be at most %d seconds, the application's expires_after", limit))
	}
	if seconds < 1 {
		return 0, invalidRequest("expiration_time must be at least 1 second")
	}
	return seconds, nil
}

// parseCustomClaims reads custom_claims, a JSON object sent as a string.
// Numbers are kept as json.Number so they reach bi_custom unchanged.
func parseCustomClaims(form url.Values) (map[string]any, *oauthError) {
	values, ok := form["custom_claims"]
	if !ok {
		return nil, nil
	}
	raw := values[0]
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var custom map[string]any
	if err := dec.Decode(&custom); err != nil || custom == nil ||
		strings.TrimSpace(raw[dec.InputOffset():]) != "" {
		return nil, invalidRequest("custom_claims must be a JSON object")
	}
	return custom, nil
}

// mint creates, records and returns a token of app.
func (s *Server) mint(issuer string, app Application, req mintRequest) (Token, error) {
	now := s.now()
	issuedAt := time.Unix(now.Unix(), 0).UTC()
	tok := &mintedToken{
		Token: Token{
			ID:            randomString(24),
			Format:        app.format(),
			TenantID:      app.TenantID,
			RealmID:       app.RealmID,
			ApplicationID: app.ID,
			ClientID:      app.ClientID,
			Scopes:        req.scopes,
			CustomClaims:  req.customClaims,
			IssuedAt:      issuedAt,
			ExpiresAt:     issuedAt.Add(time.Duration(req.lifetime) * time.Second),
		},
		issuer: issuer,
	}
	value, err := s.tokenValue(tok)
	if err != nil {
		return Token{}, err
	}
	tok.Value = value
	// Copy before storing: once stored, a concurrent revoke may change it.
	minted := tok.clone()
	s.storeToken(tok)
	return minted, nil
}

// tokenValue builds the access token string for tok in its format.
func (s *Server) tokenValue(tok *mintedToken) (string, error) {
	if tok.Format == Referential {
		return randomString(48), nil
	}
	return s.keys.sign(tok.issuer+"/.well-known/jwks.json", tok.claims())
}

// claims returns the JWT claims of t, also the basis of introspection.
func (t *mintedToken) claims() claims {
	principal := fmt.Sprintf("tenants/%s/realms/%s/applications/%s", t.TenantID, t.RealmID, t.ApplicationID)
	return claims{
		Iss:      t.issuer,
		Sub:      t.ClientID,
		Aud:      []string{audience},
		Exp:      t.ExpiresAt.Unix(),
		Nbf:      t.IssuedAt.Unix(),
		Iat:      t.IssuedAt.Unix(),
		Jti:      t.ID,
		Scope:    strings.Join(t.Scopes, " "),
		Azp:      principal,
		BiP:      principal,
		BiT:      t.TenantID,
		BiR:      "*",
		BiCustom: t.CustomClaims,
	}
}

// randomString returns n random bytes, base64url encoded without padding.
func randomString(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never fails: it aborts the program instead (Go 1.24+).
	_, _ = rand.Read(b)
	return b64(b)
}

// suffix returns the last four characters of a token, the only part the
// Management API shows.
func suffix(value string) string {
	if len(value) <= 4 {
		return value
	}
	return value[len(value)-4:]
}
