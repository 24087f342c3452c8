//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// docBlocks returns the blocks fenced with ```fence in the document doc (a
// path from the repository's root), in order: all of them when heading is
// empty, else those of the section under the heading line (such as
// "## Roll back"), up to the next heading of its level or above. It fails
// the test when there is none, so that a page cannot lose the commands its
// test runs.
func docBlocks(t *testing.T, doc, heading, fence string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, doc))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	level := len(heading) - len(strings.TrimLeft(heading, "#"))
	if heading != "" {
		at := -1
		for i, line := range lines {
			if line == heading {
				at = i
				break
			}
		}
		if at < 0 {
			t.Fatalf("%s has no heading %q", doc, heading)
		}
		lines = lines[at+1:]
	}
	var blocks, current []string
	inBlock := false
	for _, line := range lines {
		switch {
		case !inBlock && heading != "" && endsSection(line, level):
			return checkedBlocks(t, doc, heading, fence, blocks)
		case !inBlock && line == "```"+fence:
			inBlock, current = true, nil
		case inBlock && line == "```":
			inBlock = false
			blocks = append(blocks, strings.Join(current, "\n")+"\n")
		case inBlock:
			current = append(current, line)
		}
	}
	return checkedBlocks(t, doc, heading, fence, blocks)
}

// endsSection reports whether line is a heading of level or above.
func endsSection(line string, level int) bool {
	hashes := len(line) - len(strings.TrimLeft(line, "#"))
	return hashes > 0 && hashes <= level && strings.HasPrefix(line[hashes:], " ")
}

func checkedBlocks(t *testing.T, doc, heading, fence string, blocks []string) []string {
	t.Helper()
	if len(blocks) == 0 {
		t.Fatalf("%s has no ```%s block under %q", doc, fence, heading)
	}
	return blocks
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
