// Package vaulttest runs real Vault servers with the plugin in their plugin
// directory: one server on file storage, in memory (-dev) or on integrated
// storage (Raft), or a Raft cluster of several nodes on loopback. The
// end-to-end suite, its HA test and the benchmark (cmd/bench-vault) share it,
// so that all three start Vault the same way.
//
// Every server listens on ports from testutil.FreePort, logs at the level
// asked into a file in its folder, and is stopped (SIGTERM, then SIGKILL)
// when the TB it was started with cleans up. The harness works for a
// *testing.T and for a program that implements TB itself.
package vaulttest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/testutil"
)

// ReadyTimeout bounds every wait for a server to come up, go down, unseal or
// take the lead.
const ReadyTimeout = 60 * time.Second

// TB is what the harness needs of a test. *testing.T implements it; so does
// the benchmark's runner, whose Fatalf stops the program after cleaning up.
// Fatalf must not return.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	Failed() bool
}

// Storage is where a server keeps its data.
type Storage int

const (
	// File is file storage, initialised and unsealed by the harness; the
	// server keeps its data across Restart.
	File Storage = iota
	// Dev is `vault server -dev`: in memory, unsealed at start, gone when it
	// stops.
	Dev
	// Raft is integrated storage: a commit, with an fsync, per write.
	Raft
)

func (s Storage) String() string {
	return [...]string{File: "file", Dev: "dev", Raft: "raft"}[s]
}

// Plugin is the plugin binary every server gets in its plugin directory
// (none when Bin is empty), and the catalog name and version
// RegisterAndMount registers it under.
type Plugin struct {
	Bin, Name, Version string
}

// Options describe the servers to run.
type Options struct {
	// VaultBin is the vault binary.
	VaultBin string
	Plugin   Plugin
	Storage  Storage
	// LogLevel is Vault's log level; empty means trace, so that the plugin's
	// own lines reach the log a test checks.
	LogLevel string
	// Redact scrubs secrets from a log before the harness prints it.
	Redact func(string) string
	// RawStorage turns on sys/raw, for a test that checks what a plugin
	// has stored. Not available on Dev.
	RawStorage bool
	// Audit enables a file audit device (AuditPath) once the server is
	// active, so that a test can read what Vault's audit log holds: Vault
	// HMACs the data of requests and responses, but not their errors and
	// warnings.
	Audit bool
	// Inspect, when set, runs once the server has stopped for good, as the
	// TB cleans up, before its folder goes: for checks of its logs. An
	// error it returns fails the test.
	Inspect func(*Server) error
	// User, when set, runs the server as that user and group, as
	// production runs Vault (the harness must run as root). The server's
	// folder is handed to the user, HOME points into it, and the server
	// runs its own link or copy of VaultBin: the folder of a cached
	// binary may be closed to other users. The folders above the server's
	// must let the user through.
	User *syscall.Credential
	// Env is added to the server's environment, such as DOCKER_HOST for a
	// containerized plugin.
	Env []string
}

// Server is one running (or stopped) Vault server.
type Server struct {
	opts Options
	t    TB
	// Name is the node's name in a cluster (its Raft node id).
	Name string
	Dir  string
	// Addr is the API listener's host:port; ClusterAddr the cluster
	// listener's, empty when clustering is off.
	Addr, ClusterAddr    string
	RootToken, UnsealKey string
	// Client is an API client for this server with the root token.
	Client *api.Client

	peers []string // API URLs of the other nodes, for retry_join
	// auditDir holds the audit log of Options.Audit: the folder of the
	// node that enabled the device, which every node of a cluster writes.
	auditDir string
	cmd      *exec.Cmd
	exited   chan struct{}
}

// Start runs a new server in dir (which must exist), initialises and
// unseals it, waits until it is active, and stops it when t cleans up.
func Start(t TB, dir string, opts Options) *Server {
	t.Helper()
	s := newServer(t, dir, "node1", opts)
	s.start()
	switch opts.Storage {
	case Dev:
		s.waitActive()
	default:
		s.initialize()
		s.Unseal()
		s.waitActive()
	}
	s.enableAudit()
	return s
}

// newServer prepares a server's folder, plugin directory, ports and
// configuration without starting it.
func newServer(t TB, dir, name string, opts Options) *Server {
	t.Helper()
	if opts.LogLevel == "" {
		opts.LogLevel = "trace"
	}
	for _, sub := range []string{"data", "plugins"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatalf("%v", err)
		}
	}
	s := &Server{opts: opts, t: t, Name: name, Dir: dir, Addr: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))}
	if opts.Storage == Raft {
		s.ClusterAddr = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	}
	if opts.Storage == Dev {
		s.RootToken = randomHex(16)
	}
	// A server that runs the plugin only in a container, or whose test
	// installs the plugin itself, needs no binary copied.
	if opts.Plugin.Bin != "" {
		if err := CopyFile(opts.Plugin.Bin, s.PluginPath(), 0o755); err != nil {
			t.Fatalf("copying the plugin: %v", err)
		}
	}
	if opts.User != nil {
		s.handOver()
	}
	// Cleanups run last-registered first: the inspection sees the logs of
	// a stopped server, whose last lines are written.
	t.Cleanup(s.inspect)
	t.Cleanup(s.Stop)
	t.Cleanup(s.reportOnFailure)
	return s
}

// URL is the server's API address.
func (s *Server) URL() string { return "http://" + s.Addr }

