package fakebi

import (
	"net/http"
	"strconv"
)

// discoveryDocument is the part of the OpenID Provider metadata that
// describes the endpoints this fake serves.
type discoveryDocument struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
}

// handleJWKS serves GET {issuer}/.well-known/jwks.json.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request, in *incoming) {
	if !s.knownIssuer(w, r, in.route) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(s.keys.jwks)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(s.keys.jwks)
}

// handleDiscovery serves GET {issuer}/.well-known/openid-configuration.
func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request, in *incoming) {
	if !s.knownIssuer(w, r, in.route) {
		return
	}
	issuer := issuerURL(r, in.route)
	writeJSON(w, http.StatusOK, discoveryDocument{
		Issuer:                            issuer,
		TokenEndpoint:                     issuer + "/token",
		RevocationEndpoint:                issuer + "/revoke",
		IntrospectionEndpoint:             baseURL(r) + in.route.realmPath() + "/introspect",
		JWKSURI:                           issuer + "/.well-known/jwks.json",
		GrantTypesSupported:               []string{"client_credentials"},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post"},
	})
}

// knownIssuer answers 404 or 405 unless the request is a GET or HEAD of an
// existing application's document.
func (s *Server) knownIssuer(w http.ResponseWriter, r *http.Request, rt route) bool {
	if _, ok := s.application(rt.tenant, rt.realm, rt.app); !ok {
		writeAPIError(w, http.StatusNotFound, "not_found", "application not found")
		return false
	}
	return allowMethods(w, r, http.MethodGet, http.MethodHead)
}
