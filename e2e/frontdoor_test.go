//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/docblocks"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/testutil"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// repoRoot is the clone the suite runs in.
const repoRoot = ".."

// ownTests are the pages whose shell blocks end-to-end tests of their own
// run: they need tools or a history the walkthrough does not set up.
var ownTests = map[string]string{
	"docs/terraform.md": "OpenTofu and the Vault provider",
	"docs/upgrade.md":   "the previous release, built from the repository's history",
	"docs/release.md":   "a private Docker engine with gVisor's runsc",
}

// docSection returns the texts of the blocks fenced with info under
// heading, on whichever page (the README or docs/) holds it.
func docSection(t *testing.T, heading, info string) []string {
	t.Helper()
	blocks, err := docblocks.Section(repoRoot, heading, info)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, b := range blocks {
		texts = append(texts, b.Text)
	}
	return texts
}

// shellBlocks returns a page's ```shell blocks, the commands a reader runs
// against their own Vault, in order.
func shellBlocks(t *testing.T, page string) []docblocks.Block {
	t.Helper()
	blocks, err := docblocks.Read(repoRoot, page)
	if err != nil {
		t.Fatal(err)
	}
	var shell []docblocks.Block
	for _, b := range blocks {
		if b.Info == "shell" {
			shell = append(shell, b)
		}
	}
	return shell
}

// script joins blocks into one bash script that stops at the first failure
// and says which block it was in.
func script(blocks []docblocks.Block) string {
	var parts []string
	for _, b := range blocks {
		parts = append(parts, fmt.Sprintf("echo '>>> %s:%d'\n%s", b.Page, b.Line, b.Text))
	}
	return "set -euo pipefail\n" + strings.Join(parts, "\n")
}

// redactTokens scrubs what a fake in another process minted (a JWT each)
// and the demo secret, beside what redactSecrets knows.
func redactTokens(text string) string {
	return jwtShaped.ReplaceAllString(strings.ReplaceAll(redactSecrets(text), demoSecret, "[demo secret]"), "[token]")
}

