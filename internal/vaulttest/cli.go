package vaulttest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// CLI runs the vault command against the server with the root token.
func (s *Server) CLI(args ...string) (string, error) {
	return s.CLIAs(s.RootToken, args...)
}

// CLIAs runs the vault command against the server with another token. The
// error carries the output, redacted.
func (s *Server) CLIAs(token string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.opts.VaultBin, args...)
	cmd.Env = Environ("VAULT_ADDR="+s.URL(), "VAULT_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	if err != nil {
		text := string(out)
		if s.opts.Redact != nil {
			text = s.opts.Redact(text)
		}
		return string(out), fmt.Errorf("vault %s: %w: %s", strings.Join(args, " "), err, text)
	}
	return string(out), nil
}

// MustCLI runs the vault command and fails when it fails.
func (s *Server) MustCLI(args ...string) string {
	s.t.Helper()
	out, err := s.CLI(args...)
	if err != nil {
		s.t.Fatalf("%v", err)
	}
	return out
}

// RegisterAndMount registers the plugin with its checksum and version and
// mounts it at path the way the README says, with a lease ceiling that fits
// 90-day tokens. In a cluster, one registration serves every node: the
// catalog is replicated, and each node runs its own copy of the binary,
// which must have the same checksum.
func (s *Server) RegisterAndMount(path string) {
	s.t.Helper()
	sum, err := SHA256File(s.PluginPath())
	if err != nil {
		s.t.Fatalf("%v", err)
	}
	p := s.opts.Plugin
	s.MustCLI("plugin", "register", "-sha256="+sum, "-version="+p.Version, "secret", p.Name)
	s.MustCLI("secrets", "enable", "-path="+path, "-max-lease-ttl=2160h", p.Name)
}

// Environ is this process's environment minus every VAULT_ variable, plus
// extra, so that a developer's own Vault settings never reach the servers
// and commands under test (an empty VAULT_ADDR would still override an
// Agent's config).
func Environ(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// CopyFile copies from to to, creating or truncating it with mode.
func CopyFile(from, to string, mode os.FileMode) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// SHA256File is the hex SHA-256 of a file, as vault plugin register wants it.
func SHA256File(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}
