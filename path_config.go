package beyondidentity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

func (b *backend) pathConfig() []*framework.Path {
	return []*framework.Path{
		{
			Pattern: configPath,
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "beyond-identity",
			},
			Fields:         configFields(),
			ExistenceCheck: b.configExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback: b.pathConfigRead,
					Summary:  "Read the configuration; client_secret is never returned.",
					Responses: map[int][]framework.Response{
						http.StatusOK: {{Description: "OK", Fields: configResponseFields}},
					},
				},
				logical.CreateOperation: forwarded(b.pathConfigWrite, "Store the client credentials of a Beyond Identity application."),
				logical.UpdateOperation: forwarded(b.pathConfigWrite, "Change the configuration."),
				logical.DeleteOperation: forwarded(b.pathConfigDelete, "Delete the configuration; its credentials are kept to revoke outstanding leases."),
			},
			HelpSynopsis:    configHelpSynopsis,
			HelpDescription: configHelpDescription,
		},
	}
}

func configFields() map[string]*framework.FieldSchema {
	regions := make([]any, 0, len(biclient.Regions()))
	for _, region := range biclient.Regions() {
		regions = append(regions, region)
	}
	return map[string]*framework.FieldSchema{
		"tenant_id": {
			Type:        framework.TypeString,
			Description: "Beyond Identity tenant id. Required. Letters, digits, '.', '_' and '-'.",
		},
		"realm_id": {
			Type:        framework.TypeString,
			Description: "Realm of the application. Required. Letters, digits, '.', '_' and '-'.",
		},
		"application_id": {
			Type:        framework.TypeString,
			Description: `Application that holds the client credentials, e.g. the "Beyond Identity Management API" application. Required.`,
		},
		"client_id": {
			Type:        framework.TypeString,
			Description: "The application's client id. Required.",
		},
		"client_secret": {
			Type: framework.TypeString,
			Description: "The application's client secret. Required on create, and again whenever tenant_id, realm_id, " +
				"application_id, client_id, region, auth_url or ca_cert change. Write-only: never returned or logged.",
			DisplayAttrs: &framework.DisplayAttributes{Sensitive: true},
		},
		"region": {
			Type:    framework.TypeString,
			Default: biclient.DefaultRegion,
			Description: fmt.Sprintf("Beyond Identity region, which picks the hosts: %s. Default: %s.",
				strings.Join(biclient.Regions(), ", "), biclient.DefaultRegion),
			AllowedValues: regions,
		},
		"auth_url": {
			Type: framework.TypeString,
			Description: "Base URL of the auth host, overriding the region's, for private or test deployments. " +
				"https:// only, except http:// to a loopback address. Empty: from region.",
		},
		"ca_cert": {
			Type:        framework.TypeString,
			Description: "PEM bundle of CA certificates trusted for auth_url, beside the system roots. Empty: system roots only.",
		},
		"request_timeout": {
			Type:        framework.TypeDurationSecond,
			Default:     int(defaultRequestTimeout.Seconds()),
			Description: "Bound on each call to Beyond Identity, retries and their waits included, between 1s and 5m. Default: 30s.",
		},
		"max_retries": {
			Type:    framework.TypeInt,
			Default: defaultMaxRetries,
			Description: "How often a call is retried, with backoff honouring Retry-After, between 0 and 10. The token call is " +
				"retried only when Beyond Identity cannot have minted a token: connection refused, 429 or 503. Revocations and " +
				"introspections, which are safe to repeat, are also retried after a lost connection or a 5xx. 0 disables retries. Default: 3.",
		},
		"max_concurrent_requests": {
			Type:    framework.TypeInt,
			Default: defaultMaxConcurrent,
			Description: "The most token and introspection calls to Beyond Identity this mount runs at once. The bound " +
				"adapts below it: it starts at 10, grows while Beyond Identity answers, and halves on each 429 or 503. " +
				"Further calls wait for a slot within their own time limit. Revocations have a bound of their own, so a " +
				"burst of credential reads never delays them. The mount keeps a connection open for each slot, so calls " +
				"reuse connections rather than handshake again. Between 1 and 256. Default: 64.",
		},
		"verify_connection": {
			Type:    framework.TypeBool,
			Default: true,
			Description: "On write, mint a 60-second token and revoke it at once, and refuse to save credentials " +
				"that do not work. Default: true. Not stored.",
		},
	}
}

