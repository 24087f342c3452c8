package beyondidentity

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocsNameTestsThatExist: a page that points at a test names it by its
// function, which outlives a move between files, and that function exists;
// a test file a page names exists too.
func TestDocsNameTestsThatExist(t *testing.T) {
	t.Parallel()
	var sources strings.Builder
	for _, pattern := range []string{"*_test.go", "*/*_test.go", "*/*/*_test.go"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			sources.Write(data)
		}
	}
	pages, err := filepath.Glob(filepath.Join("docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	testName := regexp.MustCompile("`(Test[A-Z][A-Za-z0-9_]*)`")
	testFile := regexp.MustCompile("`((?:[a-z0-9_]+/)*[a-z0-9_]+_test\\.go)`")
	named := 0
	for _, page := range append(pages, "README.md") {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, match := range testName.FindAllStringSubmatch(string(data), -1) {
			named++
			if !strings.Contains(sources.String(), "func "+match[1]+"(") {
				t.Errorf("%s names %s, which no test file defines", page, match[1])
			}
		}
		for _, match := range testFile.FindAllStringSubmatch(string(data), -1) {
			if _, err := os.Stat(match[1]); err != nil {
				t.Errorf("%s names the test file %s, which does not exist: name the test instead", page, match[1])
			}
		}
	}
	if named < 3 {
		t.Fatalf("the docs name %d tests; the pattern no longer finds them", named)
	}
}
