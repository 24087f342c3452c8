package fakebi

import (
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

// Fault changes the answer to requests of one Op.
//
// A fault that sets only Delay (and perhaps AfterMint and Times) slows the
// endpoint down but keeps its normal answer. A fault with Rewrite edits the
// normal answer. Any other fault replaces the answer: Status 0 then means 200.
//
// An introspection that is active but has no jti, say, is
//
//	Fault{Rewrite: func(a map[string]any) { delete(a, "jti") }}
//
// set on OpIntrospect.
type Fault struct {
	// Status is the HTTP status to answer with (0 means 200).
	Status int
	// Body is the raw body to send.
	Body string
	// ContentType defaults to application/json.
	ContentType string
	// Header holds extra headers, such as Retry-After; they may override the
	// Content-Type too.
	Header map[string]string
	// Delay is waited before answering; the wait stops, without an answer,
	// when the request's context ends.
	Delay time.Duration
	// ResetConnection writes the status line, the headers and part of the
	// body, then aborts the TCP connection (over HTTP/1.1; where the
	// connection cannot be taken over, the answer is aborted with nothing).
	ResetConnection bool
	// AfterMint, for OpToken and OpRevoke, performs the real operation first
	// (the token is minted and recorded, or revoked) and then answers with
	// the fault. When false the operation does not happen. Other ops ignore it.
	AfterMint bool
	// EchoRequest replaces Body with a Management API error body, code from
	// Status, whose message holds the raw request body (form-encoded, with a
	// form client_secret or a revoked token) and the raw Authorization
	// header: what some gateways send back.
	EchoRequest bool
	// EchoInHex, with EchoRequest, echoes in hex instead: the token (or the
	// form client_secret) the request carried, and the raw Authorization
	// header, each hex-encoded in upper case.
	EchoInHex bool
	// Rewrite performs the real operation (for OpToken: the token is minted
	// and recorded) and passes the JSON object of a 200 answer through
	// Rewrite before sending it re-encoded; other answers are sent as they
	// are. Status, Body, ContentType, Header, ResetConnection, EchoRequest
	// and AfterMint are then ignored; Delay and Times are not.
	Rewrite func(answer map[string]any)
	// RewriteBody is Rewrite for the raw bytes of a 200 answer, and ignores
	// the same fields: for answers no JSON encoder writes, such as one with
	// a key twice or bytes after the object. It applies after Rewrite, when
	// both are set.
	RewriteBody func(body []byte) []byte
	// Times is how many requests the fault affects; 0 or less means until
	// ClearFaults.
	Times int
}

// delayOnly reports whether f only slows the answer down.
func (f Fault) delayOnly() bool {
	return f.Status == 0 && f.Body == "" && f.ContentType == "" && len(f.Header) == 0 && !f.ResetConnection && !f.EchoRequest
}

// SetFault makes requests of op fail as f says, replacing any fault of op.
func (s *Server) SetFault(op Op, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[op] = f
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// takeFault returns the fault for a request of op and uses up one of its
// Times, atomically, so concurrent requests never exceed Times.
func (s *Server) takeFault(op Op) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.faults[op]
	if rest := f; rest.Times > 0 {
		rest.Times--
		s.faults[op] = rest
		if rest.Times == 0 {
			delete(s.faults, op)
		}
	}
	return f, ok
}

// serveFault answers a request that a fault affects. When the operation is
// performed first, a client that gives up during the Delay leaves it done:
// the orphaned token a real network failure can cause.
func (s *Server) serveFault(w *statusRecorder, r *http.Request, in *incoming, f Fault) {
	var kept *httptest.ResponseRecorder
	rewrites := f.Rewrite != nil || f.RewriteBody != nil
	if rewrites || f.AfterMint && (in.route.op == OpToken || in.route.op == OpRevoke) {
		kept = httptest.NewRecorder()
		s.handle(kept, r, in)
	}
	select {
	case <-time.After(f.Delay):
	case <-r.Context().Done():
		return
	}
	switch {
	case kept != nil && (rewrites || f.delayOnly()):
		maps.Copy(w.Header(), kept.Header())
		body := kept.Body.Bytes()
		var answer map[string]any
		if f.Rewrite != nil && kept.Code == http.StatusOK && json.Unmarshal(body, &answer) == nil {
			f.Rewrite(answer)
			body, _ = json.Marshal(answer)
		}
		if f.RewriteBody != nil && kept.Code == http.StatusOK {
			body = f.RewriteBody(body)
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(kept.Code)
		_, _ = w.Write(body)
	case f.delayOnly():
		s.handle(w, r, in)
	default:
		writeFault(w, in, f)
	}
}

// writeFault sends the fault's answer, or with ResetConnection half of it
// before a TCP reset.
func writeFault(w *statusRecorder, in *incoming, f Fault) {
	status, body := cmp.Or(f.Status, http.StatusOK), f.Body
	if f.EchoRequest {
		message := "cannot handle the request " + in.body + " with Authorization: " + in.authorization
		if f.EchoInHex {
			upperHex := func(s string) string { return strings.ToUpper(hex.EncodeToString([]byte(s))) }
			message = "cannot handle token " + upperHex(in.form.Get("token")) + " nor secret " +
				upperHex(in.form.Get("client_secret")) + " with Authorization: " + upperHex(in.authorization)
		}
		echo, _ := json.Marshal(apiError(status, message))
		body = string(echo)
	}
	if f.ResetConnection && body == "" {
		// Something to cut short, so that the client always sees a truncated answer.
		body = `{"code":"internal_server_error","message":"the connection was reset"}`
	}
	h := http.Header{"Content-Type": {cmp.Or(f.ContentType, "application/json")}}
	for k, v := range f.Header {
		h.Set(k, v)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if !f.ResetConnection {
		maps.Copy(w.Header(), h)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
		return
	}
	w.decide(status)
	conn, buf, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	h.Set("Connection", "close")
	_, _ = fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	_ = h.Write(buf)
	_, _ = buf.WriteString("\r\n" + body[:len(body)/2])
	_ = buf.Flush()
	if tcp, ok := conn.(*net.TCPConn); ok {
		// Linger 0 makes Close send RST instead of FIN: a reset, not an end.
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}