var configResponseFields = map[string]*framework.FieldSchema{
	"tenant_id":               {Type: framework.TypeString, Description: "Beyond Identity tenant id."},
	"realm_id":                {Type: framework.TypeString, Description: "Realm of the application."},
	"application_id":          {Type: framework.TypeString, Description: "Application that holds the client credentials."},
	"client_id":               {Type: framework.TypeString, Description: "The application's client id."},
	"region":                  {Type: framework.TypeString, Description: "Beyond Identity region; absent while auth_url is set, which overrides it."},
	"auth_url":                {Type: framework.TypeString, Description: "Auth host override; empty when the region's host is used."},
	"ca_cert":                 {Type: framework.TypeString, Description: "Extra trusted CA certificates."},
	"request_timeout":         {Type: framework.TypeDurationSecond, Description: "Bound on each call, in seconds."},
	"max_retries":             {Type: framework.TypeInt, Description: "Retries of a call that is safe to repeat."},
	"max_concurrent_requests": {Type: framework.TypeInt, Description: "The most issuing calls to Beyond Identity run at once."},
	"token_url":               {Type: framework.TypeString, Description: "The token endpoint the configuration resolves to."},
	"retained_applications": {Type: framework.TypeSlice, Description: "Previous applications whose credentials are kept " +
		"to revoke the tokens they issued: id, token_url, client_id, reason, retired_at and kept_until; never their secrets."},
}

func (b *backend) configExists(ctx context.Context, req *logical.Request, _ *framework.FieldData) (bool, error) {
	cfg, err := readConfig(ctx, req.Storage)
	return cfg != nil, err
}

func (b *backend) pathConfigRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := readConfig(ctx, req.Storage)
	if err != nil || cfg == nil {
		return nil, err
	}
	retained, err := listRetained(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	data := map[string]any{
		"tenant_id":               cfg.TenantID,
		"realm_id":                cfg.RealmID,
		"application_id":          cfg.ApplicationID,
		"client_id":               cfg.ClientID,
		"auth_url":                cfg.AuthURL,
		"ca_cert":                 cfg.CACert,
		"request_timeout":         int64(cfg.RequestTimeout.Seconds()),
		"max_retries":             cfg.MaxRetries,
		"max_concurrent_requests": cfg.MaxConcurrent,
		"token_url":               biclient.TokenURL(cfg.issuer()),
		"retained_applications":   retained,
	}
	// auth_url overrides the region, which then decides nothing: showing it
	// would say the secret goes to the region's host.
	if cfg.AuthURL == "" {
		data["region"] = cfg.Region
	}
	return &logical.Response{Data: data}, nil
}

