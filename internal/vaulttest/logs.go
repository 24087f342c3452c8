package vaulttest

import (
	"cmp"
	"os"
	"path/filepath"

	"github.com/hashicorp/vault/api"
)

// What a server leaves for a test to read once it has run: its log, its
// audit log, and the inspection of both after it stops.

// LogPath is the file the server logs to.
func (s *Server) LogPath() string { return filepath.Join(s.Dir, "vault.log") }

// enableAudit enables the file audit device at AuditPath when the options
// ask for it. In a cluster, one device serves every node (its config is
// replicated): each writes the same file.
func (s *Server) enableAudit() {
	s.t.Helper()
	if !s.opts.Audit {
		return
	}
	if err := s.Client.Sys().EnableAuditWithOptions("file", &api.EnableAuditOptions{
		Type: "file", Options: map[string]string{"file_path": s.AuditPath()},
	}); err != nil {
		s.t.Fatalf("enabling the file audit device on %s: %v", s.Name, err)
	}
}

// AuditPath is the file the audit device of Options.Audit writes.
func (s *Server) AuditPath() string { return filepath.Join(cmp.Or(s.auditDir, s.Dir), "audit.log") }

// AuditText is the server's whole audit log, empty without Options.Audit.
// In a cluster, every node's is the same file.
func (s *Server) AuditText() string {
	data, _ := os.ReadFile(s.AuditPath())
	return string(data)
}

// inspect runs Options.Inspect on the stopped server.
func (s *Server) inspect() {
	if s.opts.Inspect == nil {
		return
	}
	s.Stop()
	if err := s.opts.Inspect(s); err != nil {
		s.t.Fatalf("vault %s: %v", s.Name, err)
	}
}

// LogText is the server's whole log.
func (s *Server) LogText() string {
	data, _ := os.ReadFile(s.LogPath())
	return string(data)
}

// LogTail is the end of the server's log, redacted, for failure messages.
func (s *Server) LogTail() string {
	text := s.LogText()
	if len(text) > 6000 {
		text = "..." + text[len(text)-6000:]
	}
	if s.opts.Redact != nil {
		text = s.opts.Redact(text)
	}
	return text
}

func (s *Server) reportOnFailure() {
	if s.t.Failed() {
		s.t.Logf("vault %s log (tail):\n%s", s.Name, s.LogTail())
	}
}
