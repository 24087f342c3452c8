package beyondidentity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// secretTypeToken is the lease type of issued tokens.
const secretTypeToken = "beyondidentity_token"

// expiredMargin is how long after a token's recorded end it is surely dead
// at Beyond Identity too, whatever the skew between the two clocks.
const expiredMargin = time.Minute

var tokenFields = map[string]*framework.FieldSchema{
	"access_token": {Type: framework.TypeString, Description: "The Bearer token."},
	"token_type":   {Type: framework.TypeString, Description: "Always Bearer."},
	"scopes":       {Type: framework.TypeCommaStringSlice, Description: "The scopes Beyond Identity granted."},
	"expires_at":   {Type: framework.TypeString, Description: "RFC 3339 UTC time at which the token stops working."},
	"token_id":     {Type: framework.TypeString, Description: "The token's jti; empty only when it cannot be learned."},
	"role":         {Type: framework.TypeString, Description: "The role that issued the token."},
}

func (b *backend) tokenSecret() *framework.Secret {
	return &framework.Secret{
		Type:   secretTypeToken,
		Fields: tokenFields,
		Renew:  b.tokenRenew,
		Revoke: b.tokenRevoke,
	}
}

// leaseData is what a lease keeps to renew and revoke its token without the
// role, which may be gone by then. It travels in the lease's internal data,
// which Vault stores encrypted and never returns to clients.
type leaseData struct {
	AccessToken biclient.Secret `json:"-"`
	TokenID     string          `json:"token_id"`
	ExpiresAt   int64           `json:"expires_at"` // Unix seconds
	// Issuer and ClientID say which application minted the token: only
	// that application's credentials can revoke it.
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
	Role     string `json:"role"`
	TTL      int64  `json:"ttl"`      // the lease's default increment, seconds
	Lifetime int64  `json:"lifetime"` // from issue to the lease's hard end, seconds
	// EndsBy is the latest the token can end (Unix seconds): only past it
	// does a failed revocation count as done.
	EndsBy int64 `json:"ends_by,omitempty"`
}

// leaseDataJSON is leaseData with the token revealed: the explicit path by
// which it reaches lease storage.
type leaseDataJSON struct {
	leaseData
	AccessToken string `json:"access_token"`
}

func (l leaseData) internalData() map[string]any {
	encoded, _ := json.Marshal(leaseDataJSON{leaseData: l, AccessToken: l.AccessToken.Reveal()})
	var data map[string]any
	_ = json.Unmarshal(encoded, &data)
	return data
}

// leaseFromInternal reads leaseData back. Vault hands internal data over as
// decoded JSON, so a JSON round trip reads numbers of any Go type.
func leaseFromInternal(data map[string]any) (leaseData, error) {
	encoded, err := json.Marshal(data)
	if err != nil {
		return leaseData{}, fmt.Errorf("encoding lease data: %w", err)
	}
	var decoded leaseDataJSON
	if err := json.Unmarshal(encoded, &decoded); err != nil {
		return leaseData{}, fmt.Errorf("decoding lease data: %w", err)
	}
	if decoded.AccessToken == "" || decoded.ExpiresAt == 0 {
		return leaseData{}, errors.New("lease data has no token")
	}
	decoded.leaseData.AccessToken = biclient.NewSecret(decoded.AccessToken)
	return decoded.leaseData, nil
}

func (l leaseData) expiresAt() time.Time { return time.Unix(l.ExpiresAt, 0) }

// surelyExpired reports whether the token is past its latest possible end
// on both clocks.
func (l leaseData) surelyExpired() bool {
	end := l.expiresAt()
	if l.EndsBy > l.ExpiresAt {
		end = time.Unix(l.EndsBy, 0)
	}
	return time.Now().After(end.Add(expiredMargin))
}

// tokenRenew extends a lease by Vault's usual rules, never past the token's
// end at Beyond Identity. It makes no call to Beyond Identity.
func (b *backend) tokenRenew(_ context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	lease, err := leaseFromInternal(req.Secret.InternalData)
	if err != nil {
		return nil, err
	}
	remaining := untilCeil(lease.expiresAt())
	if remaining < time.Second {
		return logical.ErrorResponse("the token ended at %s: it cannot be renewed; read new credentials",
			lease.expiresAt().UTC().Format(time.RFC3339)), nil
	}
	// CalculateTTL's warnings are dropped: Vault's expiration manager runs
	// the same calculation on the result and warns itself.
	ttl, _, err := framework.CalculateTTL(b.System(), req.Secret.Increment, time.Duration(lease.TTL)*time.Second,
		0, 0, time.Duration(lease.Lifetime)*time.Second, req.Secret.IssueTime)
	if err != nil {
		return logical.ErrorResponse("renewing: %s", err), nil
	}
	var warnings []string
	if ttl > remaining {
		ttl = remaining
		warnings = append(warnings, fmt.Sprintf("the lease is capped at the token's end, %s", lease.expiresAt().UTC().Format(time.RFC3339)))
	}
	resp := &logical.Response{Secret: req.Secret, Warnings: warnings}
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = remaining
	b.Logger().Debug("renewed lease", "role", lease.Role, "token_id", lease.TokenID, "ttl", ttl)
	return resp, nil
}

// tokenRevoke revokes the token at Beyond Identity when its lease ends.
func (b *backend) tokenRevoke(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	lease, err := leaseFromInternal(req.Secret.InternalData)
	if err != nil {
		return nil, err
	}
	if err := b.revokeLeaseToken(ctx, req.Storage, lease); err != nil {
		return nil, err
	}
	b.Logger().Info("revoked token", "role", lease.Role, "token_id", lease.TokenID)
	return nil, nil
}

// revokeLeaseToken revokes a token at Beyond Identity. Its nil error is a
// promise that the token no longer works; anything else is returned so that
// Vault retries later.
func (b *backend) revokeLeaseToken(ctx context.Context, s logical.Storage, lease leaseData) error {
	client, err := b.client(ctx, s)
	if err != nil {
		return b.unrevokable(lease, fmt.Errorf("revoking token %s: %w", lease.TokenID, err))
	}
	// Beyond Identity answers 200 to a revocation by another application
	// and leaves the token alone, so that 200 would prove nothing.
	if client.Issuer() != lease.Issuer || client.ClientID() != lease.ClientID {
		return b.unrevokable(lease, fmt.Errorf("revoking token %s: it was issued by %s to client %s, but the mount is now configured for %s "+
			"and client %s, whose revocation Beyond Identity would ignore; configure the original application again to revoke it, "+
			"or let it expire at %s", lease.TokenID, lease.Issuer, lease.ClientID, client.Issuer(), client.ClientID(),
			lease.expiresAt().UTC().Format(time.RFC3339)))
	}
	if err := client.Revoke(ctx, lease.AccessToken); err != nil {
		return b.unrevokable(lease, fmt.Errorf("revoking token %s: %w", lease.TokenID, err))
	}
	return nil
}

// unrevokable settles a revocation that could not be done: a token past its
// end needs none, anything else is an error for Vault to retry.
func (b *backend) unrevokable(lease leaseData, err error) error {
	if lease.surelyExpired() {
		b.Logger().Info("token already expired; nothing to revoke", "role", lease.Role, "token_id", lease.TokenID, "reason", err)
		return nil
	}
	b.Logger().Warn("revocation failed; Vault will retry", "role", lease.Role, "token_id", lease.TokenID, "error", err)
	return err
}
