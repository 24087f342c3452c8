package beyondidentity

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// A parameter the path does not take is refused before the request runs,
// on every write, delete and list and every read with options: Vault
// itself would only warn after the fact, and a typo in a lifetime or a
// scope (max-ttl, scope=) would then store or mint something else than the
// operator meant, and a delete given an option it does not take (confirm=no)
// would delete all the same. The rule is the path's own field schema, for
// every path alike.

// unknownParameter answers a request that carries a parameter its path
// does not take, naming it and the nearest field the path takes; nil when
// every parameter is the path's.
func (b *backend) unknownParameter(req *logical.Request) *logical.Response {
	switch req.Operation {
	case logical.CreateOperation, logical.UpdateOperation, logical.ReadOperation, logical.DeleteOperation, logical.ListOperation:
	default:
		return nil
	}
	if len(req.Data) == 0 {
		return nil
	}
	path := b.Route(req.Path)
	if path == nil || strings.Contains(path.Pattern, invalidNamePattern) {
		return nil // Vault answers an unknown path itself; a bad name has its own answer
	}
	var unknown []string
	for key := range req.Data {
		if _, ok := path.Fields[key]; !ok {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) == 0 {
		return badDuration(req, path)
	}
	slices.Sort(unknown)
	taken := parametersOf(path)
	var problems []string
	for _, key := range unknown {
		problem := fmt.Sprintf("'%s' is not a parameter of %s%s", key, mountPath(req), req.Path)
		if nearest := nearestField(key, taken); nearest != "" {
			problem += fmt.Sprintf(" (did you mean %s?)", nearest)
		}
		problems = append(problems, problem)
	}
	takes := "no parameters"
	if len(taken) > 0 {
		takes = "only " + strings.Join(taken, ", ")
	}
	return logical.ErrorResponse("%s. It takes %s%s", strings.Join(problems, "; "), takes, nothingDone(req))
}

// nothingDone says, for a refused request, what it did not do.
func nothingDone(req *logical.Request) string {
	switch {
	case strings.HasPrefix(req.Path, credsPrefix), strings.HasPrefix(req.Path, rotateRolePrefix):
		return "; nothing was minted"
	case req.Operation == logical.CreateOperation || req.Operation == logical.UpdateOperation:
		return "; nothing was stored"
	case req.Operation == logical.DeleteOperation:
		return "; nothing was deleted"
	}
	return ""
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

// badDuration answers a duration field whose value is no duration (such as
// ttl="1 day") with what Vault's durations are, before the framework's
// parse error (which names the field but not what would do).
func badDuration(req *logical.Request, path *framework.Path) *logical.Response {
	fields := &framework.FieldData{Raw: req.Data, Schema: path.Fields}
	for key, schema := range path.Fields {
		if schema.Type != framework.TypeDurationSecond {
			continue
		}
		// A negative value parses: the framework's own message says what is wrong with it.
		if _, _, err := fields.GetOkErr(key); err != nil && !strings.Contains(err.Error(), "negative") {
			return logical.ErrorResponse("'%s' must be a duration: whole seconds (3600) or a number with a unit, such as "+
				"90s, 45m or 24h (1 day is 24h), got %q; nothing was stored or minted",
				key, biclient.CleanText(fmt.Sprint(req.Data[key]), 32))
		}
	}
	return nil
}

// pathInvalidName answers a path of a role family whose name the real
// paths refuse (roles/scim., static-creds/a/b): Vault would answer
// "unsupported path", which says nothing of the name. It comes after every
// other path, which match first.
func (b *backend) pathInvalidName() *framework.Path {
	return &framework.Path{
		Pattern: invalidNamePattern,
		Fields: map[string]*framework.FieldSchema{
			"family": {Type: framework.TypeString, Description: "The kind of path."},
			"name":   {Type: framework.TypeString, Description: "The name that is not a valid role name."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   &framework.PathOperation{Callback: b.invalidName, Summary: "Explains which role names are valid."},
			logical.UpdateOperation: &framework.PathOperation{Callback: b.invalidName, Summary: "Explains which role names are valid."},
			logical.DeleteOperation: &framework.PathOperation{Callback: b.invalidName, Summary: "Explains which role names are valid."},
		},
		HelpSynopsis:    "Role names: which characters they may use.",
		HelpDescription: roleNameRule,
	}
}

// invalidNamePattern is every path of a role family, whatever its name.
const invalidNamePattern = "(?P<family>roles|static-roles|creds|static-creds|rotate-role)/(?P<name>.+)"

// roleNameRule is what a role's name may be: framework.GenericNameRegex.
const roleNameRule = "a role name may use only letters, digits, '_', '-' and '.', and must start and end with a letter, " +
	"a digit or '_' (such as scim-sync or ci.export), at most 128 characters"

func (b *backend) invalidName(_ context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return logical.ErrorResponse("'name' %q is not a valid name at %s%s/: %s",
		biclient.CleanText(d.Get("name").(string), 140), mountPath(req), d.Get("family").(string), roleNameRule), nil
}
