package beyondidentity

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/scope"
)

func (b *backend) pathCreds() *framework.Path {
	return &framework.Path{
		Pattern: credsPrefix + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: "beyond-identity",
			OperationSuffix: "credentials",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {
				Type:        framework.TypeString,
				Description: "Name of the role to issue a token for.",
				Required:    true,
			},
			"ttl": {
				Type: framework.TypeDurationSecond,
				Description: "Shorter lease and token lifetime for this credential only; at most the role's max_ttl. " +
					"Default (or 0): the role's ttl and max_ttl.",
			},
			"scopes": {
				Type:        framework.TypeCommaStringSlice,
				Description: "A subset of the role's scopes for this credential only. Default: all of the role's scopes.",
			},
		},
		// A performance standby forwards minting to the active node rather
		// than mint a token it could not lease. Performance secondaries
		// issue their own credentials: their leases are local to them.
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback:                  b.pathCredsIssue,
				Summary:                   "Issue a Beyond Identity access token with the role's settings.",
				ForwardPerformanceStandby: true,
				Responses: map[int][]framework.Response{
					http.StatusOK: {{Description: "OK", Fields: tokenFields}},
				},
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                  b.pathCredsIssue,
				Summary:                   "Issue a Beyond Identity access token, narrowing its ttl or scopes.",
				ForwardPerformanceStandby: true,
				Responses: map[int][]framework.Response{
					http.StatusOK: {{Description: "OK", Fields: tokenFields}},
				},
			},
		},
		HelpSynopsis:    credsHelpSynopsis,
		HelpDescription: credsHelpDescription,
	}
}

// credentialPlan is what one credential will be, decided before minting:
// the token's order, and the lease.
type credentialPlan struct {
	// order is the token: its lifetime is the lease's hard end too.
	order
	leaseTTL time.Duration
	warnings []string
	// entityID is the Vault entity that asked, when the token has one.
	entityID string
}

func (b *backend) pathCredsIssue(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	plan, err := b.planCredential(ctx, req, d)
	if err != nil {
		return nil, err // HandleRequest counts and answers it
	}
	resp, token, err := b.issue(ctx, req.Storage, plan)
	if err != nil {
		b.event("credential-issue-failure", false, append([]string{"role", name, "entity_id", req.EntityID}, failureMetadata(err)...)...)
		return nil, err
	}
	b.metrics.issued.WithLabelValues(name).Inc()
	b.event("credential-issue", false, "role", name, "entity_id", req.EntityID, "token_id", token.TokenID,
		"expires_at", rfc3339(token.expiresAt()))
	return resp, nil
}

// planCredential decides a read's credential from its role, the request's
// narrowing, the mount's ceiling and, for a role that attributes, the
// entity that asks.
func (b *backend) planCredential(ctx context.Context, req *logical.Request, d *framework.FieldData) (*credentialPlan, error) {
	name := d.Get("name").(string)
	r, err := b.cachedRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, b.unknownRole(ctx, req, name)
	}
	plan, err := narrow(name, r, d, b.System().MaxLeaseTTL(), mountPath(req))
	if err != nil {
		return nil, err
	}
	if _, err := b.client(ctx, req.Storage); err != nil {
		return nil, err
	}
	plan.entityID = req.EntityID
	if r.ClaimsTemplate != "" {
		if plan.claims, err = b.attributedClaims(r, name, req.EntityID); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// issue mints the planned token and builds its lease; a lease that cannot
// be built, or a request that ended meanwhile, discards the token. It
// returns the lease and the token it holds.
func (b *backend) issue(ctx context.Context, s logical.Storage, plan *credentialPlan) (*logical.Response, issuedToken, error) {
	client, err := b.client(ctx, s)
	if err != nil {
		return nil, issuedToken{}, err
	}
	f, err := b.mintFresh(ctx, s, client, &plan.order)
	if err != nil {
		return nil, issuedToken{}, err
	}
	resp, err := b.credentialResponse(plan, f)
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("the request for role %q ended before its credential was returned: %w", plan.role, ctx.Err())
	}
	if err != nil {
		return nil, issuedToken{}, b.discard(ctx, s, f, err)
	}
	b.keep(f)
	// Debug, like renewals: at info, a busy mount would write a line per
	// credential, which the audit log, the credential-issue event and the
	// issued metric already record.
	b.Logger().Debug("issued token", "role", plan.role, "entity_id", plan.entityID, "token_id", f.TokenID,
		"expires_at", resp.Data["expires_at"], "lease_ttl", resp.Secret.TTL.String())
	return resp, f.issuedToken, nil
}

// unknownRole is creds/ of a name that is no role: a 400 naming the path
// that serves it when it is a static role, or the rule otherwise.
func (b *backend) unknownRole(ctx context.Context, req *logical.Request, name string) error {
	static, err := readStaticRole(ctx, req.Storage, name)
	if err != nil {
		return err
	}
	if static != nil {
		return badRequest("%q is a static role, which keeps one token without a lease: read it at %s%s%s, "+
			"not at %s%s%s", name, mountPath(req), staticCredsPrefix, name, mountPath(req), credsPrefix, name)
	}
	return badRequest("role %q does not exist: 'name' must be a role written at %sroles/%s", name, mountPath(req), name)
}

