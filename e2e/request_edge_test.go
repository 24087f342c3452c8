//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// TestPublishedPathsAreTheDocumentedOnes reads Vault's OpenAPI document and
// the mount's path-help from a real Vault: every path the plugin publishes
// is one docs/api.md documents, every documented path is published, and no
// internal catch-all route is listed.
func TestPublishedPathsAreTheDocumentedOnes(t *testing.T) {
	e := newEnv(t)
	documented := documentedPaths(t)

	spec, err := e.vault.Client.Logical().Read("sys/internal/specs/openapi")
	if err != nil || spec == nil {
		t.Fatalf("reading sys/internal/specs/openapi: %v", err)
	}
	paths, _ := spec.Data["paths"].(map[string]any)
	var published []string
	for path := range paths {
		if rest, ours := strings.CutPrefix(path, "/beyondidentity/"); ours {
			published = append(published, rest)
		}
	}
	slices.Sort(published)
	if len(published) == 0 {
		t.Fatal("the OpenAPI document holds no path of the mount")
	}
	for _, path := range published {
		if !slices.Contains(documented, path) {
			t.Errorf("the OpenAPI document publishes %s, which docs/api.md does not document", path)
		}
	}
	for _, path := range documented {
		if !slices.Contains(published, path) {
			t.Errorf("docs/api.md documents %s, which the OpenAPI document does not publish", path)
		}
	}

	help := e.vault.MustCLI("path-help", "beyondidentity/")
	for _, internal := range []string{"(?P<family>", ".+)", "Role names: which characters"} {
		if strings.Contains(help, internal) {
			t.Errorf("vault path-help beyondidentity/ lists an internal route (%q):\n%s", internal, help)
		}
	}
	// A bad name still gets the answer that says which names are valid.
	out, err := e.vault.CLI("write", "beyondidentity/roles/scim.", "scopes=identities:read")
	if err == nil || !strings.Contains(out, "may use only letters, digits") {
		t.Fatalf("a bad role name: %v\n%s", err, out)
	}
}

// documentedPaths are the paths docs/api.md's headings name, written as
// OpenAPI writes them: roles/{name} for roles/:name.
func documentedPaths(t *testing.T) []string {
	t.Helper()
	page, err := os.ReadFile(filepath.Join("..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile("(?m)^## `.*$")
	quoted := regexp.MustCompile("`([^`]+)`")
	param := regexp.MustCompile(`:([a-z_]+)`)
	var paths []string
	for _, line := range heading.FindAllString(string(page), -1) {
		for _, match := range quoted.FindAllStringSubmatch(line, -1) {
			paths = append(paths, param.ReplaceAllString(match[1], "{$1}"))
		}
	}
	if len(paths) == 0 {
		t.Fatal("docs/api.md documents no path")
	}
	slices.Sort(paths)
	return paths
}

// TestASecretOfTheWrongTypeIsNeverEchoed writes client_secret as a list
// (through the CLI, which makes one of a key given twice, and as JSON), an
// object and a number: each is a 400 that names the field, and neither the
// answer, Vault's server log (at trace, the plugin's lines included) nor a
// file audit device holds the secret; and Vault logs no existence-check
// error for it.
func TestASecretOfTheWrongTypeIsNeverEchoed(t *testing.T) {
	e := newEnv(t)
	auditLog := filepath.Join(t.TempDir(), "audit.log")
	e.vault.MustCLI("audit", "enable", "file", "file_path="+auditLog)
	const secret = "wrong-type-secret-e2e-Kp4Yq7Rz"
	writes := map[string]func() (string, error){
		"the CLI, the key twice": func() (string, error) {
			return e.vault.CLI("write", "beyondidentity/config", "client_secret="+secret, "client_secret="+secret)
		},
		"a JSON list": func() (string, error) {
			return writeJSON(e.vault.Client, map[string]any{"client_secret": []string{secret}})
		},
		"a JSON object": func() (string, error) {
			return writeJSON(e.vault.Client, map[string]any{"client_secret": map[string]any{"v": secret}})
		},
		"a JSON number": func() (string, error) {
			return writeJSON(e.vault.Client, map[string]any{"client_secret": json.Number("98765432109876543210")})
		},
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			out, err := write()
			// Never printed when it holds the secret.
			if strings.Contains(out, "Kp4Yq7Rz") || strings.Contains(out, "98765432109876543210") {
				t.Fatal("the answer quotes the secret")
			}
			if err == nil || !strings.Contains(out, "'client_secret' must be a string") {
				t.Fatalf("want a 400 naming client_secret: %v\n%s", err, out)
			}
		})
	}
	e.vault.MustCLI("audit", "disable", "file")
	audit, err := os.ReadFile(auditLog)
	if err != nil || len(audit) == 0 {
		t.Fatalf("the audit device wrote nothing: %v", err)
	}
	for where, text := range map[string]string{"the audit log": string(audit), "Vault's log": e.vault.LogText()} {
		if strings.Contains(text, "Kp4Yq7Rz") || strings.Contains(text, "98765432109876543210") {
			t.Errorf("%s holds the secret", where)
		}
	}
	if strings.Contains(e.vault.LogText(), "failed to run existence check") {
		t.Error("Vault logged an existence-check error for an operator's mistake")
	}
}

// writeJSON writes config with a JSON body as is, and returns the error's
// text as the answer.
func writeJSON(client *api.Client, body map[string]any) (string, error) {
	_, err := client.Logical().Write("beyondidentity/config", body)
	if err != nil {
		return err.Error(), err
	}
	return "", nil
}
