package fakebi

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

const (
	// maxBodyBytes bounds how much of a body the fake reads; real bodies are
	// a few hundred bytes, custom claims included.
	maxBodyBytes = 1 << 20
	// formContentType is the only body type the OAuth endpoints accept.
	formContentType = "application/x-www-form-urlencoded"
)

// oauthParams are the form parameters RFC 6749 §3.2 says must not repeat.
var oauthParams = []string{
	"grant_type", "scope", "expiration_time", "custom_claims",
	"client_id", "client_secret", "token", "token_type_hint",
}

// route is where a request was addressed.
type route struct {
	op                 Op
	tenant, realm, app string
}

// parseRoute maps a request path to an endpoint of the fake:
// /v1/tenants/{t}/realms/{r}/introspect and
// /v1/tenants/{t}/realms/{r}/applications/{a}/{token,revoke}.
func parseRoute(path string) route {
	seg := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(seg) < 6 || seg[0] != "v1" || seg[1] != "tenants" || seg[2] == "" || seg[3] != "realms" || seg[4] == "" {
		return route{op: OpUnknown}
	}
	rt := route{op: OpUnknown, tenant: seg[2], realm: seg[4]}
	switch {
	case len(seg) == 6 && seg[5] == "introspect":
		rt.op = OpIntrospect
	case len(seg) == 8 && seg[5] == "applications" && seg[6] != "" && (seg[7] == "token" || seg[7] == "revoke"):
		rt.app, rt.op = seg[6], Op(seg[7])
	}
	return rt
}

// issuerURL is the issuer of an application-level route, as the client
// addressed it.
func issuerURL(r *http.Request, rt route) string {
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	return scheme + r.Host + "/v1/tenants/" + url.PathEscape(rt.tenant) + "/realms/" +
		url.PathEscape(rt.realm) + "/applications/" + url.PathEscape(rt.app)
}

// incoming is what the fake reads from every request before answering it.
type incoming struct {
	route         route
	body          string // raw, as far as read
	authorization string // the Authorization header, raw
	form          url.Values
	formErr       string // why the body is not a usable form; empty when it is

	basic                    bool // Authorization used the Basic scheme
	basicOK                  bool // and it decoded
	basicUser, basicPassword string
	bearer                   string
}

// readIncoming reads the route, the Authorization header and the body, and
// parses a form body. Only the body counts: RFC 6749 puts the parameters
// there, and query parameters must not stand in for them.
func readIncoming(r *http.Request) *incoming {
	in := &incoming{route: parseRoute(r.URL.Path), authorization: r.Header.Get("Authorization")}
	scheme, value, _ := strings.Cut(in.authorization, " ")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		in.basic = true
		in.basicUser, in.basicPassword, in.basicOK = r.BasicAuth()
	case strings.EqualFold(scheme, "Bearer"):
		in.bearer = strings.TrimSpace(value)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	in.body = string(body)
	switch mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); {
	case mediaType != formContentType:
		in.formErr = "the request body must be " + formContentType
	case err != nil || len(body) > maxBodyBytes:
		in.formErr = "the request body could not be read in full"
	default:
		if in.form, err = url.ParseQuery(in.body); err != nil {
			in.formErr = "the request body is not a valid form"
		}
	}
	return in
}

// authenticate checks that an OAuth request carries a usable form body and
// returns the application among apps whose credentials it carries: HTTP
// Basic, compared byte for byte as sent (the raw client_id:client_secret
// that `curl -u` sends, never form-decoded), or the form fields client_id
// and client_secret.
func authenticate(in *incoming, apps []Application) (Application, *oauthError) {
	if in.formErr != "" {
		return Application{}, &oauthError{"invalid_request", in.formErr}
	}
	for _, name := range oauthParams {
		if len(in.form[name]) > 1 {
			return Application{}, &oauthError{"invalid_request", "parameter " + name + " must not be repeated"}
		}
	}
	_, hasID := in.form["client_id"]
	_, hasSecret := in.form["client_secret"]
	id, secret := in.form.Get("client_id"), in.form.Get("client_secret")
	switch {
	case (hasID || hasSecret) && in.authorization != "":
		// RFC 6749 §2.3: a client must not use more than one method at once.
		return Application{}, &oauthError{"invalid_request", "authenticate the client with HTTP Basic or with form fields, not both"}
	case in.basic && !in.basicOK:
		return Application{}, &oauthError{"invalid_client", "the Basic authorization header is malformed"}
	case in.basic:
		id, secret = in.basicUser, in.basicPassword
	case !hasID && !hasSecret:
		return Application{}, &oauthError{"invalid_client", "client authentication is required"}
	}
	for _, app := range apps {
		if app.ClientSecret != "" && id == app.ClientID && secret == app.ClientSecret {
			return app, nil
		}
	}
	return Application{}, &oauthError{"invalid_client", "client authentication failed"}
}

// writeJSON answers with v as a JSON body. Every v the fake builds encodes.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// oauthError is an RFC 6749 §5.2 error answer: 401 for invalid_client,
// else 400.
type oauthError struct{ code, description string }

func (e *oauthError) write(w http.ResponseWriter) {
	status := http.StatusBadRequest
	if e.code == "invalid_client" {
		status = http.StatusUnauthorized
	}
	writeJSON(w, status, map[string]string{"error": e.code, "error_description": e.description})
}

// apiError is a Management API error body. Its code is the status text in
// lower snake case, which gives every documented code (bad_request,
// too_many_requests, internal_server_error...) and "method_not_allowed" for
// 405, where the documentation is silent.
func apiError(status int, message string) map[string]any {
	code := strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
	return map[string]any{"code": code, "message": message, "details": []any{}}
}

// writeAPIError answers with a Management API error body.
func writeAPIError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, apiError(status, message))
}

// knownPost answers 404 unless apps holds the addressed application or
// realm, then 405 with an Allow header unless the request is a POST.
func knownPost(w http.ResponseWriter, r *http.Request, apps []Application) bool {
	switch {
	case len(apps) == 0:
		writeAPIError(w, http.StatusNotFound, "application or realm not found")
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		writeAPIError(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed here")
	default:
		return true
	}
	return false
}

// statusRecorder passes an answer through and records its status in call
// before sending it, so that a client that got an answer finds it recorded.
type statusRecorder struct {
	http.ResponseWriter
	s       *Server
	call    *Call
	decided bool
}

func (w *statusRecorder) WriteHeader(status int) {
	w.decide(status)
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	w.decide(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection, for faults that
// break it.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusRecorder) decide(status int) {
	if !w.decided {
		w.decided = true
		w.s.mu.Lock()
		w.call.Status = status
		w.s.mu.Unlock()
	}
}
