//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/testutil"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// repoRoot is the clone the suite runs in.
const repoRoot = ".."

// readmeShellBlocks returns the README's ```shell blocks, the commands a
// reader runs against their own Vault (```sh blocks are make targets that
// other tests run).
func readmeShellBlocks(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var current []string
	inShell := false
	scanner := bufio.NewScanner(strings.NewReader(string(data)))
	for scanner.Scan() {
		line := scanner.Text()
		switch {
		case !inShell && line == "```shell":
			inShell, current = true, nil
		case inShell && line == "```":
			inShell = false
			blocks = append(blocks, strings.Join(current, "\n"))
		case inShell:
			current = append(current, line)
		}
	}
	if len(blocks) < 4 {
		t.Fatalf("found %d shell blocks in the README", len(blocks))
	}
	return blocks
}

// readmeBlockAfter returns the first block fenced with fence after heading
// in the README.
func readmeBlockAfter(t *testing.T, heading, fence string) string {
	t.Helper()
	return readmeBlocksAfter(t, heading, fence)[0]
}

// readmeBlocksAfter returns the blocks fenced with fence after heading in
// the README, in order; it fails the test when there is none.
func readmeBlocksAfter(t *testing.T, heading, fence string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	at := strings.Index(text, "\n"+heading+"\n")
	if at < 0 {
		t.Fatalf("the README has no %q", heading)
	}
	text = text[at:]
	var blocks []string
	for {
		start := strings.Index(text, "\n"+fence+"\n")
		if start < 0 {
			break
		}
		text = text[start+len(fence)+2:]
		end := strings.Index(text, "\n```") + 1
		blocks, text = append(blocks, text[:end]), text[end:]
	}
	if len(blocks) == 0 {
		t.Fatalf("no %s block after %q", fence, heading)
	}
	return blocks
}

// TestReadmeWalkthrough runs every ```shell block of the README, in order,
// against a real Vault and the fake. One substitution: the config write's
// region=us becomes auth_url=<the fake>, since Beyond Identity's own hosts
// are out of reach here.
func TestReadmeWalkthrough(t *testing.T) {
	fake := newFake("scim:groups:read", "scim:users:read")
	server := newLoopbackServer(t, fake)
	dir := t.TempDir()
	vault := startVault(t, dir)
	t.Cleanup(func() { checkVaultLog(t, vault.LogText(), []string{clientSecret}, fake.Tokens()) })

	script := strings.Join(readmeShellBlocks(t), "\n")
	const region = "client_secret=- region=us"
	if strings.Count(script, region) != 1 {
		t.Fatalf("the README's config write should end with %q exactly once", region)
	}
	script = strings.Replace(script, region, "client_secret=- auth_url="+server, 1)

	t.Cleanup(func() { os.Remove(filepath.Join(repoRoot, "agent-token")) })
	cmd := exec.Command("bash", "-c", "set -euo pipefail\n"+script)
	cmd.Dir = repoRoot
	cmd.Env = vaulttest.Environ(
		"PATH="+vaultOnPath(t)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"VAULT_ADDR="+vault.URL(), "VAULT_TOKEN="+vault.RootToken,
		"VAULT_PLUGIN_DIR="+filepath.Join(dir, "plugins"),
		"BEYOND_IDENTITY_TENANT_ID="+tenantID, "BEYOND_IDENTITY_REALM_ID="+realmID,
		"BEYOND_IDENTITY_APPLICATION_ID="+applicationID, "BEYOND_IDENTITY_CLIENT_ID="+clientID,
		"BEYOND_IDENTITY_CLIENT_SECRET="+clientSecret,
		// make build then builds the plugin with the race detector.
		"GOFLAGS=-race",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's commands failed: %v\n%s", err, redactSecrets(string(out)))
	}
	text := string(out)
	for _, want := range []string{"version               v0.1.0", "token_url", "access_token", "scim:users:read"} {
		if !strings.Contains(text, want) {
			t.Errorf("the walkthrough's output lacks %q:\n%s", want, redactSecrets(text))
		}
	}
	if strings.Contains(text, clientSecret) {
		t.Error("the walkthrough printed the client secret")
	}
	// config's test token, the read and the narrowed write, whose leases
	// the prefix revocation ends; then the static role's first token and
	// its rotation, which deleting the role revokes; then the scheduled
	// static role's first token, which deleting it revokes.
	tokens := fake.Tokens()
	if len(tokens) != 6 || tokens[2].Scopes[0] != "scim:users:read" || len(tokens[2].Scopes) != 1 {
		t.Fatalf("the fake minted %d tokens", len(tokens))
	}
	// lease revoke -prefix is asynchronous: the revocations follow.
	eventually(t, 30*time.Second, "every token revoked after the walkthrough", func() bool {
		for _, token := range tokens {
			if fake.IsActive(token.Value) {
				return false
			}
		}
		return true
	})
}

