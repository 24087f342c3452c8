package beyondidentity

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// rolePrefix is the storage prefix (and path) of roles.
const rolePrefix = "roles/"

// Bounds on a role's input (design.md, "Bounds on input").
const (
	defaultRoleTTL    = biclient.MaxTokenLifetime
	maxCustomClaims   = 8 << 10
	maxScopes         = 64
	maxScopeLen       = 128
	maxDescriptionLen = 1024
	maxRoleNameLen    = 128
)

// scopePattern is the documented scope syntax: colon-separated segments of
// lower-case letters, digits and '-', at least two of them.
var scopePattern = regexp.MustCompile(`^[a-z0-9-]+(:[a-z0-9-]+)+$`)

// role maps a name to the scopes and lifetimes of the tokens it issues.
// TTL and MaxTTL hold what the operator set, zero meaning the default, so
// that a max_ttl that only follows ttl keeps following it when ttl changes.
type role struct {
	Scopes       []string       `json:"scopes"`
	TTL          time.Duration  `json:"ttl"`
	MaxTTL       time.Duration  `json:"max_ttl"`
	CustomClaims map[string]any `json:"custom_claims,omitempty"`
	Description  string         `json:"description"`
}

// ttl is the lease duration: as set, else 90 days, but never above an
// explicitly set max_ttl.
func (r *role) ttl() time.Duration {
	switch {
	case r.TTL > 0:
		return r.TTL
	case r.MaxTTL > 0:
		return min(defaultRoleTTL, r.MaxTTL)
	}
	return defaultRoleTTL
}

// maxTTL is the token lifetime and lease hard end: as set, else ttl.
func (r *role) maxTTL() time.Duration {
	if r.MaxTTL > 0 {
		return r.MaxTTL
	}
	return r.ttl()
}

func (b *backend) pathRoles() []*framework.Path {
	return []*framework.Path{
		{
			Pattern: rolePrefix + "?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "beyond-identity",
				OperationSuffix: "roles",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{
					Callback: b.pathRoleList,
					Summary:  "List the roles.",
				},
			},
			HelpSynopsis:    roleListHelpSynopsis,
			HelpDescription: roleListHelpDescription,
		},
		{
			Pattern: rolePrefix + framework.GenericNameRegex("name"),
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "beyond-identity",
				OperationSuffix: "role",
			},
			Fields: map[string]*framework.FieldSchema{
				"name": {
					Type:        framework.TypeString,
					Description: "Name of the role, at most 128 characters. Case-sensitive.",
					Required:    true,
				},
				"scopes": {
					Type: framework.TypeCommaStringSlice,
					Description: "Management API scopes the role's tokens carry, as a list or comma-separated, e.g. " +
						"identities:read,groups:read. Required. Each is colon-separated segments of a-z, 0-9 and '-', " +
						"at most 128 characters; at most 64 scopes. Stored de-duplicated and sorted.",
				},
				"ttl": {
					Type: framework.TypeDurationSecond,
					Description: "Lease duration of each credential. Default (or 0): 7776000s (2160h, 90 days), " +
						"or max_ttl when that is set and shorter. At most max_ttl.",
				},
				"max_ttl": {
					Type: framework.TypeDurationSecond,
					Description: "The token's lifetime at Beyond Identity and the lease's hard end; renewals never pass it. " +
						"Default (or 0): ttl, following it when it changes. At most 7776000s (90 days).",
				},
				"custom_claims": {
					Type:        framework.TypeMap,
					Description: "JSON object (or a string holding one) sent as Beyond Identity custom_claims; it appears in the token as bi_custom. At most 8 KiB of JSON. Default: none.",
				},
				"description": {
					Type:        framework.TypeString,
					Description: "Free text describing the role, at most 1024 characters. Default: empty.",
				},
			},
			ExistenceCheck: b.roleExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback: b.pathRoleRead,
					Summary:  "Read a role.",
					Responses: map[int][]framework.Response{
						http.StatusOK: {{Description: "OK", Fields: roleResponseFields}},
					},
				},
				logical.CreateOperation: forwarded(b.pathRoleWrite, "Create a role."),
				logical.UpdateOperation: forwarded(b.pathRoleWrite, "Update a role."),
				logical.DeleteOperation: forwarded(b.pathRoleDelete, "Delete a role; its credentials stay valid, revocable and renewable to their end."),
			},
			HelpSynopsis:    roleHelpSynopsis,
			HelpDescription: roleHelpDescription,
		},
	}
}

