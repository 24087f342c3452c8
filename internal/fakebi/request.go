package fakebi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// maxBodyBytes bounds how much of a form body the fake reads; real bodies
// are a few hundred bytes, custom claims included.
const maxBodyBytes = 1 << 20

// formContentType is the only body type the OAuth endpoints accept.
const formContentType = "application/x-www-form-urlencoded"

// route is where a request was addressed.
type route struct {
	op                 Op
	tenant, realm, app string
	tokenID            string // for OpDeleteToken
}

// parseRoute maps a request path to an endpoint of the fake.
func parseRoute(path string) route {
	seg := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(seg) < 6 || seg[0] != "v1" || seg[1] != "tenants" || seg[3] != "realms" ||
		seg[2] == "" || seg[4] == "" {
		return route{op: OpUnknown}
	}
	rt := route{tenant: seg[2], realm: seg[4], op: OpUnknown}
	if len(seg) == 6 && seg[5] == "introspect" {
		rt.op = OpIntrospect
		return rt
	}
	if len(seg) < 8 || seg[5] != "applications" || seg[6] == "" {
		return rt
	}
	rt.app = seg[6]
	rt.op, rt.tokenID = appOp(seg[7:])
	return rt
}

// appOp maps the path segments below an application to an op.
func appOp(rest []string) (Op, string) {
	switch {
	case len(rest) == 1 && rest[0] == "token":
		return OpToken, ""
	case len(rest) == 1 && rest[0] == "revoke":
		return OpRevoke, ""
	case len(rest) == 1 && rest[0] == "tokens":
		return OpListTokens, ""
	case len(rest) == 2 && rest[0] == "tokens" && rest[1] != "":
		return OpDeleteToken, rest[1]
	case len(rest) == 2 && rest[0] == ".well-known" && rest[1] == "jwks.json":
		return OpJWKS, ""
	case len(rest) == 2 && rest[0] == ".well-known" && rest[1] == "openid-configuration":
		return OpDiscovery, ""
	}
	return OpUnknown, ""
}

// realmPath is the path of the route's realm, below which introspection
// hangs.
func (rt route) realmPath() string {
	return "/v1/tenants/" + url.PathEscape(rt.tenant) + "/realms/" + url.PathEscape(rt.realm)
}

// issuerPath is the path of the issuer of an application-level route.
func (rt route) issuerPath() string {
	return rt.realmPath() + "/applications/" + url.PathEscape(rt.app)
}

// baseURL is scheme://host of the request, as the client addressed it.
func baseURL(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// issuerURL is the issuer of an application-level route.
func issuerURL(r *http.Request, rt route) string {
	return baseURL(r) + rt.issuerPath()
}

// incoming is what the fake reads from every request before answering it.
type incoming struct {
	route route
	// form is the parsed body of a form request, nil otherwise.
	form url.Values
	// formErr says why a form body could not be used (nil when it could).
	formErr error
	// isForm is true when the Content-Type is the form type.
	isForm bool

	basic                    bool // Authorization used the Basic scheme
	basicOK                  bool // and it decoded
	basicUser, basicPassword string
	bearer                   string
}

// readIncoming parses the route, the authorization header and a form body.
func readIncoming(r *http.Request) *incoming {
	in := &incoming{route: parseRoute(r.URL.Path)}
	in.readAuthorization(r)
	in.readForm(r)
	return in
}

// readAuthorization notes the Basic credentials or Bearer token a request
// carries.
func (in *incoming) readAuthorization(r *http.Request) {
	header := r.Header.Get("Authorization")
	scheme, value, _ := strings.Cut(header, " ")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		in.basic = true
		in.basicUser, in.basicPassword, in.basicOK = r.BasicAuth()
	case strings.EqualFold(scheme, "Bearer"):
		in.bearer = strings.TrimSpace(value)
	}
}

// readForm parses a form body. Only the body counts: RFC 6749 puts the
// parameters there, and query parameters must not stand in for them.
func (in *incoming) readForm(r *http.Request) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != formContentType {
		return
	}
	in.isForm = true
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		in.formErr = errors.New("the request body could not be read")
		return
	}
	if len(body) > maxBodyBytes {
		in.formErr = errors.New("the request body is too large")
		return
	}
	in.form, err = url.ParseQuery(string(body))
	if err != nil {
		in.formErr = errors.New("the request body is not a valid form")
	}
}

// statusRecorder passes a response through and reports its status the moment
// it is decided.
type statusRecorder struct {
	http.ResponseWriter
	onStatus func(int)
	decided  bool
}

// WriteHeader reports the status, then sends it.
func (w *statusRecorder) WriteHeader(status int) {
	w.decide(status)
	w.ResponseWriter.WriteHeader(status)
}

// Write sends body bytes, deciding on 200 if no status was sent yet.
func (w *statusRecorder) Write(b []byte) (int, error) {
	w.decide(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection, for faults that
// break it.
func (w *statusRecorder) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}

// decide reports the first status of the response.
func (w *statusRecorder) decide(status int) {
	if !w.decided {
		w.decided = true
		w.onStatus(status)
	}
}