// TestDocsWalkthrough runs every ```shell block of the README, then of each
// page of docs/ after the README's, in order and as printed, against a real
// Vault and the fake, in the environment the README's commands read: the
// BEYOND_IDENTITY_* variables (the fake's auth_url among them), a Vault
// with an empty plugin directory, and vault and bi-introspect on PATH.
func TestDocsWalkthrough(t *testing.T) {
	pages, err := docblocks.Pages(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	readme := shellBlocks(t, "README.md")
	if len(readme) < 6 {
		t.Fatalf("found %d shell blocks in the README", len(readme))
	}
	ran := 0
	for _, page := range pages {
		blocks := shellBlocks(t, page)
		if len(blocks) == 0 || ownTests[page] != "" {
			continue
		}
		ran++
		t.Run(page, func(t *testing.T) {
			fake := newFake("groups:read", "identities:read", "scim:groups:read", "scim:users:read")
			text := runPage(t, fake, readme, page, blocks)
			checkPage[page](t, fake, text)
		})
	}
	if ran < 4 {
		t.Fatalf("ran the blocks of %d pages", ran)
	}
}

// runPage runs the README's blocks, then (for another page) that page's in
// a folder of its own, and returns the output.
func runPage(t *testing.T, fake *fakebi.Server, readme []docblocks.Block, page string, blocks []docblocks.Block) string {
	t.Helper()
	server := newLoopbackServer(t, fake)
	dir := t.TempDir()
	vault := startVault(t, dir)
	t.Cleanup(func() { checkVaultLog(t, vault.LogText(), []string{clientSecret}, fake.Tokens()) })
	all := readme
	if page != "README.md" {
		// The page's commands run in a folder of their own, so that the
		// files they write (a token for an Agent, for a scrape) stay there.
		all = append(append(slices.Clip(readme), docblocks.Block{Page: page, Text: `cd "$PAGE_DIR"`}), blocks...)
	}
	text := script(all)
	cmd := exec.Command("bash", "-c", text)
	cmd.Dir = repoRoot
	cmd.Env = vaulttest.Environ(
		"PATH="+toolsOnPath(t)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"VAULT_ADDR="+vault.URL(), "VAULT_TOKEN="+vault.RootToken,
		"VAULT_PLUGIN_DIR="+filepath.Join(dir, "plugins"), "PAGE_DIR="+t.TempDir(),
		"BEYOND_IDENTITY_TENANT_ID="+tenantID, "BEYOND_IDENTITY_REALM_ID="+realmID,
		"BEYOND_IDENTITY_APPLICATION_ID="+applicationID, "BEYOND_IDENTITY_CLIENT_ID="+clientID,
		"BEYOND_IDENTITY_CLIENT_SECRET="+clientSecret, "BEYOND_IDENTITY_AUTH_URL="+server,
		// make build then builds the plugin with the race detector.
		"GOFLAGS=-race",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the commands of %s failed: %v\n%s", page, err, redactTokens(string(out)))
	}
	if strings.Contains(string(out), clientSecret) {
		t.Errorf("the commands of %s printed the client secret", page)
	}
	return string(out)
}

// checkPage checks what each page's commands did, beyond succeeding.
var checkPage = map[string]func(t *testing.T, fake *fakebi.Server, out string){
	"README.md": func(t *testing.T, fake *fakebi.Server, out string) {
		checkReadmeOutput(t, out)
		if !strings.Contains(out, "version               v0.1.0") {
			t.Errorf("the README's install did not show the registered version:\n%s", redactTokens(out))
		}
		// The prefix revocation ends the role's two leases, and deleting the
		// scheduled roles revokes their tokens; the rest live on.
		var scimSync []fakebi.Token
		for _, token := range fake.Tokens() {
			if token.CustomClaims["team"] == "identity" && token.CustomClaims["vault_user"] == nil {
				scimSync = append(scimSync, token)
			}
		}
		if len(scimSync) != 2 {
			t.Fatalf("the fake minted %d tokens for scim-sync, want the read and the narrowed write", len(scimSync))
		}
		eventually(t, 30*time.Second, "scim-sync's tokens revoked after vault lease revoke -prefix", func() bool {
			return !fake.IsActive(scimSync[0].Value) && !fake.IsActive(scimSync[1].Value)
		})
	},
	"docs/operations.md": func(t *testing.T, fake *fakebi.Server, _ string) {
		// The teardown leaves no token alive upstream: leases, static roles'
		// current and replaced tokens, attributed tokens.
		eventually(t, 30*time.Second, "every token revoked after the teardown", func() bool {
			for _, token := range fake.Tokens() {
				if fake.IsActive(token.Value) {
					return false
				}
			}
			return true
		})
	},
	"docs/metrics.md": func(t *testing.T, _ *fakebi.Server, out string) {
		// The raw read and curl print the exposition itself, twice.
		if strings.Count(out, "# TYPE beyondidentity_tokens_issued_total counter") < 2 {
			t.Fatalf("the metrics page's commands did not print the Prometheus text twice:\n%s", redactTokens(out))
		}
	},
	"docs/usage.md": func(t *testing.T, _ *fakebi.Server, _ string) {},
}

// biIntrospectLine is what bi-introspect prints for an active token.
var biIntrospectLine = regexp.MustCompile(`(?m)^token \S+: active=true, expires \S+, bi_custom (\{.*\})$`)

// checkReadmeOutput checks what the README's commands from Configure on
// printed: the config, a token, the metrics in both formats, and two
// attributed tokens, the second showing the entity's new metadata.
func checkReadmeOutput(t *testing.T, out string) {
	t.Helper()
	for _, want := range []string{"token_url", "access_token", "scim:users:read",
		"# TYPE beyondidentity_tokens_issued_total counter", `beyondidentity_tokens_issued_total{role="scim-sync"}`} {
		if !strings.Contains(out, want) {
			t.Errorf("the README's commands did not print %q:\n%s", want, redactTokens(out))
		}
	}
	lines := biIntrospectLine.FindAllStringSubmatch(out, -1)
	if len(lines) != 2 {
		t.Fatalf("bi-introspect printed %d attributed tokens, want 2:\n%s", len(lines), redactTokens(out))
	}
	for i, team := range []string{"payments", "identity"} {
		var claims map[string]any
		if err := json.Unmarshal([]byte(lines[i][1]), &claims); err != nil {
			t.Fatalf("bi_custom %s: %v", lines[i][1], err)
		}
		groups, _ := claims["groups"].([]any)
		if claims["vault_user"] != "alice" || claims["team"] != team || len(groups) != 1 || groups[0] != "payments-eng" ||
			claims["vault_entity"] == "" {
			t.Errorf("token %d's bi_custom is %s, want alice of team %s in payments-eng", i+1, lines[i][1], team)
		}
	}
}

// toolsOnPath returns a folder holding the suite's Vault as "vault" and the
// clone's bi-introspect (which the README's make build builds), as make
// dev's banner puts them on PATH.
func toolsOnPath(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	abs, err := filepath.Abs(filepath.Join(repoRoot, "bin", "bi-introspect"))
	if err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"vault": vaultBin, "bi-introspect": abs} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
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
	cmd.Env = withoutPrefix("BEYOND_IDENTITY_", vaulttest.Environ("VAULT_BIN="+vaultBin, "LOG_DIR="+logs, "GOFLAGS=-race"))
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

// TestMakeDev starts make dev as an operator does, pastes its banner's
// export lines into a shell and runs the README's commands there as
// printed, from Configure on; then swaps the plugin with make register,
// uses the environment again, and stops it with Ctrl-C.
func TestMakeDev(t *testing.T) {
	if _, err := os.Stat(filepath.Join(repoRoot, ".dev", "env")); err == nil {
		t.Skip("a make dev environment is already running in this clone")
	}
	output := &testutil.SyncBuffer{}
	cmd := exec.Command("make", "dev")
	cmd.Dir = repoRoot
	logs := t.TempDir()
	cmd.Env = withoutPrefix("BEYOND_IDENTITY_", vaulttest.Environ("VAULT_BIN="+vaultBin, "LOG_DIR="+logs, "GOFLAGS=-race"))
	cmd.Stdout, cmd.Stderr = output, output
	// Its own process group, so that the interrupt reaches make and the
	// script as a terminal's Ctrl-C would.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	started := time.Now()
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
			t.Logf("make dev output:\n%s", redactTokens(output.String()))
		}
	})
	eventually(t, 5*time.Minute, "make dev to be ready", func() bool { return strings.Contains(output.String(), "Ready.") })
	t.Logf("make dev was ready after %s", time.Since(started).Round(time.Second))
	banner := bannerExports(output.String())
	checkBannerSample(t, banner)

	t.Run("the README in the banner's shell", func(t *testing.T) {
		var blocks []docblocks.Block
		for _, b := range shellBlocks(t, "README.md") {
			// make dev has installed and mounted the plugin already.
			if b.Heading != "## Install it in your Vault" {
				blocks = append(blocks, b)
			}
		}
		shell := exec.Command("bash", "-c", strings.Join(banner, "\n")+"\n"+script(blocks))
		// Anywhere: vault and bi-introspect come from the banner's PATH.
		shell.Dir = t.TempDir()
		shell.Env = withoutPrefix("BEYOND_IDENTITY_", vaulttest.Environ("PATH="+pathWithout(t, "vault", "bi-introspect")))
		out, err := shell.CombinedOutput()
		if err != nil {
			t.Fatalf("the README's commands failed in make dev's shell: %v\n%s", err, redactTokens(string(out)))
		}
		checkReadmeOutput(t, string(out))
		if strings.Contains(string(out), demoSecret) {
			t.Error("the README's commands printed the client secret")
		}
	})

	addr := regexp.MustCompile(`export VAULT_ADDR=(\S+) VAULT_TOKEN=(\S+)`).FindStringSubmatch(output.String())
	if addr == nil {
		t.Fatal("make dev did not print the VAULT_ADDR and VAULT_TOKEN to export")
	}
	register := exec.Command("make", "register")
	register.Dir = repoRoot
	register.Env = vaulttest.Environ()
	out, err := register.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "running_plugin_version     v0.1.0") {
		t.Fatalf("make register: %v\n%s", err, redactTokens(string(out)))
	}
	read := exec.Command(vaultBin, "read", "-field=token_type", "beyondidentity/creds/demo")
	read.Env = vaulttest.Environ("VAULT_ADDR="+addr[1], "VAULT_TOKEN="+addr[2])
	if out, err := read.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "Bearer" {
		t.Fatalf("reading creds from the make dev Vault after make register: %v %s", err, redactTokens(string(out)))
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

// bannerExports returns the export lines of make dev's banner, as an
// operator pastes them.
func bannerExports(output string) []string {
	var exports []string
	for _, line := range strings.Split(output, "\n") {
		if strings.HasPrefix(line, "    export ") {
			exports = append(exports, strings.TrimSpace(line))
		}
	}
	return exports
}

// exportedName finds the variables an export line sets.
var exportedName = regexp.MustCompile(`\b([A-Z_]+)=`)

// checkBannerSample checks that the banner the README shows exports the
// variables the real one does, and no others.
func checkBannerSample(t *testing.T, banner []string) {
	t.Helper()
	names := func(lines []string) []string {
		var found []string
		for _, line := range lines {
			line, _, _ = strings.Cut(line, "#")
			for _, match := range exportedName.FindAllStringSubmatch(line, -1) {
				found = append(found, match[1])
			}
		}
		slices.Sort(found)
		return found
	}
	sample := docSection(t, "## Try it", "text")[0]
	if got, want := names(bannerExports("\n"+sample)), names(banner); !slices.Equal(got, want) {
		t.Fatalf("the README's banner exports %v; make dev's exports %v", got, want)
	}
	if len(banner) < 5 {
		t.Fatalf("make dev's banner has %d export lines", len(banner))
	}
}

// pathWithout is this process's PATH without the folders that hold any of
// the commands named, so that a shell finds them only where it is told.
func pathWithout(t *testing.T, commands ...string) string {
	t.Helper()
	var kept []string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		holds := false
		for _, command := range commands {
			if _, err := os.Stat(filepath.Join(dir, command)); err == nil {
				holds = true
			}
		}
		if !holds {
			kept = append(kept, dir)
		}
	}
	return strings.Join(kept, string(os.PathListSeparator))
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
