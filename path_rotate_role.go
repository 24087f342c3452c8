package beyondidentity

import (
	"context"
	"net/http"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func (b *backend) pathRotateRole() *framework.Path {
	return &framework.Path{
		Pattern:      rotateRolePrefix + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: "beyond-identity", OperationVerb: "rotate", OperationSuffix: "static-role"},
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeString, Description: "Name of the static role, at most 128 characters. Case-sensitive.", Required: true},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathRotateRoleWrite,
				Summary:                     "Replace a static role's token now; the previous one works for the grace period.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				Responses:                   map[int][]framework.Response{http.StatusOK: {{Description: "OK", Fields: rotateRoleResponseFields}}},
			},
		},
		HelpSynopsis:    rotateRoleHelpSynopsis,
		HelpDescription: rotateRoleHelpDescription,
	}
}

var rotateRoleResponseFields = map[string]*framework.FieldSchema{
	"token_id":            {Type: framework.TypeString, Description: "The new token's jti."},
	"last_vault_rotation": {Type: framework.TypeString, Description: "RFC 3339 time the new token was minted."},
	"next_vault_rotation": {Type: framework.TypeString, Description: "RFC 3339 time of the next rotation."},
}

func (b *backend) pathRotateRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	defer b.lockStaticRole(name)()
	r, err := readStaticRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, b.unknownStaticRole(ctx, req, name)
	}
	warnings, err := b.rotate(ctx, req.Storage, name, r)
	if err != nil {
		return nil, err // HandleRequest counts and answers it
	}
	return &logical.Response{Warnings: warnings, Data: map[string]any{
		"token_id":            r.Current.TokenID,
		"last_vault_rotation": rfc3339(r.LastRotation),
		"next_vault_rotation": rfc3339(r.NextRotation),
	}}, nil
}

const rotateRoleHelpSynopsis = "Replace a static role's token now."

const rotateRoleHelpDescription = `
Mints a new token for the static role at once; the previous one keeps
working for the role's grace_period, then is revoked at Beyond Identity.
The next rotation counts from now (a period), or is the schedule's next
time. The answer holds the new token_id, last_vault_rotation and
next_vault_rotation, never the token.
`
