//go:build e2e

package e2e

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

type apiTokenCreateRequest = api.TokenCreateRequest

// writeTemp writes content to a file in the test's temporary folder and
// returns its path.
func writeTemp(t *testing.T, content string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(f.Name())
}

// newLoopbackServer serves handler on 127.0.0.1 until the test ends and
// returns its base URL.
func newLoopbackServer(t *testing.T, handler http.Handler) string {
	t.Helper()
	server := httptest.NewServer(handler)
	t.Cleanup(server.Close)
	return server.URL
}

// withoutPrefix is env without the variables whose names start with
// prefix: a developer's settings that would change what a test runs
// (BEYOND_IDENTITY_* would aim the demo at a real tenant).
func withoutPrefix(prefix string, env []string) []string {
	var kept []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, prefix) {
			kept = append(kept, kv)
		}
	}
	return kept
}
