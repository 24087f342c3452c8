package fakebi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// writeJSON answers with v as a JSON body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeAPIError(w, http.StatusInternalServerError, "internal_server_error", "the answer could not be encoded")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// noStore marks an answer that carries or describes a credential as not
// cacheable (RFC 6749 §5.1).
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// writeEmpty answers 200 with an empty body, as revocation and deletion do.
func writeEmpty(w http.ResponseWriter) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// oauthError is an RFC 6749 §5.2 error answer.
type oauthError struct {
	status      int
	code        string
	description string
	// challenge is the WWW-Authenticate value, when the answer needs one.
	challenge string
}

// invalidRequest builds a 400 invalid_request error.
func invalidRequest(description string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_request", description: description}
}

// invalidClient builds a 401 invalid_client error. RFC 6749 §5.2 requires a
// challenge for the scheme the client tried.
func invalidClient(description string, triedBasic bool) *oauthError {
	e := &oauthError{status: http.StatusUnauthorized, code: "invalid_client", description: description}
	if triedBasic {
		e.challenge = `Basic realm="beyondidentity"`
	}
	return e
}

// writeOAuthError answers with an RFC 6749 error body.
func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	if e.challenge != "" {
		w.Header().Set("WWW-Authenticate", e.challenge)
	}
	noStore(w)
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.description})
}

// apiError is the Management API error body.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details []any  `json:"details"`
}

// writeAPIError answers with a Management API error body.
func writeAPIError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, apiError{Code: code, Message: message, Details: []any{}})
}

// allowMethods answers 405 unless the request uses one of methods. The
// Management API documents no code for 405; the fake uses
// "method_not_allowed", in the API's lower-snake-case style.
func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeAPIError(w, http.StatusMethodNotAllowed, "method_not_allowed",
		"method "+r.Method+" is not allowed here")
	return false
}