var roleResponseFields = map[string]*framework.FieldSchema{
	"scopes":        {Type: framework.TypeCommaStringSlice, Description: "Scopes of the role's tokens, sorted."},
	"ttl":           {Type: framework.TypeDurationSecond, Description: "Lease duration, in seconds."},
	"max_ttl":       {Type: framework.TypeDurationSecond, Description: "Token lifetime and lease hard end, in seconds."},
	"custom_claims": {Type: framework.TypeMap, Description: "Custom claims sent with each mint."},
	"description":   {Type: framework.TypeString, Description: "Free text."},
}

func (b *backend) roleExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	r, err := readRole(ctx, req.Storage, d.Get("name").(string))
	return r != nil, err
}

func (b *backend) pathRoleList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, rolePrefix)
	if err != nil {
		return nil, fmt.Errorf("listing roles: %w", err)
	}
	return logical.ListResponse(names), nil
}

func (b *backend) pathRoleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, err := readRole(ctx, req.Storage, d.Get("name").(string))
	if err != nil || r == nil {
		return nil, err
	}
	data := map[string]any{
		"scopes":      r.Scopes,
		"ttl":         int64(r.ttl().Seconds()),
		"max_ttl":     int64(r.maxTTL().Seconds()),
		"description": r.Description,
	}
	if len(r.CustomClaims) > 0 {
		data["custom_claims"] = r.CustomClaims
	}
	return &logical.Response{Data: data}, nil
}

func (b *backend) pathRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if len(name) > maxRoleNameLen {
		return logical.ErrorResponse("'name' must be at most %d characters, got %d", maxRoleNameLen, len(name)), nil
	}
	existing, err := readRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	r, errResp := roleFromRequest(existing, d)
	if errResp != nil {
		return errResp, nil
	}
	if err := writeRole(ctx, req.Storage, name, r); err != nil {
		return nil, err
	}
	b.Logger().Info("role saved", "role", name, "scopes", strings.Join(r.Scopes, " "), "ttl", r.ttl(), "max_ttl", r.maxTTL())
	warnings := mountCeilingWarnings(r, b.System().MaxLeaseTTL(), mountPath(req))
	if len(warnings) == 0 {
		return nil, nil
	}
	return &logical.Response{Warnings: warnings}, nil
}

// roleFromRequest merges the request into a copy of the existing role (or
// the defaults) and validates it.
func roleFromRequest(existing *role, d *framework.FieldData) (*role, *logical.Response) {
	r := &role{}
	if existing != nil {
		copied := *existing
		r = &copied
	}
	if raw, ok := d.GetOk("scopes"); ok {
		scopes, problem := normalizeScopes(raw.([]string))
		if problem != "" {
			return nil, logical.ErrorResponse("'scopes' %s", problem)
		}
		r.Scopes = scopes
	}
	if len(r.Scopes) == 0 {
		return nil, logical.ErrorResponse("'scopes' is required: list at least one scope, e.g. identities:read")
	}

	for _, f := range []struct {
		field  string
		target *time.Duration
	}{{"ttl", &r.TTL}, {"max_ttl", &r.MaxTTL}} {
		field, target := f.field, f.target
		raw, ok := d.GetOk(field)
		if !ok {
			continue
		}
		value := time.Duration(raw.(int)) * time.Second
		if value > biclient.MaxTokenLifetime {
			return nil, logical.ErrorResponse("'%s' must be at most 7776000s (90 days), the longest life of a Beyond Identity token", field)
		}
		*target = value
	}
	if r.ttl() > r.maxTTL() {
		return nil, logical.ErrorResponse("'ttl' (%s) must not exceed 'max_ttl' (%s)", seconds(r.ttl()), seconds(r.maxTTL()))
	}

	if raw, ok := d.GetOk("custom_claims"); ok {
		claims := raw.(map[string]any)
		if problem := validateCustomClaims(claims); problem != "" {
			return nil, logical.ErrorResponse("'custom_claims' %s", problem)
		}
		r.CustomClaims = claims
		if len(claims) == 0 {
			r.CustomClaims = nil
		}
	}
	if raw, ok := d.GetOk("description"); ok {
		if len(raw.(string)) > maxDescriptionLen {
			return nil, logical.ErrorResponse("'description' must be at most %d characters, got %d", maxDescriptionLen, len(raw.(string)))
		}
		r.Description = raw.(string)
	}
	return r, nil
}