// narrow applies the request's narrowing and the mount's ceiling to a
// role.
func narrow(name string, r *role, d *framework.FieldData, mountMax time.Duration, mount string) (*credentialPlan, error) {
	plan := &credentialPlan{order: order{role: name, scopes: r.Scopes, lifetime: r.maxTTL(), claims: r.CustomClaims}, leaseTTL: r.ttl()}
	if raw, ok := d.GetOk("ttl"); ok && raw.(int) > 0 {
		ttl := time.Duration(raw.(int)) * time.Second
		if ttl > r.maxTTL() {
			return nil, badRequest("'ttl' of %s must not exceed the max_ttl of role %q, %s", bothUnits(ttl), name, bothUnits(r.maxTTL()))
		}
		plan.lifetime, plan.leaseTTL = ttl, ttl
	}
	if raw, ok := d.GetOk("scopes"); ok {
		scopes, err := parseScopes(raw.([]string))
		if err != nil {
			return nil, badRequest("%s", err)
		}
		if len(scopes) == 0 {
			return nil, badRequest("'scopes' must list at least one of the role's scopes when given")
		}
		if outside := scope.Missing(scopes, r.Scopes); len(outside) > 0 {
			return nil, badRequest("'scopes' must be a subset of the scopes of role %q: it does not grant %s",
				name, strings.Join(outside, ", "))
		}
		plan.scopes = scopes
	}
	if mountMax > 0 && plan.lifetime > mountMax {
		plan.warnings = append(plan.warnings, fmt.Sprintf(
			"the lifetime of %s was capped to %s by this mount's max lease TTL; to lift the ceiling, run: vault secrets tune -max-lease-ttl=%s %s",
			bothUnits(plan.lifetime), bothUnits(mountMax), humanDuration(plan.lifetime), mount))
		plan.lifetime = mountMax
	}
	plan.leaseTTL = min(plan.leaseTTL, plan.lifetime)
	return plan, nil
}

// leaseLifetime is how long the lease lives from its issue: as planned,
// unless Beyond Identity's token ends materially sooner, and then with the
// token. A token that ends within shortLifeTolerance of the plan keeps the
// planned lifetime: a lease that ends a moment after its token does no
// harm, while one cut to 59m59s by rounding would surprise every reader.
// The plan counts from sentAt, when the request that got the token left.
func leaseLifetime(plan *credentialPlan, expiresAt, sentAt, now time.Time) (time.Duration, []string) {
	planEnd := sentAt.Add(plan.lifetime)
	switch {
	case expiresAt.Before(planEnd.Add(-shortLifeTolerance)):
		return ceilSeconds(expiresAt.Sub(now)), []string{fmt.Sprintf("Beyond Identity issued a token that ends at %s, sooner than the %s asked for; "+
			"the lease ends with it", expiresAt.UTC().Format(time.RFC3339), humanDuration(plan.lifetime))}
	case expiresAt.After(planEnd.Add(shortLifeTolerance)):
		return plan.lifetime, []string{fmt.Sprintf("Beyond Identity issued a token that ends at %s, later than the %s asked for; "+
			"the lease still ends after %s and the token is revoked then", expiresAt.UTC().Format(time.RFC3339),
			humanDuration(plan.lifetime), humanDuration(plan.lifetime))}
	}
	return plan.lifetime, nil
}

// credentialResponse builds the lease of a checked token. An error means
// the token must be discarded.
func (b *backend) credentialResponse(plan *credentialPlan, f *freshToken) (*logical.Response, error) {
	lifetime, endWarnings := leaseLifetime(plan, f.expiresAt(), f.answer.SentAt, b.clock.Now())
	if lifetime < time.Second {
		return nil, fmt.Errorf("minting a token for role %q: Beyond Identity issued a token that has already expired (at %s)",
			plan.role, f.expiresAt().Format(time.RFC3339))
	}
	leaseTTL := min(plan.leaseTTL, lifetime)
	lease := leaseData{
		storedToken: stored(f.issuedToken),
		TTL:         int64(leaseTTL / time.Second),
		Lifetime:    int64(lifetime / time.Second),
		EntityID:    plan.entityID,
	}
	resp := b.Secret(secretTypeToken).Response(map[string]any{
		"access_token": f.AccessToken.Reveal(),
		"token_type":   f.answer.TokenType,
		"scopes":       f.scopes,
		"expires_at":   f.expiresAt().Format(time.RFC3339),
		"token_id":     f.TokenID,
		"role":         plan.role,
	}, lease.internalData())
	resp.Secret.TTL = leaseTTL
	resp.Secret.MaxTTL = lifetime
	// A lease that already reaches its hard end cannot be extended; saying
	// so lets Vault Agent fetch a fresh token instead of renewing.
	resp.Secret.Renewable = leaseTTL < lifetime
	resp.Warnings = slices.Concat(plan.warnings, f.warnings, endWarnings)
	return resp, nil
}

const credsHelpSynopsis = "Issue a Beyond Identity access token as a Vault lease."

const credsHelpDescription = `
Reading creds/<role> mints a Beyond Identity access token with the role's
scopes and lifetimes:

  vault read beyondidentity/creds/NAME

Writing narrows it for this one credential: ttl (at most the role's max_ttl)
and scopes (a subset of the role's):

  vault write beyondidentity/creds/NAME ttl=1h scopes=identities:read

The token is minted with a lifetime equal to the lease's hard end (the
smallest of the role's max_ttl, the requested ttl and the mount's max lease
TTL), so it never outlives its lease. The response holds access_token,
token_type, scopes, expires_at, token_id and role.

A renewal, at any point of the lease's life, extends it by the increment
(or the role's ttl) up to its hard end: the issue time plus that lifetime,
never past the token's end. When the lease ends, by expiry, revocation, or
revocation of the Vault token that created it, the token is revoked at
Beyond Identity with the credentials of the application that issued it. A
revocation that fails is reported to Vault and also retried by the plugin
in the background until it succeeds or the token ends.
`
