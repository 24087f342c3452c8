package beyondidentity

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// A parameter the path does not take is refused before the request runs,
// on every write and every read with options: Vault itself would only
// warn after the fact, and a typo in a lifetime or a scope (max-ttl,
// scope=) would then store or mint something else than the operator
// meant. The rule is the path's own field schema, for every path alike.

// unknownParameter answers a request that carries a parameter its path
// does not take, naming it and the nearest field the path takes; nil when
// every parameter is the path's.
func (b *backend) unknownParameter(req *logical.Request) *logical.Response {
	switch req.Operation {
	case logical.CreateOperation, logical.UpdateOperation, logical.ReadOperation:
	default:
		return nil
	}
	if len(req.Data) == 0 {
		return nil
	}
	path := b.Route(req.Path)
	if path == nil {
		return nil // Vault answers an unknown path itself
	}
	var unknown []string
	for key := range req.Data {
		if _, ok := path.Fields[key]; !ok {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	taken := parametersOf(path)
	var problems []string
	for _, key := range unknown {
		problem := fmt.Sprintf("'%s' is not a parameter of %s%s", key, mountPath(req), req.Path)
		if nearest := nearestField(key, taken); nearest != "" {
			problem += fmt.Sprintf(": did you mean %s?", nearest)
		}
		problems = append(problems, problem)
	}
	takes := "no parameters"
	if len(taken) > 0 {
		takes = "only " + strings.Join(taken, ", ")
	}
	nothing := "nothing was stored"
	if req.Operation == logical.ReadOperation || strings.HasPrefix(req.Path, credsPrefix) {
		nothing = "nothing was minted"
	}
	return logical.ErrorResponse("%s. It takes %s; %s", strings.Join(problems, "; "), takes, nothing)
}

// parametersOf lists, sorted, the fields a request to path may carry: its
// fields but those its URL holds (a role's name).
func parametersOf(path *framework.Path) []string {
	var names []string
	for name := range path.Fields {
		if !strings.Contains(path.Pattern, "(?P<"+name+">") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// nearestField is the field a mistyped parameter most likely meant: the
// same once case and dashes are set aside, or the closest by edit
// distance within a third of its length (and at most 2); "" when none is
// that close.
func nearestField(key string, fields []string) string {
	normal := strings.ReplaceAll(strings.ToLower(key), "-", "_")
	best, bestDistance := "", min(2, max(1, len(normal)/3))+1
	for _, field := range fields {
		if field == normal {
			return field
		}
		if d := editDistance(normal, field); d < bestDistance {
			best, bestDistance = field, d
		}
	}
	return best
}

// editDistance is the number of single-character edits (insertions,
// deletions, substitutions, swaps of neighbours) that turn a into b: the
// optimal string alignment distance, which counts the typo "tll" for
// "ttl" as one.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
