package fakebi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Fault changes the answer to requests of one Op.
//
// A fault that sets only Delay (and perhaps AfterMint and Times) slows the
// endpoint down but keeps its normal answer. Any other fault replaces the
// answer: Status 0 then means 200.
type Fault struct {
	// Status is the HTTP status to answer with (0 means 200).
	Status int
	// Body is the raw body to send.
	Body string
	// ContentType defaults to application/json.
	ContentType string
	// Header holds extra headers, such as Retry-After.
	Header map[string]string
	// Delay is waited before answering; the wait stops, without an answer,
	// when the request's context ends.
	Delay time.Duration
	// ResetConnection writes the status line, the headers and part of the
	// body, then aborts the TCP connection. Over HTTP/2, where the connection
	// cannot be taken over, the stream is aborted instead.
	ResetConnection bool
	// AfterMint, for OpToken and OpRevoke, performs the real operation first
	// (the token is minted and recorded, or revoked) and then answers with
	// the fault. When false the operation does not happen. Other ops ignore it.
	AfterMint bool
	// Times is how many requests the fault affects; 0 or less means until
	// ClearFaults.
	Times int
}

// delayOnly reports whether f only slows the answer down.
func (f Fault) delayOnly() bool {
	return f.Status == 0 && f.Body == "" && f.ContentType == "" && len(f.Header) == 0 && !f.ResetConnection
}

// activeFault is a fault and how many more requests it affects.
type activeFault struct {
	fault     Fault
	remaining int // 0: until cleared
}

// SetFault makes requests of op fail as f says, replacing any fault of op.
func (s *Server) SetFault(op Op, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[op] = &activeFault{fault: f, remaining: max(f.Times, 0)}
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
	af, ok := s.faults[op]
	if !ok {
		return Fault{}, false
	}
	if af.remaining > 0 {
		af.remaining--
		if af.remaining == 0 {
			delete(s.faults, op)
		}
	}
	return af.fault, true
}

// serveFault answers a request that a fault affects.
func (s *Server) serveFault(w *statusRecorder, r *http.Request, in *incoming, f Fault) {
	if f.AfterMint && (in.route.op == OpToken || in.route.op == OpRevoke) {
		s.serveAfterOperation(w, r, in, f)
		return
	}
	if !sleep(r.Context(), f.Delay) {
		return
	}
	if f.delayOnly() {
		s.handle(w, r, in)
		return
	}
	writeFault(w, f)
}

// serveAfterOperation performs the real operation, keeps its answer aside,
// and then sends the fault's answer, or the kept one after a delay-only
// fault. A client that gives up meanwhile leaves the operation done: the
// orphaned token a real network failure can cause.
func (s *Server) serveAfterOperation(w *statusRecorder, r *http.Request, in *incoming, f Fault) {
	kept := newHeldResponse()
	s.handle(kept, r, in)
	if !sleep(r.Context(), f.Delay) {
		return
	}
	if f.delayOnly() {
		kept.replay(w)
		return
	}
	writeFault(w, f)
}

// sleep waits for d, or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// status returns the status a fault answers with.
func (f Fault) status() int {
	if f.Status == 0 {
		return http.StatusOK
	}
	return f.Status
}

// header returns the headers a fault answers with, for a body of
// contentLength bytes. Extra headers come last, so they can override the
// Content-Type too.
func (f Fault) header(contentLength int) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	if f.ContentType != "" {
		h.Set("Content-Type", f.ContentType)
	}
	for k, v := range f.Header {
		h.Set(k, v)
	}
	h.Set("Content-Length", strconv.Itoa(contentLength))
	return h
}

// copyHeader adds the headers of src to dst, replacing values of the same
// name.
func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

// writeFault sends the fault's answer.
func writeFault(w *statusRecorder, f Fault) {
	if f.ResetConnection {
		resetConnection(w, f)
		return
	}
	copyHeader(w.Header(), f.header(len(f.Body)))
	w.WriteHeader(f.status())
	_, _ = w.Write([]byte(f.Body))
}

// resetBody is sent, cut short, when a ResetConnection fault has no body, so
// that the client always sees a truncated answer.
const resetBody = `{"code":"internal_server_error","message":"the connection was reset"}`

// resetConnection announces the whole body, sends half of it and then
// aborts the connection with a TCP reset.
func resetConnection(w *statusRecorder, f Fault) {
	body := f.Body
	if body == "" {
		body = resetBody
	}
	w.decide(f.status())
	conn, buf, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		abortStream(w, f, body)
		return
	}
	writeRawHead(buf.Writer, f, len(body))
	_, _ = buf.WriteString(body[:len(body)/2])
	_ = buf.Flush()
	if tcp, ok := underlyingTCP(conn); ok {
		// Linger 0 makes Close send RST instead of FIN: a reset, not an end.
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// writeRawHead writes an HTTP/1.1 status line and headers on a taken-over
// connection.
func writeRawHead(w *bufio.Writer, f Fault, contentLength int) {
	status := f.status()
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	h := f.header(contentLength)
	h.Set("Connection", "close")
	_ = h.Write(w)
	_, _ = w.WriteString("\r\n")
}

// underlyingTCP finds the TCP connection below a possibly TLS connection.
func underlyingTCP(conn net.Conn) (*net.TCPConn, bool) {
	if tlsConn, ok := conn.(*tls.Conn); ok {
		conn = tlsConn.NetConn()
	}
	tcp, ok := conn.(*net.TCPConn)
	return tcp, ok
}

// abortStream is the fallback of resetConnection where the connection
// cannot be taken over (HTTP/2): send part of the body, then make the server
// abort the stream.
func abortStream(w *statusRecorder, f Fault, body string) {
	copyHeader(w.Header(), f.header(len(body)))
	w.ResponseWriter.WriteHeader(f.status())
	_, _ = w.ResponseWriter.Write([]byte(body[:len(body)/2]))
	_ = http.NewResponseController(w.ResponseWriter).Flush()
	panic(http.ErrAbortHandler)
}

// heldResponse keeps an answer aside so that it can be sent later.
type heldResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

// newHeldResponse returns an empty held answer.
func newHeldResponse() *heldResponse {
	return &heldResponse{header: http.Header{}}
}

// Header returns the held headers.
func (h *heldResponse) Header() http.Header { return h.header }

// WriteHeader holds the status.
func (h *heldResponse) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

// Write holds body bytes.
func (h *heldResponse) Write(b []byte) (int, error) {
	h.WriteHeader(http.StatusOK)
	return h.body.Write(b)
}

// replay sends the held answer to w.
func (h *heldResponse) replay(w http.ResponseWriter) {
	for k, v := range h.header {
		w.Header()[k] = v
	}
	w.WriteHeader(max(h.status, http.StatusOK))
	_, _ = w.Write(h.body.Bytes())
}
