package fakebi

import "net/http"

// scopeTokensDelete lets a Bearer token revoke and delete tokens.
const scopeTokensDelete = "tokens:delete"

// handleRevoke serves POST {issuer}/revoke (RFC 7009).
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request, in *incoming) {
	rt := in.route
	app, ok := s.application(rt.tenant, rt.realm, rt.app)
	if !ok {
		writeAPIError(w, http.StatusNotFound, "not_found", "application not found")
		return
	}
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	if oerr := checkForm(in); oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	if _, oerr := s.authenticateCaller(in, rt.tenant, []Application{app}, scopeTokensDelete); oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	value := in.form.Get("token")
	if value == "" {
		writeOAuthError(w, invalidRequest("token is required"))
		return
	}
	// token_type_hint is accepted and ignored, as RFC 7009 §2.1 allows.
	s.revokeOwned(value, appKey{rt.tenant, rt.realm, rt.app})
	// RFC 7009 §2.2: 200 whether or not there was anything to revoke, so a
	// client can repeat the call safely.
	writeEmpty(w)
}

// revokeOwned revokes the token whose value is given, but only when the
// application owner issued it: nobody revokes another application's tokens
// through this endpoint.
func (s *Server) revokeOwned(value string, owner appKey) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, ok := s.byValue[value]
	if !ok || tok.owner() != owner || !tok.RevokedAt.IsZero() {
		return
	}
	tok.RevokedAt = now
}

// owner is the application that issued t.
func (t *mintedToken) owner() appKey {
	return appKey{t.TenantID, t.RealmID, t.ApplicationID}
}
