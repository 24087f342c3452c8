//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// agentTemplate is the template the README documents.
const agentTemplate = `{{ with secret "beyondidentity/creds/agent" }}{{ .Data.access_token }}{{ end }}`

// startAgent runs Vault Agent with a token file and one template, and stops
// it when the test ends. It returns the rendered file's path.
func startAgent(t *testing.T, v *vaulttest.Server, token, template string) string {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "vault-token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	return startAgentWith(t, v, fmt.Sprintf(`
  method "token_file" {
    config = {
      token_file_path = %q
    }
  }`, tokenFile), template)
}

// startAgentWith runs Vault Agent with the given auto_auth method block and
// one template, and stops it when the test ends. It returns the rendered
// file's path.
func startAgentWith(t *testing.T, v *vaulttest.Server, method, template string) string {
	t.Helper()
	dir := t.TempDir()
	rendered := filepath.Join(dir, "beyondidentity-token")
	config := fmt.Sprintf(`
vault {
  address = %q
}
auto_auth {
%s
}
template_config {
  exit_on_retry_failure = true
}
template {
  contents    = %q
  destination = %q
  perms       = "0600"
}
`, v.URL(), method, template, rendered)
	configFile := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, vaultBin, "agent", "-config="+configFile, "-log-level=debug")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = vaulttest.Environ()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting vault agent: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			data, _ := os.ReadFile(logFile.Name())
			t.Logf("vault agent log:\n%s", redactSecrets(string(data)))
		}
	})
	return rendered
}

// readRendered returns the rendered token, or "" before the first render.
func readRendered(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

func TestAgentRendersAndRefreshesTheToken(t *testing.T) {
	e := newEnv(t)
	e.tokensOutliveTheirLeases()
	// A short life so that the Agent must fetch a fresh token within the test.
	e.write("beyondidentity/roles/agent", map[string]any{"scopes": "identities:read", "ttl": "10s"})
	e.vault.MustCLI("policy", "write", "bi-agent", writeTemp(t, `path "beyondidentity/creds/agent" { capabilities = ["read"] }`))
	// The Agent's own token outlives the credentials it fetches: leases die
	// with the Vault token that created them.
	auth, err := e.vault.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"bi-agent"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	rendered := startAgent(t, e.vault, auth.Auth.ClientToken, agentTemplate)

	eventually(t, 30*time.Second, "the first render", func() bool { return readRendered(rendered) != "" })
	first := readRendered(rendered)
	firstToken, ok := e.fake.TokenByValue(first)
	if !ok || !e.fake.IsActive(first) {
		t.Fatal("the Agent rendered something that is not a live token of the fake")
	}
	if info, err := os.Stat(rendered); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("rendered file mode: %v %v", info.Mode(), err)
	}

	// Before the 10-second lease ends, the Agent fetches and renders a new one.
	eventually(t, 30*time.Second, "a re-render with a new token", func() bool {
		current := readRendered(rendered)
		return current != "" && current != first
	})
	second := readRendered(rendered)
	secondToken, ok := e.fake.TokenByValue(second)
	if !ok || secondToken.ID == firstToken.ID {
		t.Fatal("the re-rendered token was not freshly issued by the fake")
	}
	// The first lease ends and Vault revokes its token at Beyond Identity:
	// the token would have lived another hour.
	eventually(t, 30*time.Second, "the first token revoked", func() bool { return !e.fake.IsActive(first) })
	if revoked, _ := e.fake.TokenByValue(first); revoked.RevokedAt.IsZero() || !time.Now().Before(revoked.ExpiresAt) {
		t.Fatal("the first token expired instead of being revoked at its lease's end")
	}
	for _, call := range e.fake.CallsTo(fakebi.OpToken) {
		if call.Form.Get("expiration_time") != "10" {
			t.Fatalf("a token was minted for %s seconds, not the lease's 10", call.Form.Get("expiration_time"))
		}
	}
}
