package fakebi

import "net/http"

// handleRevoke serves POST {issuer}/revoke (RFC 7009), authenticated as the
// application that issued the token.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request, in *incoming) {
	caller, value, ok := checkTokenRequest(w, r, in, s.applications(in.route.tenant, in.route.realm, in.route.app))
	if !ok {
		return
	}
	// token_type_hint is accepted and ignored, as RFC 7009 §2.1 allows.
	now := s.now()
	s.mu.Lock()
	// Nobody revokes another application's tokens through this endpoint.
	if tok := s.byValue[value]; tok != nil && tok.issuedBy(caller) && tok.RevokedAt.IsZero() {
		tok.RevokedAt = now
	}
	s.mu.Unlock()
	// RFC 7009 §2.2: 200 whether or not there was anything to revoke, so a
	// client can repeat the call safely.
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// handleIntrospect serves POST /v1/tenants/{t}/realms/{r}/introspect
// (RFC 7662), authenticated as any application of the realm, which learns
// only about its own tokens.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request, in *incoming) {
	caller, value, ok := checkTokenRequest(w, r, in, s.applications(in.route.tenant, in.route.realm, ""))
	if !ok {
		return
	}
	now := s.now()
	answer := []byte(`{"active":false}`)
	s.mu.Lock()
	if tok := s.byValue[value]; tok != nil && tok.activeAt(now) && tok.issuedBy(caller) {
		answer = tok.claimsJSON(map[string]any{"active": true, "client_id": tok.ClientID, "token_type": "Bearer"})
	}
	s.mu.Unlock()
	// RFC 7662 §2.2: say nothing more about a token the caller may not see.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(answer)
}

// checkTokenRequest checks what revocation and introspection share: an
// addressed application or realm, the method, the form, the client and the
// token parameter. It returns the caller and the token.
func checkTokenRequest(w http.ResponseWriter, r *http.Request, in *incoming, apps []Application) (Application, string, bool) {
	if !knownPost(w, r, apps) {
		return Application{}, "", false
	}
	caller, oerr := authenticate(in, apps)
	if oerr == nil && in.form.Get("token") == "" {
		oerr = &oauthError{"invalid_request", "token is required"}
	}
	if oerr != nil {
		oerr.write(w)
		return Application{}, "", false
	}
	return caller, in.form.Get("token"), true
}
