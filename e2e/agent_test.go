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
	return startAgentTemplates(t, v, token, template)[0]
}

// startAgentTemplates runs Vault Agent with a token file and the given
// templates, as the docs configure it, and stops it when the test ends. It
// returns the rendered files' paths, in the templates' order.
func startAgentTemplates(t *testing.T, v *vaulttest.Server, token string, templates ...string) []string {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "vault-token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	return startAgentWithAll(t, v, fmt.Sprintf(`
  method "token_file" {
    config = {
      token_file_path = %q
    }
  }`, tokenFile), templates...)
}

// startAgentWith runs Vault Agent with the given auto_auth method block and
// one template, and stops it when the test ends. It returns the rendered
// file's path.
func startAgentWith(t *testing.T, v *vaulttest.Server, method, template string) string {
	t.Helper()
	return startAgentWithAll(t, v, method, template)[0]
}

// startAgentWithAll is startAgentWith with any number of templates.
func startAgentWithAll(t *testing.T, v *vaulttest.Server, method string, templates ...string) []string {
	t.Helper()
	dir := t.TempDir()
	var rendered []string
	var blocks strings.Builder
	for i, template := range templates {
		rendered = append(rendered, filepath.Join(dir, fmt.Sprintf("beyondidentity-token-%d", i)))
		fmt.Fprintf(&blocks, `
template {
  contents    = %q
  destination = %q
  perms       = "0600"
}
`, template, rendered[i])
	}
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
%s`, v.URL(), method, blocks.String())
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

// followedRole is a static role whose rendered file a test watches. Its
// tokens are told from the other roles' by the one scope they carry.
type followedRole struct {
	name, scope, rendered string
	// minted is when the test first saw the fake mint each of its tokens.
	minted map[string]time.Time
	// shown is the tokens the rendered file has held, and renders counts
	// them past the first.
	shown   map[string]bool
	renders int
}

// current is the role's newest token and when the test first saw it.
func (r *followedRole) current(fake *fakebi.Server, now time.Time) (string, time.Time) {
	var newest string
	for _, token := range fake.Tokens() {
		if len(token.Scopes) == 1 && token.Scopes[0] == r.scope {
			newest = token.Value
			if _, seen := r.minted[newest]; !seen {
				r.minted[newest] = now
			}
		}
	}
	return newest, r.minted[newest]
}

// TestAgentFollowsEveryStaticRoleWithinSeconds runs one Vault Agent, as the
// docs configure it, over a role with a 20-second period and a role
// scheduled every minute: for each rotation, the rendered file holds the
// new token within a few seconds, and never a replaced one for longer. The
// scheduled role's static-creds carries rotation_period, without which
// Agent re-reads only every five minutes.
func TestAgentFollowsEveryStaticRoleWithinSeconds(t *testing.T) {
	e := newEnv(t)
	roles := []*followedRole{
		{name: "every-20s", scope: "identities:read"},
		{name: "every-minute", scope: "groups:read"},
	}
	e.write("beyondidentity/static-roles/every-20s", map[string]any{"scopes": "identities:read", "rotation_period": "20s"})
	e.write("beyondidentity/static-roles/every-minute", map[string]any{"scopes": "groups:read", "rotation_schedule": "* * * * *"})
	e.vault.MustCLI("policy", "write", "bi-static", writeTemp(t, `path "beyondidentity/static-creds/*" { capabilities = ["read"] }`))
	auth, err := e.vault.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"bi-static"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	var templates []string
	for _, r := range roles {
		templates = append(templates, fmt.Sprintf(`{{ with secret "beyondidentity/static-creds/%s" }}{{ .Data.access_token }}{{ end }}`, r.name))
		r.minted, r.shown = map[string]time.Time{}, map[string]bool{}
	}
	for i, path := range startAgentTemplates(t, e.vault, auth.Auth.ClientToken, templates...) {
		roles[i].rendered = path
	}

	// Within a few seconds: the Agent re-reads a second after ttl, and the
	// rotation runs within a second or two of its time.
	const renderBound = 5 * time.Second
	deadline := time.Now().Add(210 * time.Second) // two minute boundaries, whenever the test starts
	for roles[0].renders < 2 || roles[1].renders < 2 {
		now := time.Now()
		if now.After(deadline) {
			t.Fatalf("in %s, the Agent rendered %d and %d rotations of the two roles, want 2 each",
				210*time.Second, roles[0].renders, roles[1].renders)
		}
		for _, r := range roles {
			newest, minted := r.current(e.fake, now)
			shown := readRendered(r.rendered)
			switch {
			case shown == "":
				continue // before the first render
			case shown != newest && now.Sub(minted) > renderBound:
				t.Fatalf("%s: the rendered file still holds a replaced token %s after the rotation",
					r.name, now.Sub(minted).Round(100*time.Millisecond))
			case shown == newest && !r.shown[shown]:
				if len(r.shown) > 0 {
					r.renders++
					t.Logf("%s: rotation %d rendered %s after its mint", r.name, r.renders, now.Sub(minted).Round(100*time.Millisecond))
				}
				r.shown[shown] = true
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}
