//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
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
