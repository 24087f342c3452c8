package scope

import (
	"slices"
	"testing"
)

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{
		"identities:read": true, "scim:users:read": true, "a-1:b-2": true,
		"identities": false, "Identities:read": false, "a::b": false, ":a": false, "a:": false, "a :b": false, "": false,
	} {
		if Valid(s) != want {
			t.Errorf("Valid(%q) = %v", s, !want)
		}
	}
}

func TestNormalFormIsSortedAndDistinct(t *testing.T) {
	got := Normalize([]string{"b:x", "", "a:x", "b:x"})
	if !slices.Equal(got, []string{"a:x", "b:x"}) {
		t.Fatalf("Normalize = %q", got)
	}
	if got := Parse("  b:x a:x  b:x "); !slices.Equal(got, []string{"a:x", "b:x"}) {
		t.Fatalf("Parse = %q", got)
	}
	if got := Normalize(nil); got == nil || len(got) != 0 {
		t.Fatalf("Normalize(nil) = %#v, want an empty list", got)
	}
	if Format([]string{"a:x", "b:x"}) != "a:x b:x" {
		t.Fatal("Format")
	}
}

func TestMissing(t *testing.T) {
	if got := Missing([]string{"a:x", "b:x", "c:x"}, []string{"b:x"}); !slices.Equal(got, []string{"a:x", "c:x"}) {
		t.Fatalf("Missing = %q", got)
	}
	if Missing([]string{"a:x"}, []string{"a:x", "b:x"}) != nil {
		t.Fatal("nothing is missing")
	}
}