// pathConfigWrite checks the new credentials without holding any lock (a
// call to Beyond Identity), then decides and stores under the config lock,
// from the config as it is then: two writes at once never lose retained
// credentials, and a write never acts on a config it did not see.
func (b *backend) pathConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	existing, err := readConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	cfg, err := configFromWrite(existing, d, mountPath(req))
	if err != nil {
		return nil, err
	}
	// The check shares the mount's bounds as they stand; a new
	// max_concurrent_requests applies once the config is saved.
	client, err := b.newClient(cfg, "") // its test token is never kept
	if err != nil {
		return logical.ErrorResponse("invalid configuration: %s", err), nil
	}
	defer client.CloseIdleConnections()
	verified := d.Get("verify_connection").(bool)
	if verified {
		if err := b.verifyConnection(ctx, client); err != nil {
			return nil, err // HandleRequest answers it
		}
	}

	defer b.lockConfig()()
	current, err := readConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	checked := cfg
	cfg, err = configFromWrite(current, d, mountPath(req))
	switch {
	case err != nil:
		return nil, err
	case verified && !cfg.sameCredentials(checked):
		return nil, refuse(http.StatusConflict, "another write changed the config while this one verified its "+
			"credentials, and the credentials this write would store are not those it verified: write again")
	}
	var keptID, reason string
	if reason = retentionReason(current, cfg); reason != "" {
		if keptID, err = retain(ctx, req.Storage, current, reason, b.clock.Now()); err != nil {
			return nil, err
		}
	}
	if err := writeConfig(ctx, req.Storage, cfg); err != nil {
		return nil, err
	}
	b.reset()
	tokenURL := biclient.TokenURL(cfg.issuer())
	b.Logger().Info("configuration saved", "tenant_id", cfg.TenantID, "realm_id", cfg.RealmID,
		"application_id", cfg.ApplicationID, "client_id", cfg.ClientID, "token_url", tokenURL, "verified", verified,
		"retained", keptID)

	// The response says where the secret went (or will go), so that a
	// secret-only write after someone re-pointed the config shows it.
	b.event("config-write", true, logical.EventMetadataPath, configPath, "token_url", tokenURL, "client_id", cfg.ClientID,
		"application_moved", strconv.FormatBool(reason == retainedMoved))
	resp := &logical.Response{Data: map[string]any{"token_url": tokenURL, "verified_connection": verified}}
	if _, regionGiven := d.GetOk("region"); regionGiven && cfg.AuthURL != "" {
		resp.AddWarning(fmt.Sprintf("'region' (%s) has no effect while 'auth_url' is set: the secret goes to %s. "+
			"To use the region's host, write auth_url=\"\" with client_secret", cfg.Region, tokenURL))
	}
	if keptID != "" {
		resp.AddWarning(retainedWarning(reason, current, keptID, b.clock.Now().Add(retention), mountPath(req)))
	}
	return resp, nil
}

// verifyConnection mints a short token with new credentials and revokes it
// at once, so credentials that do not work, or cannot revoke what they
// issue, are never saved. Its token is never recorded: the config is not
// saved yet, and the token ends on its own within verifyTokenLifetime.
func (b *backend) verifyConnection(ctx context.Context, client *biclient.Client) error {
	const action = "verify_connection: minting a test token"
	tokens, err := mint(ctx, client, biclient.MintRequest{Lifetime: verifyTokenLifetime})
	if len(tokens) == 0 {
		return upstreamRefusal(action, err)
	}
	// Revoke even if the request was cancelled meanwhile; every candidate
	// of an answer that named several.
	var revokeErr error
	for _, token := range tokens {
		revokeErr = errors.Join(revokeErr, client.Revoke(context.WithoutCancel(ctx), token.AccessToken))
	}
	if revokeErr != nil {
		revokeErr = fmt.Errorf("%w; the test token expires on its own within %s", revokeErr, verifyTokenLifetime)
	}
	switch {
	case err != nil:
		return upstreamRefusal(action, withOutcome(err, discarded(revokeErr)))
	case revokeErr != nil:
		return upstreamRefusal("verify_connection: a test token was minted but revoking it failed, so these "+
			"credentials cannot revoke what they issue", revokeErr)
	}
	b.Logger().Debug("verified connection", "token_url", biclient.TokenURL(client.Issuer()), "token_id", tokens[0].ID)
	return nil
}

// configFromWrite is configFromRequest with the rule on the secret: a
// change of where it is sent needs it again. Its error is the operator's
// mistake.
func configFromWrite(existing *config, d *framework.FieldData, mount string) (*config, error) {
	cfg, changed, err := configFromRequest(existing, d)
	switch {
	case errors.Is(err, errSecretEndsInNewline):
		return nil, badRequest("%s: send it without, with printf '%%s' rather than echo, such as "+
			"printf '%%s' \"$CLIENT_SECRET\" | vault write %sconfig client_secret=- (and the other fields)", err, mount)
	case err != nil:
		return nil, badRequest("%s", err)
	}
	if _, given := d.GetOk("client_secret"); !given && existing != nil && len(changed) > 0 {
		return nil, badRequest("'client_secret' is required when changing %s, so that the stored secret is never sent to a new destination",
			strings.Join(changed, ", "))
	}
	return cfg, nil
}

