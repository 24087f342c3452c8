package fakebi

import (
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// appKey identifies an application by its path.
type appKey struct{ tenant, realm, app string }

// Server is a fake Beyond Identity deployment. It is an http.Handler and is
// safe for concurrent use. The zero value is not usable; call New.
type Server struct {
	clock                 atomic.Pointer[func() time.Time]
	inFlight, maxInFlight atomic.Int64

	// mu guards every field below. It is never held while sleeping or
	// calling the observer.
	mu       sync.Mutex
	apps     map[appKey]Application
	calls    []*Call
	tokens   []*mintedToken
	byValue  map[string]*mintedToken
	faults   map[Op]Fault
	observer func(Call)
}

// New returns a Server with no applications.
func New() *Server {
	s := &Server{
		apps:    make(map[appKey]Application),
		byValue: make(map[string]*mintedToken),
		faults:  make(map[Op]Fault),
	}
	s.SetClock(nil)
	return s
}

// AddApplication adds app, replacing any application with the same tenant,
// realm and id. Tokens already minted are kept.
func (s *Server) AddApplication(app Application) {
	app.AllowedScopes = slices.Clone(app.AllowedScopes)
	app.WidenScopes = slices.Clone(app.WidenScopes)
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

// applications returns the applications of a realm, or only the one named
// app when app is not empty.
func (s *Server) applications(tenant, realm, app string) []Application {
	s.mu.Lock()
	defer s.mu.Unlock()
	var apps []Application
	for key, a := range s.apps {
		if key.tenant == tenant && key.realm == realm && (app == "" || key.app == app) {
			apps = append(apps, a)
		}
	}
	return apps
}

// SetClock sets the clock behind everything the fake dates: iat, nbf and
// exp of new tokens, whether a token is active (IsActive, introspection,
// revocation), RevokedAt and Call.At. Nil restores time.Now. Delays of
// faults always use real time.
func (s *Server) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.clock.Store(&now)
}

func (s *Server) now() time.Time { return (*s.clock.Load())() }

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
func (s *Server) Calls() []Call { return s.callsTo("") }

// CallsTo returns copies of the recorded calls of one op, in arrival order.
func (s *Server) CallsTo(op Op) []Call { return s.callsTo(op) }

// callsTo returns the calls of op, or all calls when op is empty.
func (s *Server) callsTo(op Op) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	calls := []Call{}
	for _, c := range s.calls {
		if op == "" || c.Op == op {
			calls = append(calls, c.clone())
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

// InFlight is the number of requests being served right now, from arrival
// until the answer was written (a fault's Delay included).
func (s *Server) InFlight() int64 { return s.inFlight.Load() }

// MaxInFlight is the largest InFlight seen since New or ResetMaxInFlight.
func (s *Server) MaxInFlight() int64 { return s.maxInFlight.Load() }

// ResetMaxInFlight restarts MaxInFlight from the requests in flight now.
func (s *Server) ResetMaxInFlight() { s.maxInFlight.Store(s.inFlight.Load()) }

// Tokens returns copies of every token minted, in mint order.
func (s *Server) Tokens() []Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	tokens := make([]Token, 0, len(s.tokens))
	for _, t := range s.tokens {
		tokens = append(tokens, t.export())
	}
	return tokens
}

// TokenByValue returns a copy of the token whose access token is value.
func (s *Server) TokenByValue(value string) (Token, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.byValue[value]; ok {
		return t.export(), true
	}
	return Token{}, false
}

// IsActive reports whether value was minted here and is neither revoked nor
// expired according to the server's clock.
func (s *Server) IsActive(value string) bool {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.byValue[value]
	return ok && t.activeAt(now)
}

// ServeHTTP records the request, applies any fault, and then answers as
// Beyond Identity would.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for peak := s.maxInFlight.Load(); n > peak && !s.maxInFlight.CompareAndSwap(peak, n); {
		peak = s.maxInFlight.Load()
	}
	in := readIncoming(r)
	call := &Call{
		Op: in.route.op, Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"),
		Form: in.form, BasicAuth: in.basic, BasicUser: in.basicUser, BasicPassword: in.basicPassword,
		Bearer: in.bearer, At: s.now(),
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		observer, c := s.observer, call.clone()
		s.mu.Unlock()
		if observer != nil {
			observer(c)
		}
	}()
	rec := &statusRecorder{ResponseWriter: w, s: s, call: call}
	if f, ok := s.takeFault(in.route.op); ok {
		s.serveFault(rec, r, in, f)
		return
	}
	s.handle(rec, r, in)
}

// handle answers a request as if there were no fault.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, in *incoming) {
	switch in.route.op {
	case OpToken:
		s.handleToken(w, r, in)
	case OpRevoke:
		s.handleRevoke(w, r, in)
	case OpIntrospect:
		s.handleIntrospect(w, r, in)
	default:
		writeAPIError(w, http.StatusNotFound, "no such endpoint")
	}
}
