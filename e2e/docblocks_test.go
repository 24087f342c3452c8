//go:build e2e

package e2e

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/docblocks"
)

// docBlocks returns the texts of the blocks fenced with ```fence in the
// page doc (a path from the repository's root), in order: all of them when
// heading is empty, else those of the section under the heading line (such
// as "## Roll back"). It fails the test when there is none, so that a page
// cannot lose the commands its test runs.
func docBlocks(t *testing.T, doc, heading, fence string) []string {
	t.Helper()
	var blocks []docblocks.Block
	var err error
	if heading == "" {
		blocks, err = docblocks.Read(repoRoot, doc)
	} else {
		blocks, err = docblocks.Section(repoRoot, heading, fence)
	}
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, b := range blocks {
		if b.Page == doc && b.Info == fence {
			texts = append(texts, b.Text)
		}
	}
	if len(texts) == 0 {
		t.Fatalf("%s has no ```%s block under %q", doc, fence, heading)
	}
	return texts
}

// runShell runs script with bash, stopping at the first failing command,
// in dir with env, and returns its output. A failure fails the test with
// the output, scrubbed of secrets.
func runShell(t *testing.T, dir string, env []string, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -euo pipefail\n"+script)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the commands failed: %v\n--- commands:\n%s--- output:\n%s", err, script, redactSecrets(string(out)))
	}
	return string(out)
}
