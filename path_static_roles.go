package beyondidentity

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const (
	staticCredsPrefix = "static-creds/"
	rotateRolePrefix  = "rotate-role/"
)

func (b *backend) pathStaticRoles() []*framework.Path {
	name := map[string]*framework.FieldSchema{
		"name": {Type: framework.TypeString, Description: "Name of the static role, at most 128 characters. Case-sensitive.", Required: true},
	}
	return []*framework.Path{
		{
			Pattern:      staticRolePrefix + "?$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: "beyond-identity", OperationSuffix: "static-roles"},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.pathStaticRoleList, Summary: "List the static roles."},
			},
			HelpSynopsis:    staticRoleListHelpSynopsis,
			HelpDescription: staticRoleListHelpDescription,
		},
		{
			Pattern:        staticRolePrefix + framework.GenericNameRegex("name"),
			DisplayAttrs:   &framework.DisplayAttributes{OperationPrefix: "beyond-identity", OperationSuffix: "static-role"},
			Fields:         staticRoleFields(name),
			ExistenceCheck: b.staticRoleExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback:  b.pathStaticRoleRead,
					Summary:   "Read a static role and the state of its rotation; never its token.",
					Responses: map[int][]framework.Response{http.StatusOK: {{Description: "OK", Fields: staticRoleResponseFields}}},
				},
				logical.CreateOperation: forwarded(b.pathStaticRoleWrite, "Create a static role; its first token is minted at once."),
				logical.UpdateOperation: forwarded(b.pathStaticRoleWrite, "Update a static role; a change of scopes or custom_claims rotates its token at once."),
				logical.DeleteOperation: forwarded(b.pathStaticRoleDelete, "Delete a static role and revoke its tokens."),
			},
			HelpSynopsis:    staticRoleHelpSynopsis,
			HelpDescription: staticRoleHelpDescription,
		},
		{
			Pattern:      staticCredsPrefix + framework.GenericNameRegex("name"),
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: "beyond-identity", OperationSuffix: "static-credentials"},
			Fields:       name,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback:  b.pathStaticCredsRead,
					Summary:   "Read the current token of a static role, without a lease.",
					Responses: map[int][]framework.Response{http.StatusOK: {{Description: "OK", Fields: staticCredsFields}}},
				},
			},
			HelpSynopsis:    staticCredsHelpSynopsis,
			HelpDescription: staticCredsHelpDescription,
		},
		{
			Pattern:      rotateRolePrefix + framework.GenericNameRegex("name"),
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: "beyond-identity", OperationVerb: "rotate", OperationSuffix: "static-role"},
			Fields:       name,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: forwarded(b.pathRotateRole, "Replace a static role's token now; the previous one works for the grace period."),
			},
			HelpSynopsis:    rotateRoleHelpSynopsis,
			HelpDescription: rotateRoleHelpDescription,
		},
	}
}

func staticRoleFields(name map[string]*framework.FieldSchema) map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"name": name["name"],
		"scopes": {
			Type: framework.TypeCommaStringSlice,
			Description: "Management API scopes the role's token carries, as a list or comma-separated. Required. " +
				"Each is colon-separated segments of a-z, 0-9 and '-', at most 128 characters; at most 64 scopes.",
		},
		"rotation_period": {
			Type: framework.TypeDurationSecond,
			Description: "How often the token is replaced, without any request. At least 10s; with grace_period, " +
				"at most 7776000s (90 days). Default: 24h.",
		},
		"grace_period": {
			Type: framework.TypeDurationSecond,
			Description: "How long a replaced token keeps working, so that a consumer re-reading on schedule never holds " +
				"a dead one; then it is revoked. Each token is minted for rotation_period plus grace_period. At most " +
				"rotation_period. Default (or 0): a tenth of rotation_period.",
		},
		"custom_claims": {
			Type:        framework.TypeMap,
			Description: "JSON object (or a string holding one) sent as Beyond Identity custom_claims; at most 8 KiB of JSON. Default: none.",
		},
		"description": {Type: framework.TypeString, Description: "Free text describing the role, at most 1024 characters. Default: empty."},
	}
}