// PluginDir is the server's plugin directory.
func (s *Server) PluginDir() string { return filepath.Join(s.Dir, "plugins") }

// PluginPath is the plugin's binary in the plugin directory: the executable
// of the plugin processes this server runs.
func (s *Server) PluginPath() string { return filepath.Join(s.PluginDir(), s.opts.Plugin.Name) }

// start runs the server process and waits until its listener answers.
func (s *Server) start() {
	s.t.Helper()
	args := []string{"server"}
	if s.opts.Storage == Dev {
		args = append(args, devArgs(s)...)
	} else {
		if err := os.WriteFile(s.configPath(), []byte(serverConfig(s)), 0o600); err != nil {
			s.t.Fatalf("%v", err)
		}
		s.chown(s.configPath())
		args = append(args, "-config="+s.configPath())
	}
	logFile, err := os.OpenFile(s.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatalf("%v", err)
	}
	cmd := exec.Command(s.vaultBin(), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = Environ(s.opts.Env...)
	if s.opts.User != nil {
		cmd.Env = append(cmd.Env, "HOME="+s.Dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.opts.User}
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		s.t.Fatalf("starting vault: %v", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		_ = cmd.Wait()
		logFile.Close()
		close(exited)
	}(s.exited)
	s.Client = s.NewClient()
	s.waitFor("the listener", ReadyTimeout, func() bool {
		_, err := s.Client.Sys().SealStatus()
		return err == nil
	})
}

func (s *Server) configPath() string { return filepath.Join(s.Dir, "vault.hcl") }

// NewClient returns a new API client for this server with the root token;
// see the function NewClient.
func (s *Server) NewClient() *api.Client {
	client, err := NewClient(s.URL(), s.RootToken)
	if err != nil {
		s.t.Fatalf("%v", err)
	}
	return client
}

// NewClient returns an API client for url with token, no retries and no
// redirects: a standby that cannot forward a request answers with a
// redirect to the active node, and a test that reads through a standby
// must see that instead of following it.
func NewClient(url, token string) (*api.Client, error) {
	client, err := api.NewClient(&api.Config{Address: url, Timeout: 30 * time.Second, DisableRedirects: true})
	if err != nil {
		return nil, err
	}
	client.SetToken(token)
	return client, nil
}

// initialize initialises a new server with one unseal key.
func (s *Server) initialize() {
	s.t.Helper()
	resp, err := s.Client.Sys().Init(&api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		s.t.Fatalf("vault operator init on %s: %v", s.Name, err)
	}
	s.RootToken, s.UnsealKey = resp.RootToken, resp.Keys[0]
	s.Client.SetToken(s.RootToken)
}

// Unseal unseals the server and waits until it says so; a cluster's
// standby joins the cluster on its first unseal.
func (s *Server) Unseal() {
	s.t.Helper()
	if _, err := s.Client.Sys().Unseal(s.UnsealKey); err != nil {
		s.t.Fatalf("vault operator unseal on %s: %v", s.Name, err)
	}
	s.waitFor("the unseal", ReadyTimeout, func() bool {
		health, err := s.Client.Sys().Health()
		return err == nil && health.Initialized && !health.Sealed
	})
}

// waitActive waits until the server is the active node.
func (s *Server) waitActive() {
	s.t.Helper()
	s.waitFor("the active node", ReadyTimeout, s.IsActive)
}

// IsActive reports whether the server answers as an unsealed active node.
func (s *Server) IsActive() bool {
	health, err := s.Client.Sys().Health()
	return err == nil && health.Initialized && !health.Sealed && !health.Standby
}

// Restart stops the server and starts it again on the same storage, then
// unseals it and waits until it is active.
func (s *Server) Restart() {
	s.t.Helper()
	if s.opts.Storage == Dev {
		s.t.Fatalf("a dev server keeps nothing to restart with")
	}
	s.Stop()
	s.start()
	s.Unseal()
	s.waitActive()
}

// RestartAfter stops the server, waits pause, and starts it again as
// Restart does: for what must happen while Vault is down.
func (s *Server) RestartAfter(pause time.Duration) {
	s.t.Helper()
	s.Stop()
	time.Sleep(pause)
	s.start()
	s.Unseal()
	s.waitActive()
}

// Running reports whether the server process is alive.
func (s *Server) Running() bool {
	if s.exited == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Stop ends the server gracefully, then forcefully, and any plugin process
// it left behind; it is safe to call more than once.
func (s *Server) Stop() {
	if s.Running() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(ReadyTimeout):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	s.killPlugins()
}

// Kill ends the server with SIGKILL, as a crash of its machine would, and
// with it the plugin processes it ran: Vault cannot stop them, and one
// left running could still act on Beyond Identity, which a dead node's
// plugin never does.
func (s *Server) Kill() {
	s.t.Helper()
	if !s.Running() {
		s.t.Fatalf("%s is not running", s.Name)
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.killPlugins()
}

func (s *Server) killPlugins() {
	for _, pid := range PIDsOf(s.PluginPath()) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// waitFor polls ready until it holds, failing when timeout passes or the
// server exits first.
func (s *Server) waitFor(what string, timeout time.Duration, ready func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for !ready() {
		if !s.Running() {
			s.t.Fatalf("vault %s exited while waiting for %s; log:\n%s", s.Name, what, s.LogTail())
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %s waiting for %s on %s; log:\n%s", timeout, what, s.Name, s.LogTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
