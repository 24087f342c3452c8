// Package scope states once what a Beyond Identity scope looks like and its
// normal form (sorted, distinct), for the plugin, its client and the fake.
package scope

import (
	"regexp"
	"slices"
	"strings"
)

// Syntax describes the documented scope format, for messages.
const Syntax = "colon-separated segments of a-z, 0-9 and '-', such as identities:read"

// pattern is the documented scope syntax: at least two colon-separated
// segments of lower-case letters, digits and '-'.
var pattern = regexp.MustCompile(`^[a-z0-9-]+(:[a-z0-9-]+)+$`)

// Valid reports whether s is a well-formed scope.
func Valid(s string) bool { return pattern.MatchString(s) }

// Normalize returns scopes sorted and distinct, without empty strings; never
// nil.
func Normalize(scopes []string) []string {
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if s != "" {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Parse reads OAuth's space-separated scope parameter into the normal form.
func Parse(s string) []string { return Normalize(strings.Fields(s)) }

// Format writes scopes as OAuth's space-separated scope parameter.
func Format(scopes []string) string { return strings.Join(scopes, " ") }

// Missing returns the scopes of want that have does not hold.
func Missing(want, have []string) []string {
	var out []string
	for _, s := range want {
		if !slices.Contains(have, s) {
			out = append(out, s)
		}
	}
	return out
}