var staticRoleResponseFields = map[string]*framework.FieldSchema{
	"scopes":              {Type: framework.TypeCommaStringSlice, Description: "Scopes of the role's token, sorted."},
	"rotation_period":     {Type: framework.TypeDurationSecond, Description: "How often the token is replaced, in seconds."},
	"grace_period":        {Type: framework.TypeDurationSecond, Description: "How long a replaced token keeps working, in seconds."},
	"custom_claims":       {Type: framework.TypeMap, Description: "Custom claims sent with each mint."},
	"description":         {Type: framework.TypeString, Description: "Free text."},
	"last_vault_rotation": {Type: framework.TypeString, Description: "RFC 3339 time the current token was minted."},
	"next_vault_rotation": {Type: framework.TypeString, Description: "RFC 3339 time of the next rotation, or of the next attempt while rotations fail."},
	"token_id":            {Type: framework.TypeString, Description: "The current token's jti."},
	"last_rotation_error": {Type: framework.TypeString, Description: "Why the last rotation failed; empty when it succeeded."},
}

var staticCredsFields = map[string]*framework.FieldSchema{
	"access_token":        {Type: framework.TypeString, Description: "The Bearer token."},
	"token_type":          {Type: framework.TypeString, Description: "Always Bearer."},
	"scopes":              {Type: framework.TypeCommaStringSlice, Description: "The scopes Beyond Identity granted."},
	"expires_at":          {Type: framework.TypeString, Description: "RFC 3339 UTC time at which the token stops working."},
	"token_id":            {Type: framework.TypeString, Description: "The token's jti."},
	"role":                {Type: framework.TypeString, Description: "The static role."},
	"last_vault_rotation": {Type: framework.TypeString, Description: "RFC 3339 time the token was minted."},
	"rotation_period":     {Type: framework.TypeDurationSecond, Description: "How often the token is replaced, in seconds."},
	"ttl":                 {Type: framework.TypeDurationSecond, Description: "Seconds until the token is replaced: read again then."},
}

func (b *backend) staticRoleExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	r, err := readStaticRole(ctx, req.Storage, d.Get("name").(string))
	return r != nil, err
}

func (b *backend) pathStaticRoleList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, staticRolePrefix)
	if err != nil {
		return nil, fmt.Errorf("listing static roles: %w", err)
	}
	return logical.ListResponse(names), nil
}

func (b *backend) pathStaticRoleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, err := readStaticRole(ctx, req.Storage, d.Get("name").(string))
	if err != nil || r == nil {
		return nil, err
	}
	data := map[string]any{
		"scopes":              r.Scopes,
		"rotation_period":     int64(r.RotationPeriod.Seconds()),
		"grace_period":        int64(r.grace().Seconds()),
		"description":         r.Description,
		"last_vault_rotation": r.LastRotation.UTC().Format(time.RFC3339),
		"next_vault_rotation": r.NextRotation.UTC().Format(time.RFC3339),
		"token_id":            r.Current.TokenID,
		"last_rotation_error": r.LastRotationError,
	}
	if len(r.CustomClaims) > 0 {
		data["custom_claims"] = r.CustomClaims
	}
	return &logical.Response{Data: data}, nil
}

func (b *backend) pathStaticRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if len(name) > maxRoleNameLen {
		return logical.ErrorResponse("'name' must be at most %d characters, got %d", maxRoleNameLen, len(name)), nil
	}
	defer b.lockStaticRole(name)()
	existing, err := readStaticRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	r, tokenChanged, err := staticRoleFromRequest(existing, d)
	if err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	if existing == nil || tokenChanged {
		// A failing mint leaves the role as it was: absent, or unchanged.
		resp, err := b.rotate(ctx, req.Storage, name, r)
		if err == nil && !resp.IsError() {
			b.event("static-role-write", logical.EventMetadataPath, staticRolePrefix+name, "role", name)
		}
		return resp, err
	}
	if r.FailedRotations == 0 {
		r.NextRotation = r.nextRotation(r.LastRotation, r.Current.expiresAt())
	}
	if err := writeStaticRole(ctx, req.Storage, name, r); err != nil {
		return nil, err
	}
	b.pushItem(staticRolePrefix+name, r.nextDue())
	b.Logger().Info("static role saved", "role", name, "rotation_period", r.RotationPeriod.String(), "next_rotation", r.NextRotation)
	b.event("static-role-write", logical.EventMetadataPath, staticRolePrefix+name, "role", name)
	return nil, nil
}

