package beyondidentity

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// config/retained/ lists the credentials the config no longer uses, kept
// to revoke the tokens they issued (retained.go), and lets an operator
// drop one.

func (b *backend) pathRetained() []*framework.Path {
	return []*framework.Path{
		{
			Pattern: configPath + "/" + retainedPrefix + "?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "beyond-identity",
				OperationSuffix: "retained-applications",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{
					Callback: b.pathRetainedList,
					Summary:  "List the retained credentials of previous applications, without their secrets.",
				},
			},
			HelpSynopsis:    retainedHelpSynopsis,
			HelpDescription: retainedHelpDescription,
		},
		{
			Pattern: configPath + "/" + retainedPrefix + framework.GenericNameRegex("id"),
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "beyond-identity",
				OperationSuffix: "retained-application",
			},
			Fields: map[string]*framework.FieldSchema{
				"id": {
					Type:        framework.TypeString,
					Description: "Id of the retained credentials, as listed by reading config or listing config/retained.",
					Required:    true,
				},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback: b.pathRetainedRead,
					Summary:  "Read retained credentials, without their secret.",
				},
				logical.DeleteOperation: forwarded(b.pathRetainedDelete,
					"Drop retained credentials now; the leases they issued then fail to revoke until their tokens expire."),
			},
			HelpSynopsis:    retainedHelpSynopsis,
			HelpDescription: retainedHelpDescription,
		},
	}
}

func (b *backend) pathRetainedList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	retained, err := listRetained(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(retained))
	info := make(map[string]any, len(retained))
	for _, app := range retained {
		id := app["id"].(string)
		ids = append(ids, id)
		info[id] = app
	}
	return logical.ListResponseWithInfo(ids, info), nil
}

func (b *backend) pathRetainedRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id := d.Get("id").(string)
	app, err := readRetained(ctx, req.Storage, id)
	if err != nil || app == nil {
		return nil, err
	}
	return &logical.Response{Data: app.summary(id)}, nil
}

func (b *backend) pathRetainedDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	defer b.lockConfig()()
	id := d.Get("id").(string)
	app, err := readRetained(ctx, req.Storage, id)
	if err != nil || app == nil {
		return nil, err
	}
	if err := dropRetained(ctx, req.Storage, id); err != nil {
		return nil, err
	}
	b.reset()
	b.Logger().Info("retained credentials dropped by an operator", "id", id, "client_id", app.ClientID)
	b.event("config-retained-delete", true, logical.EventMetadataPath, configPath+"/"+retainedPrefix+id, "client_id", app.ClientID)
	resp := &logical.Response{}
	resp.AddWarning(fmt.Sprintf("the credentials of client %s at %s are dropped: leases they issued can no longer be revoked "+
		"at Beyond Identity, and their revocations fail until those tokens expire (at the latest %s)",
		app.ClientID, biclient.TokenURL(app.issuer()), app.KeptUntil.UTC().Format(time.RFC3339)))
	return resp, nil
}

const retainedHelpSynopsis = "Credentials of previous applications, kept to revoke the leases they issued."

const retainedHelpDescription = `
When the config moves to another Beyond Identity application or client,
replaces the secret, or is deleted, the credentials it used are kept,
seal-wrapped, until no token they issued can still be alive (90 days and
6 minutes), because Beyond Identity ignores a revocation made by any other
application and refuses a secret it no longer accepts. Each lease is revoked with the
credentials of the application and client that issued its token: the
current secret first, then the retained secret that minted it.

Listing config/retained (or reading config) shows each one's id, token_url,
client_id, reason, retired_at and kept_until, never the secret. Deleting
config/retained/<id> drops one at once: the leases it issued can then no
longer be revoked at Beyond Identity, and their revocations fail until
their tokens expire.
`