// pathConfigDelete deletes the config but keeps its credentials, so that
// the leases it issued are still revoked: "vault delete <mount>/config"
// followed by "vault secrets disable <mount>" revokes every lease's token.
// It is refused while static roles exist: only these credentials can
// revoke their tokens, and Vault wipes the mount's storage on disable
// without telling the plugin.
func (b *backend) pathConfigDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	defer b.lockConfig()()
	existing, err := readConfig(ctx, req.Storage)
	if err != nil || existing == nil {
		return nil, err
	}
	staticRoles, err := req.Storage.List(ctx, staticRolePrefix)
	if err != nil {
		return nil, fmt.Errorf("listing static roles: %w", err)
	}
	if len(staticRoles) > 0 {
		return logical.ErrorResponse(staticRolesBlockDelete(staticRoles, mountPath(req))), nil
	}
	keptID, err := retain(ctx, req.Storage, existing, retainedDeleted, b.clock.Now())
	if err != nil {
		return nil, err
	}
	if err := req.Storage.Delete(ctx, configPath); err != nil {
		return nil, err
	}
	b.reset()
	b.Logger().Info("configuration deleted; its credentials are kept to revoke its leases", "client_id", existing.ClientID)
	b.event("config-delete", true, logical.EventMetadataPath, configPath, "client_id", existing.ClientID)
	resp := &logical.Response{}
	resp.AddWarning(fmt.Sprintf("no role can issue credentials until a new config is written to %sconfig", mountPath(req)))
	resp.AddWarning(retainedWarning(retainedDeleted, existing, keptID, b.clock.Now().Add(retention), mountPath(req)))
	return resp, nil
}

// staticRolesBlockDelete is the answer to a config delete while static
// roles exist: which, and the commands that delete them.
func staticRolesBlockDelete(names []string, mount string) string {
	const shown = 10
	commands := make([]string, 0, shown)
	for _, name := range names[:min(len(names), shown)] {
		commands = append(commands, fmt.Sprintf("vault delete %s%s%s", mount, staticRolePrefix, name))
	}
	more := ""
	if len(names) > shown {
		more = fmt.Sprintf(" (and %d more: vault list %s%s)", len(names)-shown, mount, staticRolePrefix)
	}
	return fmt.Sprintf("'config' cannot be deleted while static roles exist (%d: %s): only these credentials can revoke "+
		"their tokens, and disabling the mount would leave them valid at Beyond Identity. Delete the static roles first, "+
		"which revokes their tokens: %s%s", len(names), strings.Join(names[:min(len(names), shown)], ", "),
		strings.Join(commands, "; "), more)
}

const configHelpSynopsis = "Configure the Beyond Identity application whose client credentials mint tokens."

const configHelpDescription = `
Stores the client credentials of a Beyond Identity application (tenant_id,
realm_id, application_id, client_id, client_secret) and where to reach it
(region, or auth_url with an optional ca_cert). The configuration is stored
seal-wrapped.

client_secret is write-only: reading the configuration returns every other
field, the resolved token_url and the retained applications. Changing any
field that decides where the secret is sent (tenant_id, realm_id,
application_id, client_id, region, auth_url, ca_cert) requires
client_secret in the same request. Every write answers with the token_url
the secret was verified against (or, with verify_connection=false, will be
sent to).

With verify_connection=true (the default), a write mints a 60-second token
and revokes it at once, and refuses credentials that do not work.

Beyond Identity ignores a revocation made with another application's
credentials, and refuses one made with a secret it no longer accepts. So
when a write moves the config to another application or client, replaces
the secret, or the config is deleted, the previous credentials are kept,
seal-wrapped, for 90 days and 6 minutes (the longest a token lives, plus
the longest call and a margin): every lease is revoked with the
credentials of the application and client that issued it,
the current secret first, then, while Beyond Identity answers
invalid_client, the retained secret that minted it (each token records a
salted fingerprint of it, never the secret): at most two calls, however
many secrets were written since. They are listed at config/retained
and go only when their retention ends or with
"vault delete <mount>/config/retained/<id>". Writes, deletes and drops are
serialised.

Deleting config is refused while static roles exist: only these
credentials can revoke their tokens. Delete the static roles first.
`
