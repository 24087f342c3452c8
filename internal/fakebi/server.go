package fakebi

import (
	"net/http"
	"slices"
	"sync"
	"time"
)

// appKey identifies an application by its path.
type appKey struct{ tenant, realm, app string }

// Server is a fake Beyond Identity deployment. It is an http.Handler and is
// safe for concurrent use. The zero value is not usable; call New.
type Server struct {
	keys *keySet

	// mu guards every field below. It is never held while signing, sleeping
	// or calling the clock or the observer.
	mu       sync.Mutex
	apps     map[appKey]Application
	clock    func() time.Time
	calls    []*Call
	tokens   []*mintedToken
	byValue  map[string]*mintedToken
	byID     map[string]*mintedToken
	faults   map[Op]*activeFault
	limiter  rateLimiter
	observer func(Call)
}

// New returns a Server with no applications. All servers of a process share
// one RSA-2048 signing key, generated on first use, so tests start fast.
func New() *Server {
	return &Server{
		keys:    sharedKeys(),
		apps:    make(map[appKey]Application),
		clock:   time.Now,
		byValue: make(map[string]*mintedToken),
		byID:    make(map[string]*mintedToken),
		faults:  make(map[Op]*activeFault),
	}
}

// AddApplication adds app, replacing any application with the same tenant,
// realm and id. Tokens already minted are kept.
func (s *Server) AddApplication(app Application) {
	app.AllowedScopes = slices.Clone(app.AllowedScopes)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[appKey{app.TenantID, app.RealmID, app.ID}] = app
}

// RemoveApplication removes an application. Its tokens stay as they are, so
// a test can see what a client does once its application is gone.
func (s *Server) RemoveApplication(tenantID, realmID, applicationID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.apps, appKey{tenantID, realmID, applicationID})
}

// application returns the application at the given path.
func (s *Server) application(tenant, realm, id string) (Application, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	app, ok := s.apps[appKey{tenant, realm, id}]
	return app, ok
}

// realmApplications returns the applications of one realm.
func (s *Server) realmApplications(tenant, realm string) []Application {
	s.mu.Lock()
	defer s.mu.Unlock()
	var apps []Application
	for key, app := range s.apps {
		if key.tenant == tenant && key.realm == realm {
			apps = append(apps, app)
		}
	}
	return apps
}

// SetClock sets the clock used for iat, exp, expiry checks, call times and
// rate-limit windows; nil restores the default, time.Now. Delays of faults
// always use real time.
func (s *Server) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock = now
}

// now reads the server's clock.
func (s *Server) now() time.Time {
	s.mu.Lock()
	clock := s.clock
	s.mu.Unlock()
	return clock()
}

// SetCallObserver registers fn to be called once per request, after the
// answer was written, with a copy of the recorded call. The call holds
// whatever secrets the client sent: an observer that logs must pick fields.
// Pass nil to remove the observer.
func (s *Server) SetCallObserver(fn func(Call)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observer = fn
}

// Calls returns copies of the recorded calls, in arrival order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	calls := make([]Call, 0, len(s.calls))
	for _, c := range s.calls {
		calls = append(calls, c.clone())
	}
	return calls
}

// CallsTo returns copies of the recorded calls of one op, in arrival order.
func (s *Server) CallsTo(op Op) []Call {
	var calls []Call
	for _, c := range s.Calls() {
		if c.Op == op {
			calls = append(calls, c)
		}
	}
	return calls
}

// ResetCalls forgets the recorded calls.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// Tokens returns copies of every token minted, in mint order.
func (s *Server) Tokens() []Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	tokens := make([]Token, 0, len(s.tokens))
	for _, t := range s.tokens {
		tokens = append(tokens, t.clone())
	}
	return tokens
}

// TokenByValue returns a copy of the token whose access token is value.
func (s *Server) TokenByValue(value string) (Token, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.byValue[value]
	if !ok {
		return Token{}, false
	}
	return t.clone(), true
}

// IsActive reports whether value was minted here and is neither revoked nor
// expired according to the server's clock.
func (s *Server) IsActive(value string) bool {
	_, ok := s.activeToken(value)
	return ok
}

// activeToken returns the token whose value is given when it is active.
func (s *Server) activeToken(value string) (mintedToken, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.byValue[value]
	if !ok || !t.activeAt(now) {
		return mintedToken{}, false
	}
	return mintedToken{Token: t.clone(), seq: t.seq, issuer: t.issuer}, true
}

// JWKS returns the public key set, byte for byte as served.
func (s *Server) JWKS() []byte {
	return slices.Clone(s.keys.jwks)
}

// ServeHTTP records the request, applies the rate limit and any fault, and
// then answers as Beyond Identity would.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	in := readIncoming(r)
	call := s.record(r, in)
	defer s.notify(call)
	rec := &statusRecorder{ResponseWriter: w, onStatus: func(status int) { s.setStatus(call, status) }}
	if s.refuseOverLimit(rec) {
		return
	}
	if f, ok := s.takeFault(in.route.op); ok {
		s.serveFault(rec, r, in, f)
		return
	}
	s.handle(rec, r, in)
}

// handle answers a request without faults or rate limits.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, in *incoming) {
	switch in.route.op {
	case OpToken:
		s.handleToken(w, r, in)
	case OpRevoke:
		s.handleRevoke(w, r, in)
	case OpIntrospect:
		s.handleIntrospect(w, r, in)
	case OpJWKS:
		s.handleJWKS(w, r, in)
	case OpDiscovery:
		s.handleDiscovery(w, r, in)
	case OpListTokens:
		s.handleListTokens(w, r, in)
	case OpDeleteToken:
		s.handleDeleteToken(w, r, in)
	default:
		writeAPIError(w, http.StatusNotFound, "not_found", "no such endpoint")
	}
}

// record stores the call for a request and returns it for later updates.
func (s *Server) record(r *http.Request, in *incoming) *Call {
	call := &Call{
		Op:            in.route.op,
		Method:        r.Method,
		Path:          r.URL.Path,
		ContentType:   r.Header.Get("Content-Type"),
		Form:          in.form,
		BasicAuth:     in.basic,
		BasicUser:     in.basicUser,
		BasicPassword: in.basicPassword,
		Bearer:        in.bearer,
		At:            s.now(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, call)
	return call
}

// setStatus fills in the status of a recorded call. It runs before the
// status line is sent, so a client that got an answer always finds the
// status recorded.
func (s *Server) setStatus(call *Call, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	call.Status = status
}

// notify hands a copy of the finished call to the observer, if any.
func (s *Server) notify(call *Call) {
	s.mu.Lock()
	observer := s.observer
	c := call.clone()
	s.mu.Unlock()
	if observer != nil {
		observer(c)
	}
}

// storeToken records a freshly minted token.
func (s *Server) storeToken(t *mintedToken) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t.seq = int64(len(s.tokens)) + 1
	s.tokens = append(s.tokens, t)
	s.byValue[t.Value] = t
	s.byID[t.ID] = t
}

// cloneJSON deep-copies a value decoded from JSON.
func cloneJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = cloneJSON(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = cloneJSON(e)
		}
		return s
	default:
		return v
	}
}
