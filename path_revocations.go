package beyondidentity

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// revocations/ shows operators the tokens the plugin is still trying to
// revoke in the background: what each was, how the attempts went, and
// until when it can live. Never the token.

func (b *backend) pathRevocations() []*framework.Path {
	return []*framework.Path{
		{
			Pattern:      revocationPrefix + "?$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: "beyond-identity", OperationSuffix: "pending-revocations"},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{
					Callback: b.pathRevocationList,
					Summary:  "List the tokens the plugin is still trying to revoke, with what each was; never the token.",
				},
			},
			HelpSynopsis:    revocationsHelpSynopsis,
			HelpDescription: revocationsHelpDescription,
		},
		{
			Pattern:      revocationPrefix + framework.GenericNameRegex("key"),
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: "beyond-identity", OperationSuffix: "pending-revocation"},
			Fields: map[string]*framework.FieldSchema{
				"key": {Type: framework.TypeString, Required: true,
					Description: "Key of the revocation, as listed at revocations/ (a hash of the token, never the token)."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback:  b.pathRevocationRead,
					Summary:   "Read a revocation the plugin is still trying; never the token.",
					Responses: map[int][]framework.Response{http.StatusOK: {{Description: "OK", Fields: revocationFields}}},
				},
			},
			HelpSynopsis:    revocationsHelpSynopsis,
			HelpDescription: revocationsHelpDescription,
		},
	}
}

var revocationFields = map[string]*framework.FieldSchema{
	"token_id":     {Type: framework.TypeString, Description: "The token's jti; empty when it could not be learned."},
	"role":         {Type: framework.TypeString, Description: "The role or static role that issued the token."},
	"kind":         {Type: framework.TypeString, Description: "lease (a creds token), static (a static role's) or recovered (found by the journal's recovery)."},
	"attempts":     {Type: framework.TypeInt, Description: "Failed attempts so far."},
	"last_error":   {Type: framework.TypeString, Description: "Why the last attempt failed."},
	"next_attempt": {Type: framework.TypeString, Description: "RFC 3339 time of the next attempt."},
	"ends_by":      {Type: framework.TypeString, Description: "RFC 3339 time by which the token has ended on its own: the attempts stop then."},
}

// view is what an operator sees of a pending revocation.
func (r *revocationRecord) view() map[string]any {
	return map[string]any{
		"token_id":     r.TokenID,
		"role":         r.Role,
		"kind":         r.Kind,
		"attempts":     r.Attempts,
		"last_error":   r.LastError,
		"next_attempt": r.Next.UTC().Format(time.RFC3339),
		"ends_by":      r.endsBy().Add(expiredMargin).Format(time.RFC3339),
	}
}

// pathRevocationList lists the pending revocations, not the proofs of
// those done that wait for Vault's next attempt on their lease.
func (b *backend) pathRevocationList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	keys, err := req.Storage.List(ctx, revocationPrefix)
	if err != nil {
		return nil, fmt.Errorf("listing revocations: %w", err)
	}
	pending := make([]string, 0, len(keys))
	info := make(map[string]any, len(keys))
	for _, key := range keys {
		record, err := readRevocation(ctx, req.Storage, key)
		switch {
		case err != nil:
			b.Logger().Warn("skipping a revocation record that cannot be read", "key", key, "error", err)
		case record != nil && !record.revoked():
			pending = append(pending, key)
			info[key] = record.view()
		}
	}
	return logical.ListResponseWithInfo(pending, info), nil
}

func (b *backend) pathRevocationRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	record, err := readRevocation(ctx, req.Storage, d.Get("key").(string))
	if err != nil || record == nil || record.revoked() {
		return nil, err
	}
	return &logical.Response{Data: record.view()}, nil
}

const revocationsHelpSynopsis = "Tokens the plugin is still trying to revoke at Beyond Identity."

const revocationsHelpDescription = `
When revoking a token at Beyond Identity fails (an outage, throttling, a
secret Beyond Identity no longer accepts), the plugin records the token and
keeps trying in the background, with backoff from 10s to 1m, until it
succeeds or the token has ended on its own. Listing revocations/ shows them,
each under a key that is a hash of the token; reading revocations/<key>
shows token_id, role, kind (lease, static or recovered), attempts,
last_error, next_attempt and ends_by. Never the token.

Before disabling the mount, wait until the list is empty: Vault wipes the
mount's storage on disable, and a revocation still pending then is never
finished (its token lives until ends_by).
`