// vaultOnPath returns a folder holding the suite's Vault as "vault".
func vaultOnPath(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(vaultBin, filepath.Join(dir, "vault")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestMakeDemo runs the front door's first command, against the fake.
func TestMakeDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "demo")
	cmd.Dir = repoRoot
	logs := t.TempDir()
	cmd.Env = withoutTenant(vaulttest.Environ("VAULT_BIN="+vaultBin, "LOG_DIR="+logs, "GOFLAGS=-race"))
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err != nil {
		t.Fatalf("make demo failed: %v\n%s", err, text)
	}
	checkVaultLog(t, readLog(t, filepath.Join(logs, "vault.log")), []string{demoSecret}, nil)
	revoked := text[strings.Index(text, "vault lease revoke"):]
	if strings.Count(revoked, "active=false") != 2 {
		t.Fatalf("after the revocation both tokens should be inactive:\n%s", text)
	}
	for _, want := range []string{"vault plugin register -sha256=", "vault read beyondidentity/creds/demo", "cat beyondidentity-token", "op=revoke"} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	if regexp.MustCompile(`eyJ[A-Za-z0-9_-]{20,}`).MatchString(text) {
		t.Error("the demo printed a whole token")
	}
}

// TestMakeDevAndRegister starts make dev, swaps the plugin with make
// register, uses the environment, and stops it with Ctrl-C.
func TestMakeDevAndRegister(t *testing.T) {
	if _, err := os.Stat(filepath.Join(repoRoot, ".dev", "env")); err == nil {
		t.Skip("a make dev environment is already running in this clone")
	}
	output := &testutil.SyncBuffer{}
	cmd := exec.Command("make", "dev")
	cmd.Dir = repoRoot
	logs := t.TempDir()
	cmd.Env = withoutTenant(vaulttest.Environ("VAULT_BIN="+vaultBin, "LOG_DIR="+logs, "GOFLAGS=-race"))
	cmd.Stdout, cmd.Stderr = output, output
	// Its own process group, so that the interrupt reaches make and the
	// script as a terminal's Ctrl-C would.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stopped := false
	interrupt := func() {
		if !stopped {
			stopped = true
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		}
	}
	t.Cleanup(func() {
		interrupt()
		select {
		case <-exited:
		case <-time.After(readyTimeout):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("make dev output:\n%s", redactSecrets(output.String()))
		}
	})
	eventually(t, 5*time.Minute, "make dev to be ready", func() bool { return strings.Contains(output.String(), "Ready.") })
	addr := regexp.MustCompile(`export VAULT_ADDR=(\S+) VAULT_TOKEN=(\S+)`).FindStringSubmatch(output.String())
	if addr == nil {
		t.Fatal("make dev did not print the VAULT_ADDR and VAULT_TOKEN to export")
	}

	register := exec.Command("make", "register")
	register.Dir = repoRoot
	register.Env = vaulttest.Environ()
	out, err := register.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "running_plugin_version     v0.1.0") {
		t.Fatalf("make register: %v\n%s", err, out)
	}
	read := exec.Command(vaultBin, "read", "-field=token_type", "beyondidentity/creds/demo")
	read.Env = vaulttest.Environ("VAULT_ADDR="+addr[1], "VAULT_TOKEN="+addr[2])
	if out, err := read.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "Bearer" {
		t.Fatalf("reading creds from the make dev Vault after make register: %v %s", err, out)
	}

	interrupt()
	select {
	case <-exited:
	case <-time.After(readyTimeout):
		t.Fatal("make dev did not stop on Ctrl-C")
	}
	if !strings.Contains(output.String(), "stopped.") {
		t.Fatal("make dev did not clean up")
	}
	checkVaultLog(t, readLog(t, filepath.Join(logs, "vault.log")), []string{demoSecret}, nil)
	if _, err := os.Stat(filepath.Join(repoRoot, ".dev", "env")); err == nil {
		t.Fatal("make dev left .dev/env behind")
	}
	if _, err := exec.Command(vaultBin, "status", "-address="+addr[1]).CombinedOutput(); err == nil {
		t.Fatal("the make dev Vault still answers after Ctrl-C")
	}
}

// demoSecret is the client secret of the fake make demo and make dev run:
// not a secret, but the log must not show it any more than a real one.
const demoSecret = "fake-bi-demo-secret-not-a-secret"

// readLog reads a log a script left in LOG_DIR.
func readLog(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the script left no log: %v", err)
	}
	return string(data)
}

// withoutTenant drops BEYOND_IDENTITY_* so the demo uses the fake.
func withoutTenant(env []string) []string {
	var kept []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "BEYOND_IDENTITY_") {
			kept = append(kept, kv)
		}
	}
	return kept
}