func (b *backend) pathStaticRoleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	defer b.lockStaticRole(name)()
	r, err := readStaticRole(ctx, req.Storage, name)
	if err != nil || r == nil {
		return nil, err
	}
	if err := b.revokeStaticRoleTokens(ctx, req.Storage, r); err != nil {
		return nil, fmt.Errorf("deleting static role %q: revoking its tokens failed, so the role stays: %w", name, err)
	}
	if err := req.Storage.Delete(ctx, staticRolePrefix+name); err != nil {
		return nil, fmt.Errorf("deleting static role %q: %w", name, err)
	}
	b.popFromQueueByKey(staticRolePrefix + name)
	b.Logger().Info("static role deleted; its tokens are revoked", "role", name)
	b.event("static-role-delete", logical.EventMetadataPath, staticRolePrefix+name, "role", name)
	return nil, nil
}

// pathStaticCredsRead hands out the current token. It mints nothing, so any
// node may serve it from storage.
func (b *backend) pathStaticCredsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	r, err := readStaticRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.CodedError(http.StatusNotFound, fmt.Sprintf("static role %q does not exist: 'name' must be a static role written at %s%s%s",
			name, mountPath(req), staticRolePrefix, name))
	}
	now := b.clock.Now()
	if !now.Before(r.Current.expiresAt()) {
		why := "its rotation is due (a restart may have delayed it): read again in a few seconds"
		if r.LastRotationError != "" {
			why = "rotating it failed: " + r.LastRotationError
		}
		return nil, logical.CodedError(http.StatusServiceUnavailable, fmt.Sprintf("the token of static role %q ended at %s, and %s",
			name, r.Current.expiresAt().Format(time.RFC3339), why))
	}
	return &logical.Response{Data: map[string]any{
		"access_token":        r.Current.Token,
		"token_type":          r.Current.TokenType,
		"scopes":              r.Current.Scopes,
		"expires_at":          r.Current.expiresAt().Format(time.RFC3339),
		"token_id":            r.Current.TokenID,
		"role":                name,
		"last_vault_rotation": r.LastRotation.UTC().Format(time.RFC3339),
		"rotation_period":     int64(r.RotationPeriod.Seconds()),
		"ttl":                 int64(ceilSeconds(r.NextRotation.Sub(now)).Seconds()),
	}}, nil
}

func (b *backend) pathRotateRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	defer b.lockStaticRole(name)()
	r, err := readStaticRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return logical.ErrorResponse("static role %q does not exist: 'name' must be a static role written at %s%s%s",
			name, mountPath(req), staticRolePrefix, name), nil
	}
	return b.rotate(ctx, req.Storage, name, r)
}

const staticRoleListHelpSynopsis = "List the static roles."

const staticRoleListHelpDescription = `
Lists the names of the static roles defined on this mount.
`

const staticRoleHelpSynopsis = "Define a static role: one token, replaced on a schedule, for consumers that cannot hold a lease."

var staticRoleHelpDescription = strings.TrimSpace(`
A static role keeps one Beyond Identity token and replaces it every
rotation_period (default 24h, at least 10s), on the active node, without
any request. Readers get the current token at static-creds/<name>, with no
lease: External Secrets Operator, Terraform data sources, Vault Secrets
Operator (allowStaticCreds), CI systems that read once and cache.

A replaced token keeps working for grace_period (default a tenth of
rotation_period), then is revoked at Beyond Identity. Each token is minted
for rotation_period plus grace_period.

Writing a static role mints its first token at once; if that fails, nothing
is stored. Changing scopes or custom_claims rotates the token at once.
Reading it shows last_vault_rotation, next_vault_rotation, the current
token_id and last_rotation_error, never the token. Deleting it revokes its
tokens. A failed rotation is retried with backoff and shown in
last_rotation_error.
`)

const staticCredsHelpSynopsis = "Read the current token of a static role, without a lease."

const staticCredsHelpDescription = `
Returns the static role's current token: access_token, token_type, scopes,
expires_at, token_id and role, with last_vault_rotation, rotation_period
and ttl, the seconds until the next rotation. Vault Agent, consul-template
and Vault Secrets Operator read these fields to fetch the new token when it
comes; the previous one keeps working for the role's grace_period. Reading
mints nothing: every read until the next rotation returns the same token.
`

const rotateRoleHelpSynopsis = "Replace a static role's token now."

const rotateRoleHelpDescription = `
Mints a new token for the static role at once; the previous one keeps
working for the role's grace_period, then is revoked at Beyond Identity.
The next scheduled rotation counts from now.
`
