package beyondidentity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// Every request passes here before its path's handler. What an operator
// sends wrongly is refused here, with a 400 that names the field and the
// rule, before the framework converts the fields: its conversion error
// quotes the value, which for a secret is the secret.
//
// A parameter the path does not take is refused too, on every write,
// delete and list and every read with options: Vault itself would only warn
// after the fact, and a typo in a lifetime or a scope (max-ttl, scope=)
// would then store or mint something else than the operator meant, and a
// delete given an option it does not take (confirm=no) would delete all the
// same. The rule is the path's own field schema, for every path alike.

// handleRequest, under HandleRequest (refusal.go), refuses a secret of the
// wrong type, a name the role paths refuse and a parameter the path does
// not take, and lets custom_claims arrive as a JSON string as well as an
// object (decodeClaimsField), then runs the path. Its refusals are 400s
// that HandleRequest answers, as it answers the paths' own.
func (b *backend) handleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	for _, check := range []func(*logical.Request) error{b.secretOfWrongType, b.invalidName, b.unknownParameter} {
		if err := check(req); err != nil {
			return nil, err
		}
	}
	if err := decodeClaimsField(req); err != nil {
		return nil, badRequest("%s", err)
	}
	return b.Backend.HandleRequest(ctx, req)
}

// HandleExistenceCheck implements logical.Backend: it answers whether the
// object the path names exists, and nothing else. Vault runs it before the
// request and logs any error it returns as an ERROR of its own, so it never
// looks at what the request carries: which object a path names is in the
// path, and handleRequest refuses bad input.
func (b *backend) HandleExistenceCheck(ctx context.Context, req *logical.Request) (bool, bool, error) {
	byPath := *req
	byPath.Data = nil
	return b.Backend.HandleExistenceCheck(ctx, &byPath)
}

// secretOfWrongType refuses a request whose secret field (one the schema
// marks sensitive, such as client_secret) holds anything but a string,
// naming the field and what it holds, never its value.
func (b *backend) secretOfWrongType(req *logical.Request) error {
	if len(req.Data) == 0 {
		return nil
	}
	path := b.Route(req.Path)
	if path == nil {
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(path.Fields)) {
		schema := path.Fields[name]
		raw, given := req.Data[name]
		if !given || schema.DisplayAttrs == nil || !schema.DisplayAttrs.Sensitive {
			continue
		}
		if _, isString := raw.(string); isString {
			continue
		}
		return badRequest("'%s' must be a string, the secret itself, but this request gives %s%s",
			name, kindOf(raw, name), nothingDone(req))
	}
	return nil
}

// kindOf names what kind of JSON value a field holds, and for a list how
// one comes about.
func kindOf(value any, field string) string {
	switch value.(type) {
	case []any, []string:
		return fmt.Sprintf("a list: give it once (on the vault command line, %s=... written twice makes a list)", field)
	case map[string]any:
		return "an object"
	case json.Number, float64, float32, int, int64, uint64:
		return "a number"
	case bool:
		return "a bool"
	case nil:
		return "null"
	}
	return "a value of another type"
}

// invalidName refuses a path of a role family whose name the real paths
// refuse (roles/scim., static-creds/a/b): Vault would answer "unsupported
// path", which says nothing of the name. It refuses here, not as a path of
// its own, so that path-help and the OpenAPI document list only the paths
// an operator may call.
func (b *backend) invalidName(req *logical.Request) error {
	switch req.Operation {
	case logical.ReadOperation, logical.CreateOperation, logical.UpdateOperation, logical.DeleteOperation:
	default:
		return nil
	}
	match := invalidNamePath.FindStringSubmatch(req.Path)
	if match == nil || b.Route(req.Path) != nil {
		return nil
	}
	family, name := match[1], match[2]
	return badRequest("'name' %q is not a valid name at %s%s/: %s",
		biclient.CleanText(name, 140), mountPath(req), family, roleNameRule)
}

// invalidNamePath is every path of a role family, whatever its name.
var invalidNamePath = regexp.MustCompile(`^(roles|static-roles|creds|static-creds|rotate-role)/(.+)$`)

// roleNameRule is what a role's name may be: framework.GenericNameRegex.
const roleNameRule = "a role name may use only letters, digits, '_', '-' and '.', and must start and end with a letter, " +
	"a digit or '_' (such as scim-sync or ci.export), at most 128 characters"

// unknownParameter refuses a request that carries a parameter its path
// does not take, naming it and the nearest field the path takes; nil when
// every parameter is the path's.
func (b *backend) unknownParameter(req *logical.Request) error {
	switch req.Operation {
	case logical.CreateOperation, logical.UpdateOperation, logical.ReadOperation, logical.DeleteOperation, logical.ListOperation:
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
	return badRequest("%s. It takes %s%s", strings.Join(problems, "; "), takes, nothingDone(req))
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

// badDuration refuses a duration field whose value is no duration (such as
// ttl="1 day") with what Vault's durations are, before the framework's
// parse error (which names the field but not what would do).
func badDuration(req *logical.Request, path *framework.Path) error {
	fields := &framework.FieldData{Raw: req.Data, Schema: path.Fields}
	for key, schema := range path.Fields {
		if schema.Type != framework.TypeDurationSecond {
			continue
		}
		// A negative value parses: the framework's own message says what is wrong with it.
		if _, _, err := fields.GetOkErr(key); err != nil && !strings.Contains(err.Error(), "negative") {
			return badRequest("'%s' must be a duration: whole seconds (3600) or a number with a unit, such as "+
				"90s, 45m or 24h (1 day is 24h), got %q; nothing was stored or minted",
				key, biclient.CleanText(fmt.Sprint(req.Data[key]), 32))
		}
	}
	return nil
}

// decodeClaimsField replaces custom_claims given as a JSON string with the
// object it holds: the vault CLI sends every key=value pair as a string,
// and a framework.TypeMap field would refuse it. An empty string clears
// them.
func decodeClaimsField(req *logical.Request) error {
	raw, isString := req.Data["custom_claims"].(string)
	if !isString || (!strings.HasPrefix(req.Path, rolePrefix) && !strings.HasPrefix(req.Path, staticRolePrefix)) {
		return nil
	}
	claims := map[string]any{}
	if strings.TrimSpace(raw) != "" {
		// Numbers stay as written, as a JSON request body's do.
		decoded, err := decodeJSONObject("custom_claims", raw, errors.New(`'custom_claims' must be a JSON object, such as {"team":"sre"}`))
		if err != nil {
			return err
		}
		claims = decoded
	}
	req.Data["custom_claims"] = claims
	return nil
}
