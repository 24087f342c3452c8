// Package docblocks reads the fenced code blocks of the README and the
// pages under docs/, so that tests run the commands the pages print,
// wherever a page keeps them. A block's fence says what it is for (see
// docs/README.md, "How the examples are tested"):
//
//   - shell: commands that run against a Vault with the plugin and the fake
//     Beyond Identity; the end-to-end walkthrough runs every one, page by
//     page, as printed.
//   - sh: make targets, which tests of their own (or CI) run.
//   - sh REASON: commands no test runs, for the reason named: tenant (a real
//     Beyond Identity tenant), docker (Docker and gVisor), release (the
//     release build, which make release-check runs twice), fuzz (minutes of
//     fuzzing), example (values to fill in).
//   - hcl, yaml, json, text and no info: configuration, output, layout.
package docblocks

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Block is one fenced code block of a page.
type Block struct {
	// Page is the page's path from the repository's root, with slashes.
	Page string
	// Heading is the nearest heading above the block, as written ("## Install").
	Heading string
	// Info is the fence's info string: "shell", "sh tenant", "hcl", or empty.
	Info string
	// Text is the block's content, each line ending in a newline.
	Text string
	// Line is the line of the opening fence, from 1.
	Line int
}

// NotRun lists the reasons a sh block may give for no test running it.
var NotRun = map[string]string{
	"tenant":  "needs a real Beyond Identity tenant",
	"docker":  "needs Docker with gVisor",
	"release": "the release build, which make release-check (part of make test) runs twice",
	"fuzz":    "fuzzes for minutes",
	"example": "holds values to fill in",
}

// Pages lists the pages under root: README.md, then docs/*.md by name.
func Pages(root string) ([]string, error) {
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	pages := []string{"README.md"}
	for _, doc := range docs {
		pages = append(pages, "docs/"+filepath.Base(doc))
	}
	sort.Strings(pages[1:])
	return pages, nil
}

// Read returns the fenced blocks of page (a path from root), in order.
func Read(root, page string) ([]Block, error) {
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(page)))
	if err != nil {
		return nil, err
	}
	var blocks []Block
	var current *Block
	var text strings.Builder
	heading, indent := "", ""
	scanner := bufio.NewScanner(strings.NewReader(string(data)))
	for line := 1; scanner.Scan(); line++ {
		row := scanner.Text()
		trimmed := strings.TrimLeft(row, " ")
		info, isFence := Fence(row)
		switch {
		case current == nil && isFence:
			// A block in a list item is indented; its lines share the indent.
			indent = row[:len(row)-len(trimmed)]
			current = &Block{Page: page, Heading: heading, Info: info, Line: line}
			text.Reset()
		case current != nil && isFence && info == "":
			current.Text = text.String()
			blocks = append(blocks, *current)
			current = nil
		case current != nil:
			text.WriteString(strings.TrimPrefix(row, indent))
			text.WriteString("\n")
		case strings.HasPrefix(row, "#"):
			heading = row
		}
	}
	if current != nil {
		return nil, fmt.Errorf("%s:%d: the block never ends", page, current.Line)
	}
	return blocks, scanner.Err()
}

// Fence reports whether line opens or closes a fenced block, and its info
// string. A run of backticks followed by more backticks on the line is
// inline code, not a fence (CommonMark's rule).
func Fence(line string) (string, bool) {
	trimmed := strings.TrimLeft(line, " ")
	if len(line)-len(trimmed) > 3 || !strings.HasPrefix(trimmed, "```") {
		return "", false
	}
	info := strings.TrimLeft(trimmed, "`")
	if strings.Contains(info, "`") {
		return "", false
	}
	return strings.TrimSpace(info), true
}

// Section returns the blocks fenced with info under heading, up to the next
// heading of the same or a higher level, from whichever page holds the
// heading. The heading must be on exactly one page.
func Section(root, heading, info string) ([]Block, error) {
	pages, err := Pages(root)
	if err != nil {
		return nil, err
	}
	level := len(heading) - len(strings.TrimLeft(heading, "#"))
	var found []Block
	holders := 0
	for _, page := range pages {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(page)))
		if err != nil {
			return nil, err
		}
		if !strings.Contains("\n"+string(data), "\n"+heading+"\n") {
			continue
		}
		holders++
		blocks, err := Read(root, page)
		if err != nil {
			return nil, err
		}
		inside := sectionsUnder(string(data), heading, level)
		for _, b := range blocks {
			if b.Info == info && inside(b.Line) {
				found = append(found, b)
			}
		}
	}
	switch {
	case holders == 0:
		return nil, fmt.Errorf("no page has the heading %q", heading)
	case holders > 1:
		return nil, fmt.Errorf("%d pages have the heading %q", holders, heading)
	case len(found) == 0:
		return nil, fmt.Errorf("no %s block under %q", info, heading)
	}
	return found, nil
}

// sectionsUnder reports whether a line lies in the section that heading
// opens, which ends at the next heading of its level or higher.
func sectionsUnder(text, heading string, level int) func(int) bool {
	start, end := 0, 0
	inBlock := false
	for i, row := range strings.Split(text, "\n") {
		line := i + 1
		if _, ok := Fence(row); ok {
			inBlock = !inBlock
			continue
		}
		if inBlock || !strings.HasPrefix(row, "#") {
			continue
		}
		rowLevel := len(row) - len(strings.TrimLeft(row, "#"))
		switch {
		case start == 0 && row == heading:
			start = line
		case start != 0 && end == 0 && rowLevel <= level:
			end = line
		}
	}
	return func(line int) bool { return line > start && (end == 0 || line < end) }
}