// normalizeScopes validates scope syntax and returns the scopes sorted and
// de-duplicated, or a problem naming the first bad scope.
func normalizeScopes(scopes []string) ([]string, string) {
	seen := make(map[string]bool, len(scopes))
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if len(s) > maxScopeLen {
			return nil, fmt.Sprintf("holds a scope of %d characters: each must be at most %d", len(s), maxScopeLen)
		}
		if !scopePattern.MatchString(s) {
			return nil, fmt.Sprintf("holds %q, which is not a scope: each must be colon-separated segments of a-z, 0-9 and '-', such as identities:read", truncate(s, 64))
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if len(out) > maxScopes {
		return nil, fmt.Sprintf("must hold at most %d scopes", maxScopes)
	}
	sort.Strings(out)
	return out, ""
}

func validateCustomClaims(claims map[string]any) string {
	for key := range claims {
		if strings.TrimSpace(key) == "" {
			return "must not have an empty key"
		}
	}
	encoded, err := json.Marshal(claims)
	if err != nil {
		return "must be a JSON object"
	}
	if len(encoded) > maxCustomClaims {
		return fmt.Sprintf("must be at most %d bytes of JSON", maxCustomClaims)
	}
	return ""
}

// decodeClaimsString reads custom_claims given as a JSON string; an empty
// string clears them.
func decodeClaimsString(raw string) (map[string]any, *logical.Response) {
	if strings.TrimSpace(raw) == "" {
		return map[string]any{}, nil
	}
	var claims map[string]any
	// UseNumber keeps large integers exact, as a JSON request body would.
	decoder := json.NewDecoder(strings.NewReader(raw))
	decoder.UseNumber()
	if err := decoder.Decode(&claims); err != nil || claims == nil || decoder.More() {
		return nil, logical.ErrorResponse(`'custom_claims' must be a JSON object, such as {"team":"sre"}`)
	}
	return claims, nil
}

// mountCeilingWarnings explains, with the command that lifts it, when the
// mount's max lease TTL will cap the role's credentials.
func mountCeilingWarnings(r *role, mountMax time.Duration, mount string) []string {
	ttl, maxTTL := r.ttl(), r.maxTTL()
	if mountMax <= 0 || maxTTL <= mountMax {
		return nil
	}
	field, value := "max_ttl", maxTTL
	if ttl > mountMax {
		field, value = "ttl", ttl
	}
	return []string{fmt.Sprintf(
		"%s of %s exceeds this mount's max lease TTL of %s: credentials of this role will be capped to %s "+
			"(token lifetime and lease). To lift the ceiling, run: vault secrets tune -max-lease-ttl=%s %s",
		field, humanDuration(value), humanDuration(mountMax), humanDuration(mountMax), humanDuration(maxTTL), mount)}
}

func (b *backend) pathRoleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := req.Storage.Delete(ctx, rolePrefix+name); err != nil {
		return nil, fmt.Errorf("deleting role %q: %w", name, err)
	}
	b.Logger().Info("role deleted", "role", name)
	return nil, nil
}

func readRole(ctx context.Context, s logical.Storage, name string) (*role, error) {
	entry, err := s.Get(ctx, rolePrefix+name)
	if err != nil {
		return nil, fmt.Errorf("reading role %q: %w", name, err)
	}
	if entry == nil {
		return nil, nil
	}
	r := &role{}
	if err := entry.DecodeJSON(r); err != nil {
		return nil, fmt.Errorf("decoding role %q: %w", name, err)
	}
	return r, nil
}

func writeRole(ctx context.Context, s logical.Storage, name string, r *role) error {
	entry, err := logical.StorageEntryJSON(rolePrefix+name, r)
	if err != nil {
		return fmt.Errorf("encoding role %q: %w", name, err)
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("writing role %q: %w", name, err)
	}
	return nil
}

const roleListHelpSynopsis = "List the roles."

const roleListHelpDescription = `
Lists the names of the roles defined on this mount.
`

const roleHelpSynopsis = "Define a role: the scopes and lifetimes of the tokens it issues."

const roleHelpDescription = `
A role maps a name to the Beyond Identity Management API scopes its tokens
carry (scopes), the lease duration of each credential (ttl, default 2160h)
and the token's lifetime at Beyond Identity, which is also the lease's hard
end (max_ttl, default ttl). Optional custom_claims are sent with each mint
and appear in the token as bi_custom.

Reading a role returns ttl and max_ttl in seconds. When ttl or max_ttl exceeds
the mount's max lease TTL (768h unless tuned), the write succeeds with a
warning giving the "vault secrets tune" command that lifts the ceiling.

Deleting a role does not revoke its credentials: they stay revocable and
renewable to their end.

custom_claims is a JSON object, given as an object in a JSON request body
or as a JSON string from the CLI:
  vault write beyondidentity/roles/NAME scopes=identities:read custom_claims='{"team":"sre"}' 
`
