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

// static-creds/: a static role's current token, read from its record
// without a lease. It mints nothing, so any node serves it.

func (b *backend) pathStaticCreds() *framework.Path {
	return &framework.Path{
		Pattern:      staticCredsPrefix + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: "beyond-identity", OperationSuffix: "static-credentials"},
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeString, Description: "Name of the static role, at most 128 characters. Case-sensitive.", Required: true},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback:  b.pathStaticCredsRead,
				Summary:   "Read the current token of a static role, without a lease.",
				Responses: map[int][]framework.Response{http.StatusOK: {{Description: "OK", Fields: staticCredsFields}}},
			},
		},
		HelpSynopsis:    staticCredsHelpSynopsis,
		HelpDescription: staticCredsHelpDescription,
	}
}

var staticCredsFields = map[string]*framework.FieldSchema{
	"access_token":        {Type: framework.TypeString, Description: "The Bearer token."},
	"token_type":          {Type: framework.TypeString, Description: "Always Bearer."},
	"scopes":              {Type: framework.TypeCommaStringSlice, Description: "The scopes Beyond Identity granted."},
	"expires_at":          {Type: framework.TypeString, Description: "RFC 3339 UTC time at which the token stops working."},
	"token_id":            {Type: framework.TypeString, Description: "The token's jti."},
	"role":                {Type: framework.TypeString, Description: "The static role."},
	"last_vault_rotation": {Type: framework.TypeString, Description: "RFC 3339 time the token was minted."},
	"rotation_period": {Type: framework.TypeDurationSecond, Description: "How often the token is replaced, in seconds; for a " +
		"role with a schedule, the interval from the current rotation to the next. Present for both kinds: Vault Agent and " +
		"consul-template re-read a secret without a lease when its ttl runs out only when it carries rotation_period " +
		"(otherwise every five minutes)."},
	"rotation_schedule": {Type: framework.TypeString, Description: "The cron expression (UTC) of the rotations (roles with a schedule)."},
	"rotation_window":   {Type: framework.TypeDurationSecond, Description: "How long after a scheduled time a rotation may still run, in seconds (roles with a schedule)."},
	"ttl": {Type: framework.TypeDurationSecond, Description: "Seconds until the rotation that replaces the token returned " +
		"with it: read again then. It counts to that rotation whatever delays it (a failed attempt's retry, a missed " +
		"window's next scheduled time), never to a time at which the token stays the same; 0 while the rotation is due."},
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
		return nil, b.unknownStaticRole(ctx, req, name)
	}
	now := b.clock.Now()
	if !now.Before(r.Current.expiresAt()) {
		why := "its rotation is due (a restart may have delayed it): read again in a few seconds"
		switch {
		case r.FailedRotations > 0:
			why = "rotating it failed: " + r.LastRotationError
		case r.NextRotation.After(now) && r.LastRotationError != "":
			why = fmt.Sprintf("its replacement is due at %s: %s", rfc3339(r.NextRotation), r.LastRotationError)
		}
		return nil, refuse(http.StatusServiceUnavailable, "the token of static role %q ended at %s, and %s",
			name, r.Current.expiresAt().Format(time.RFC3339), why)
	}
	data := map[string]any{
		"access_token":        r.Current.AccessToken.Reveal(),
		"token_type":          r.Current.TokenType,
		"scopes":              r.Current.Scopes,
		"expires_at":          r.Current.expiresAt().Format(time.RFC3339),
		"token_id":            r.Current.TokenID,
		"role":                name,
		"last_vault_rotation": rfc3339(r.LastRotation),
		"ttl":                 int64(ceilSeconds(r.NextRotation.Sub(now)).Seconds()),
	}
	// Readers tell the two kinds apart by rotation_schedule. A scheduled
	// role carries rotation_period too: Vault Agent and consul-template
	// re-read a secret without a lease at its ttl only when it has one.
	r.addTiming(data)
	if r.RotationSchedule != "" {
		data["rotation_period"] = int64(max(ceilSeconds(r.NextRotation.Sub(r.LastRotation)), time.Second).Seconds())
	}
	return &logical.Response{Data: data}, nil
}

// unknownStaticRole refuses a path that hands out or rotates a credential
// of a static role that does not exist: a 400 naming it, as creds/ does,
// so that a client's typo never reads as an empty secret (a 404 does, to
// hvac and consul-template); and naming creds/ when the name is a role of
// leases.
func (b *backend) unknownStaticRole(ctx context.Context, req *logical.Request, name string) error {
	dynamic, err := b.cachedRole(ctx, req.Storage, name)
	if err != nil {
		return err
	}
	if dynamic != nil {
		return badRequest("%q is a role of leases, not a static role: each read of %s%s%s mints a new token "+
			"as a lease, which has no rotation; %s%s%s serves only static roles", name, mountPath(req), credsPrefix, name,
			mountPath(req), strings.TrimSuffix(req.Path, name), name)
	}
	return badRequest("static role %q does not exist: 'name' must be a static role written at %s%s%s "+
		"(vault list %s%s lists them)", name, mountPath(req), staticRolePrefix, name, mountPath(req), staticRolePrefix)
}

const staticCredsHelpSynopsis = "Read the current token of a static role, without a lease."

const staticCredsHelpDescription = `
Returns the static role's current token: access_token, token_type, scopes,
expires_at, token_id and role, with last_vault_rotation, rotation_period
(with a schedule, also rotation_schedule and rotation_window) and ttl, the
seconds until the rotation that replaces this token. Vault Agent,
consul-template and Vault Secrets Operator read these fields to fetch the
new token when it comes: Agent and consul-template re-read at ttl plus a
second only when rotation_period is present, so a scheduled role carries it
too (the interval from its current rotation to the next). The previous
token keeps working for the role's grace_period. Reading mints nothing:
every read until the next rotation returns the same token.
`
