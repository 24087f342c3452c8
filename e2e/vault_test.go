//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/testutil"
)

// readyTimeout bounds every wait for a server to come up or go down.
const readyTimeout = 60 * time.Second

// vaultServer is a real Vault server on file storage, initialised and
// unsealed, with the plugin in its plugin directory.
type vaultServer struct {
	t         *testing.T
	dir       string
	addr      string
	cmd       *exec.Cmd
	exited    chan struct{}
	rootToken string
	unsealKey string
	client    *api.Client
}

// startVault starts a fresh Vault server in dir and stops it when the test
// ends.
func startVault(t *testing.T, dir string) *vaultServer {
	t.Helper()
	for _, sub := range []string{"data", "plugins"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, pluginBin, filepath.Join(dir, "plugins", pluginName), 0o755)
	v := &vaultServer{t: t, dir: dir, addr: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))}
	v.writeConfig()
	t.Cleanup(v.stop)
	t.Cleanup(v.reportOnFailure)
	v.start()
	v.initialize()
	return v
}

func (v *vaultServer) url() string { return "http://" + v.addr }

func (v *vaultServer) logPath() string { return filepath.Join(v.dir, "vault.log") }

func (v *vaultServer) writeConfig() {
	config := fmt.Sprintf(`
storage "file" {
  path = %q
}
listener "tcp" {
  address     = %q
  tls_disable = true
}
api_addr           = %q
disable_clustering = true
plugin_directory   = %q
disable_mlock      = true
log_level          = "trace"
`, filepath.Join(v.dir, "data"), v.addr, v.url(), filepath.Join(v.dir, "plugins"))
	if err := os.WriteFile(filepath.Join(v.dir, "vault.hcl"), []byte(config), 0o600); err != nil {
		v.t.Fatal(err)
	}
}

// start runs the server process and waits until its listener answers.
func (v *vaultServer) start() {
	v.t.Helper()
	logFile, err := os.OpenFile(v.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		v.t.Fatal(err)
	}
	cmd := exec.Command(vaultBin, "server", "-config="+filepath.Join(v.dir, "vault.hcl"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = environWithoutVault()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		v.t.Fatalf("starting vault: %v", err)
	}
	v.cmd, v.exited = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(v.exited)
	}()
	client, err := api.NewClient(&api.Config{Address: v.url(), Timeout: 30 * time.Second})
	if err != nil {
		v.t.Fatal(err)
	}
	v.client = client
	if v.rootToken != "" {
		client.SetToken(v.rootToken)
	}
	v.waitFor("the listener", func() bool {
		_, err := client.Sys().SealStatus()
		return err == nil
	})
}

// initialize initialises and unseals a new server.
func (v *vaultServer) initialize() {
	v.t.Helper()
	resp, err := v.client.Sys().Init(&api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		v.t.Fatalf("vault operator init: %v", err)
	}
	v.rootToken, v.unsealKey = resp.RootToken, resp.Keys[0]
	v.client.SetToken(v.rootToken)
	v.unseal()
}

// unseal unseals the server and waits until it is the active node.
func (v *vaultServer) unseal() {
	v.t.Helper()
	if _, err := v.client.Sys().Unseal(v.unsealKey); err != nil {
		v.t.Fatalf("vault operator unseal: %v", err)
	}
	v.waitFor("the active node", func() bool {
		health, err := v.client.Sys().Health()
		return err == nil && health.Initialized && !health.Sealed && !health.Standby
	})
}

// restart stops the server and starts it again on the same storage.
func (v *vaultServer) restart() {
	v.t.Helper()
	v.stop()
	v.start()
	v.unseal()
}

// stop ends the server gracefully, then forcefully; it is safe to call
// more than once.
func (v *vaultServer) stop() {
	if v.cmd == nil || v.cmd.Process == nil {
		return
	}
	select {
	case <-v.exited:
		return
	default:
	}
	_ = v.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-v.exited:
	case <-time.After(readyTimeout):
		_ = v.cmd.Process.Kill()
		<-v.exited
	}
}

// waitFor polls ready until it holds or readyTimeout passes.
func (v *vaultServer) waitFor(what string, ready func() bool) {
	v.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for !ready() {
		select {
		case <-v.exited:
			v.t.Fatalf("vault exited while waiting for %s; log:\n%s", what, v.logTail())
		default:
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("timed out waiting for %s; log:\n%s", what, v.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (v *vaultServer) logText() string {
	data, _ := os.ReadFile(v.logPath())
	return string(data)
}

// logTail is the end of the server's log, for failure messages. The suite
// also asserts that no secret is ever in that log.
func (v *vaultServer) logTail() string {
	text := v.logText()
	if len(text) > 6000 {
		text = "..." + text[len(text)-6000:]
	}
	return redactSecrets(text)
}

func (v *vaultServer) reportOnFailure() {
	if v.t.Failed() {
		v.t.Logf("vault server log (tail):\n%s", v.logTail())
	}
}

// cli runs the vault command against the server with the root token.
func (v *vaultServer) cli(args ...string) (string, error) {
	return v.cliAs(v.rootToken, args...)
}

// cliAs runs the vault command with another token.
func (v *vaultServer) cliAs(token string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, vaultBin, args...)
	cmd.Env = environWithoutVault("VAULT_ADDR="+v.url(), "VAULT_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vault %s: %w: %s", strings.Join(args, " "), err, redactSecrets(string(out)))
	}
	return string(out), nil
}

// mustCLI runs the vault command and fails the test when it fails.
func (v *vaultServer) mustCLI(args ...string) string {
	v.t.Helper()
	out, err := v.cli(args...)
	if err != nil {
		v.t.Fatal(err)
	}
	return out
}

// registerAndMount registers the plugin with its checksum and version and
// mounts it the way the README says.
func (v *vaultServer) registerAndMount() {
	v.t.Helper()
	v.mustCLI("plugin", "register", "-sha256="+fileSHA256(v.t, filepath.Join(v.dir, "plugins", pluginName)),
		"-version="+pluginVersion, "secret", pluginName)
	v.mustCLI("secrets", "enable", "-path=beyondidentity", "-max-lease-ttl=2160h", pluginName)
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
