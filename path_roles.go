package beyondidentity

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

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
						"Default (or 0): ttl, following it when it changes; it reads 0 while it follows. At most 7776000s (90 days).",
				},
				"custom_claims": {
					Type: framework.TypeMap,
					Description: "JSON object (or a string holding one) sent as Beyond Identity custom_claims; it appears in the token as bi_custom. " +
						"At most 8 KiB of JSON, nested at most 32 levels. " + claimsNumbersHelp + " Default: none.",
				},
				"claims_template": {
					Type: framework.TypeString,
					Description: "A JSON object template, in the syntax of Vault's identity token templates, rendered " +
						"for each credential with the identity of the Vault token that reads it and merged over custom_claims, " +
						"so that the token says in bi_custom who in Vault asked for it, e.g. " +
						`{"vault_entity": {{identity.entity.id}}, "vault_user": {{identity.entity.name}}, ` +
						`"team": {{identity.entity.metadata.team}}, "groups": {{identity.entity.groups.names}}}. ` +
						"A read by a token with no entity (a root token), or whose entity lacks a value the template names, " +
						"is refused: the role never mints an anonymous token. At most 8 KiB, rendered too; nested at most 32 levels " +
						"(a placeholder counts as one), and nothing may follow the object. " + claimsNumbersHelp + " Default: none.",
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
	"scopes":          {Type: framework.TypeCommaStringSlice, Description: "Scopes of the role's tokens, sorted."},
	"ttl":             {Type: framework.TypeDurationSecond, Description: "Lease duration, in seconds."},
	"max_ttl":         {Type: framework.TypeDurationSecond, Description: "Token lifetime and lease hard end, in seconds, as written: 0 while it follows ttl."},
	"custom_claims":   {Type: framework.TypeMap, Description: "Custom claims sent with each mint."},
	"claims_template": {Type: framework.TypeString, Description: "Template of the claims that attribute each token to the entity that read it."},
	"description":     {Type: framework.TypeString, Description: "Free text."},
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
	return &logical.Response{Data: r.view()}, nil
}

// view is what reading a role shows, and what a write answers with.
// max_ttl shows what was written, 0 while it follows ttl, so that a
// configuration tool that writes 0 reads 0 back and sees no change.
func (r *role) view() map[string]any {
	data := map[string]any{
		"scopes":      r.Scopes,
		"ttl":         int64(r.ttl().Seconds()),
		"max_ttl":     int64(r.MaxTTL.Seconds()),
		"description": r.Description,
	}
	if len(r.CustomClaims) > 0 {
		data["custom_claims"] = r.CustomClaims
	}
	if r.ClaimsTemplate != "" {
		data["claims_template"] = r.ClaimsTemplate
	}
	return data
}

func (b *backend) pathRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if len(name) > maxRoleNameLen {
		return logical.ErrorResponse("'name' must be at most %d characters, got %d", maxRoleNameLen, len(name)), nil
	}
	// The static role's lock keeps a static role of this name from being
	// written meanwhile.
	defer b.lockStaticRole(name)()
	if err := nameTakenByStaticRole(ctx, req, name); err != nil {
		return nil, err
	}
	existing, err := readRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	r, err := roleFromRequest(existing, d)
	if err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	if err := writeRole(ctx, req.Storage, name, r); err != nil {
		return nil, err
	}
	b.roles.drop(name)
	b.Logger().Info("role saved", "role", name, "scopes", strings.Join(r.Scopes, " "), "ttl", r.ttl().String(), "max_ttl", r.maxTTL().String())
	b.event("role-write", true, logical.EventMetadataPath, rolePrefix+name, "role", name)
	// The answer is the role as stored: the CLI shows it, and a write that
	// merged with an earlier one shows what the role now is.
	return &logical.Response{Data: r.view(), Warnings: mountCeilingWarnings(r, b.System().MaxLeaseTTL(), mountPath(req))}, nil
}

// A role and a static role never share a name: creds/, static-creds/ and
// rotate-role/ each name the path that serves a name of the other kind,
// which a name of both kinds would leave without an answer.

// nameTakenByStaticRole refuses a role write whose name is a static
// role's; nil when it is not.
func nameTakenByStaticRole(ctx context.Context, req *logical.Request, name string) error {
	static, err := readStaticRole(ctx, req.Storage, name)
	return nameTaken(req, name, static != nil, err, "static role", staticRolePrefix)
}

// nameTakenByRole refuses a static role write whose name is a role's; nil
// when it is not.
func nameTakenByRole(ctx context.Context, req *logical.Request, name string) error {
	dynamic, err := readRole(ctx, req.Storage, name)
	return nameTaken(req, name, dynamic != nil, err, "role", rolePrefix)
}

// nameTaken refuses a write of name when a role of the other kind, kind
// at prefix, holds it (held), or passes on the failure to find out.
func nameTaken(req *logical.Request, name string, held bool, err error, kind, prefix string) error {
	if err != nil || !held {
		return err
	}
	what := "a static role"
	if kind == "role" {
		what = "a role of leases"
	}
	return badRequest("'name' %q is already %s (%s%s%s): a role and a static role may not share a name; choose "+
		"another name, or delete the %s first; nothing was stored", name, what, mountPath(req), prefix, name, kind)
}

func (b *backend) pathRoleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := req.Storage.Delete(ctx, rolePrefix+name); err != nil {
		return nil, fmt.Errorf("deleting role %q: %w", name, err)
	}
	b.roles.drop(name)
	b.Logger().Info("role deleted", "role", name)
	b.event("role-delete", true, logical.EventMetadataPath, rolePrefix+name, "role", name)
	return nil, nil
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

Reading a role returns ttl and max_ttl in seconds, as written: max_ttl reads
0 while it follows ttl, so that a configuration tool such as Terraform that
writes max_ttl=0 reads back what it wrote. When ttl or max_ttl exceeds
the mount's max lease TTL (768h unless tuned), the write succeeds with a
warning giving the "vault secrets tune" command that lifts the ceiling.

Deleting a role does not revoke its credentials: they stay revocable and
renewable to their end.

custom_claims is a JSON object, given as an object in a JSON request body
or as a JSON string from the CLI:
  vault write beyondidentity/roles/NAME scopes=identities:read custom_claims='{"team":"sre"}' 
`
