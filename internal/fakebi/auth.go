package fakebi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
)

// oauthParams are the form parameters RFC 6749 §3.2 says must not repeat.
var oauthParams = []string{
	"grant_type", "scope", "expiration_time", "custom_claims",
	"client_id", "client_secret", "token", "token_type_hint",
}

// checkForm verifies that an OAuth request carries a usable form body.
func checkForm(in *incoming) *oauthError {
	if !in.isForm {
		return invalidRequest("the request body must be " + formContentType)
	}
	if in.formErr != nil {
		return invalidRequest(in.formErr.Error())
	}
	for _, name := range oauthParams {
		if len(in.form[name]) > 1 {
			return invalidRequest("parameter " + name + " must not be repeated")
		}
	}
	return nil
}

// credentials are the client credentials an OAuth request carried.
type credentials struct {
	id, secret string
	basic      bool // sent with HTTP Basic rather than as form fields
}

// clientCredentials extracts the client credentials of an OAuth request.
// It returns nil credentials when the request carries none.
func clientCredentials(in *incoming) (*credentials, *oauthError) {
	_, hasID := in.form["client_id"]
	_, hasSecret := in.form["client_secret"]
	inForm := hasID || hasSecret
	if inForm && (in.basic || in.bearer != "") {
		// RFC 6749 §2.3: a client must not use more than one method at once.
		return nil, invalidRequest("authenticate the client with HTTP Basic or with form fields, not both")
	}
	switch {
	case in.basic && !in.basicOK:
		return nil, invalidClient("the Basic authorization header is malformed", true)
	case in.basic:
		return &credentials{id: in.basicUser, secret: in.basicPassword, basic: true}, nil
	case inForm:
		return &credentials{id: in.form.Get("client_id"), secret: in.form.Get("client_secret")}, nil
	}
	return nil, nil
}

// matches reports whether the credentials are those of app.
func (c *credentials) matches(app Application) bool {
	if app.ClientSecret == "" {
		return false
	}
	if equalConstantTime(c.id, app.ClientID) && equalConstantTime(c.secret, app.ClientSecret) {
		return true
	}
	if !c.basic {
		return false
	}
	// RFC 6749 §2.3.1 form-encodes both values before Basic encoding them;
	// accept clients that follow it as well as those that send them raw.
	id, errID := url.QueryUnescape(c.id)
	secret, errSecret := url.QueryUnescape(c.secret)
	return errID == nil && errSecret == nil &&
		equalConstantTime(id, app.ClientID) && equalConstantTime(secret, app.ClientSecret)
}

// equalConstantTime compares two strings without leaking where they differ,
// nor their lengths, through timing.
func equalConstantTime(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// authenticateApp checks that an OAuth request carries app's credentials.
func authenticateApp(in *incoming, app Application) *oauthError {
	creds, oerr := clientCredentials(in)
	if oerr != nil {
		return oerr
	}
	if creds == nil {
		return invalidClient("client authentication is required", false)
	}
	if !creds.matches(app) {
		return invalidClient("client authentication failed", creds.basic)
	}
	return nil
}

// caller is who made a revoke or introspect request.
type caller struct {
	// app is the application that sent its credentials; nil when a Bearer
	// token authenticated the request.
	app *Application
}

// authenticateCaller accepts the credentials of one of apps, or a Bearer
// token of tenant that carries scope.
func (s *Server) authenticateCaller(in *incoming, tenant string, apps []Application, scope string) (caller, *oauthError) {
	creds, oerr := clientCredentials(in)
	if oerr != nil {
		return caller{}, oerr
	}
	if creds != nil {
		for _, app := range apps {
			if creds.matches(app) {
				return caller{app: &app}, nil
			}
		}
		return caller{}, invalidClient("client authentication failed", creds.basic)
	}
	if in.bearer == "" {
		return caller{}, invalidClient("client authentication is required", false)
	}
	tok, ok := s.activeToken(in.bearer)
	if !ok || tok.TenantID != tenant || !tok.hasScope(scope) {
		return caller{}, invalidClient("the bearer token is not valid for this call or lacks scope "+scope, false)
	}
	return caller{}, nil
}

// authorizeManagement checks the Bearer token of a Management API call: an
// active token of the path's tenant carrying scope.
func (s *Server) authorizeManagement(w http.ResponseWriter, in *incoming, scope string) bool {
	if in.bearer == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="beyondidentity"`)
		writeAPIError(w, http.StatusUnauthorized, "unauthorized", "a bearer token is required")
		return false
	}
	tok, ok := s.activeToken(in.bearer)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="beyondidentity", error="invalid_token"`)
		writeAPIError(w, http.StatusUnauthorized, "unauthorized", "the bearer token is invalid, expired or revoked")
		return false
	}
	if tok.TenantID != in.route.tenant {
		writeAPIError(w, http.StatusForbidden, "forbidden", "the bearer token belongs to another tenant")
		return false
	}
	if !tok.hasScope(scope) {
		writeAPIError(w, http.StatusForbidden, "forbidden", "the bearer token lacks scope "+scope)
		return false
	}
	return true
}
