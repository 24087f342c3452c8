package fakebi

import "net/http"

// scopeTokensIntrospect lets a Bearer token introspect tokens of its tenant.
const scopeTokensIntrospect = "tokens:introspect"

// introspection is the RFC 7662 answer for an active token.
type introspection struct {
	Active    bool           `json:"active"`
	Scope     string         `json:"scope"`
	ClientID  string         `json:"client_id"`
	TokenType string         `json:"token_type"`
	Exp       int64          `json:"exp"`
	Iat       int64          `json:"iat"`
	Nbf       int64          `json:"nbf"`
	Jti       string         `json:"jti"`
	Sub       string         `json:"sub"`
	Aud       []string       `json:"aud"`
	Iss       string         `json:"iss"`
	BiT       string         `json:"bi_t"`
	BiP       string         `json:"bi_p"`
	BiCustom  map[string]any `json:"bi_custom,omitzero"`
}

// handleIntrospect serves POST /v1/tenants/{t}/realms/{r}/introspect
// (RFC 7662).
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request, in *incoming) {
	rt := in.route
	apps := s.realmApplications(rt.tenant, rt.realm)
	if len(apps) == 0 {
		writeAPIError(w, http.StatusNotFound, "not_found", "realm not found")
		return
	}
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	if oerr := checkForm(in); oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	who, oerr := s.authenticateCaller(in, rt.tenant, apps, scopeTokensIntrospect)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	value := in.form.Get("token")
	if value == "" {
		writeOAuthError(w, invalidRequest("token is required"))
		return
	}
	noStore(w)
	tok, ok := s.activeToken(value)
	if !ok || !who.mayInspect(tok, rt) {
		// RFC 7662 §2.2: say nothing more about a token the caller may not see.
		writeJSON(w, http.StatusOK, map[string]bool{"active": false})
		return
	}
	writeJSON(w, http.StatusOK, describe(tok))
}

// mayInspect reports whether the caller may learn about tok: an application
// only about its own tokens, a Bearer token about those of the realm.
func (c caller) mayInspect(tok mintedToken, rt route) bool {
	if c.app != nil {
		return tok.owner() == appKey{c.app.TenantID, c.app.RealmID, c.app.ID}
	}
	return tok.TenantID == rt.tenant && tok.RealmID == rt.realm
}

// describe returns the introspection answer for an active token.
func describe(tok mintedToken) introspection {
	c := tok.claims()
	return introspection{
		Active:    true,
		Scope:     c.Scope,
		ClientID:  tok.ClientID,
		TokenType: "Bearer",
		Exp:       c.Exp,
		Iat:       c.Iat,
		Nbf:       c.Nbf,
		Jti:       c.Jti,
		Sub:       c.Sub,
		Aud:       c.Aud,
		Iss:       c.Iss,
		BiT:       c.BiT,
		BiP:       c.BiP,
		BiCustom:  c.BiCustom,
	}
}
