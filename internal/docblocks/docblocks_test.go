package docblocks

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// root is the repository, whose pages these tests read.
const root = "../.."

// knownInfo lists the fences a page may use besides "sh REASON".
var knownInfo = map[string]bool{"shell": true, "sh": true, "hcl": true, "yaml": true, "json": true, "text": true, "": true}

func allBlocks(t *testing.T) []Block {
	t.Helper()
	pages, err := Pages(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 8 {
		t.Fatalf("found only the pages %v", pages)
	}
	var all []Block
	for _, page := range pages {
		blocks, err := Read(root, page)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, blocks...)
	}
	return all
}

// TestEveryFenceSaysWhatRunsIt: a command block is run by the walkthrough
// (shell), by a test of its own (sh: make targets), or says why none runs
// it (sh REASON); nothing else may hold commands unnoticed.
func TestEveryFenceSaysWhatRunsIt(t *testing.T) {
	shell := 0
	for _, b := range allBlocks(t) {
		where := b.Page + ":" + strconv.Itoa(b.Line)
		info, reason, _ := strings.Cut(b.Info, " ")
		switch {
		case reason != "":
			if info != "sh" || NotRun[reason] == "" {
				t.Errorf("%s: fence %q: a block no test runs is fenced sh REASON, with a reason of %v", where, b.Info, keys(NotRun))
			}
		case !knownInfo[info]:
			t.Errorf("%s: unknown fence %q", where, b.Info)
		case info == "sh":
			for _, line := range strings.Split(strings.TrimSpace(b.Text), "\n") {
				if !strings.HasPrefix(line, "make ") {
					t.Errorf("%s: a sh block holds make targets only, which tests of their own run; %q is not one (fence it shell, or sh REASON)", where, line)
				}
			}
		case info == "shell":
			shell++
		}
	}
	if shell < 10 {
		t.Fatalf("only %d shell blocks in all the pages", shell)
	}
}

func TestTheReadmeIsAFrontDoor(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(data), "\n"); lines > 300 {
		t.Fatalf("the README has %d lines: keep it at most 300, and move reference to docs/", lines)
	}
}

// markdownLink finds the target of an inline link.
var markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestLinksResolve: every relative link of a page names a file that exists
// and, with a fragment, a heading of that page.
func TestLinksResolve(t *testing.T) {
	pages, err := Pages(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range pages {
		data, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			t.Fatal(err)
		}
		for _, match := range markdownLink.FindAllStringSubmatch(withoutCode(string(data)), -1) {
			target := match[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, fragment, _ := strings.Cut(target, "#")
			linked := page
			if file != "" {
				linked = path.Clean(path.Join(path.Dir(page), file))
			}
			text, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(linked)))
			if err != nil {
				t.Errorf("%s links to %s, which does not exist", page, target)
				continue
			}
			if fragment != "" && !hasAnchor(string(text), fragment) {
				t.Errorf("%s links to %s, but %s has no heading whose anchor is #%s", page, target, linked, fragment)
			}
		}
	}
}

// TestSectionFindsBlocksUnderAHeading reads a known section: the two
// policies under "Who may narrow a credential", and none of the blocks
// that follow the section.
func TestSectionFindsBlocksUnderAHeading(t *testing.T) {
	blocks, err := Section(root, "## Who may narrow a credential", "hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 || !strings.Contains(blocks[0].Text, "allowed_parameters") || !strings.Contains(blocks[1].Text, "denied_parameters") {
		t.Fatalf("found %+v", blocks)
	}
	if _, err := Section(root, "## No such heading", "hcl"); err == nil {
		t.Fatal("a missing heading was found")
	}
}

// TestIndentedBlocksAreRead: a block inside a list item (the teardown) is
// read without its indent.
func TestIndentedBlocksAreRead(t *testing.T) {
	blocks, err := Read(root, "docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if b.Info == "shell" && strings.HasPrefix(b.Text, "vault list beyondidentity/static-roles") {
			return
		}
	}
	t.Fatalf("the teardown block was not read: %+v", blocks)
}

// inlineCode is a code span, whose brackets are not links.
var inlineCode = regexp.MustCompile("`[^`]*`")

// withoutCode drops fenced blocks and code spans.
func withoutCode(text string) string {
	return inlineCode.ReplaceAllString(withoutBlocks(text), "")
}

// withoutBlocks drops fenced blocks, whose lines are neither links nor
// headings.
func withoutBlocks(text string) string {
	var kept []string
	inBlock := false
	for _, line := range strings.Split(text, "\n") {
		if _, ok := Fence(line); ok {
			inBlock = !inBlock
			continue
		}
		if !inBlock {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}

// hasAnchor reports whether a page has a heading whose GitHub anchor is
// fragment: lower case, punctuation but '-' and '_' dropped, spaces as '-'.
func hasAnchor(text, fragment string) bool {
	seen := map[string]int{}
	for _, line := range strings.Split(withoutBlocks(text), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var slug strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				slug.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				slug.WriteRune(r)
			}
		}
		anchor := slug.String()
		if n := seen[anchor]; n > 0 {
			seen[anchor]++
			anchor += "-" + strconv.Itoa(n)
		} else {
			seen[anchor] = 1
		}
		if anchor == fragment {
			return true
		}
	}
	return false
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
