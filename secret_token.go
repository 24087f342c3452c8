package beyondidentity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// secretTypeToken is the lease type of issued tokens.
const secretTypeToken = "beyondidentity_token"

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
	storedToken
	TTL      int64 `json:"ttl"`      // the lease's default increment, seconds
	Lifetime int64 `json:"lifetime"` // from issue to the lease's hard end, seconds
	// EntityID is the Vault entity that read the credential, when its token
	// had one: who asked, in the lease, never in a metric.
	EntityID string `json:"entity_id,omitempty"`
}

// internalData is the lease's internal data: the JSON fields of leaseData,
// the token's among them. It is built field by field rather than by a JSON
// round trip, once per credential; a test keeps the two equal.
func (l leaseData) internalData() map[string]any {
	data := map[string]any{
		"access_token": l.AccessToken.Reveal(),
		"token_id":     l.TokenID,
		"role":         l.Role,
		"issuer":       l.Issuer,
		"client_id":    l.ClientID,
		"expires_at":   l.ExpiresAt,
		"ttl":          l.TTL,
		"lifetime":     l.Lifetime,
	}
	if l.EndsBy != 0 { // omitempty
		data["ends_by"] = l.EndsBy
	}
	if l.EntityID != "" { // omitempty
		data["entity_id"] = l.EntityID
	}
	if l.Static { // omitempty; never so for a lease
		data["static"] = true
	}
	if l.SecretFingerprint != "" { // omitempty
		data["secret_fingerprint"] = l.SecretFingerprint
	}
	return data
}

// leaseFromInternal reads a lease's internal data. Vault hands it over as
// decoded JSON, so a JSON round trip reads numbers of any Go type.
func leaseFromInternal(data map[string]any) (leaseData, error) {
	var lease leaseData
	encoded, err := json.Marshal(data)
	if err == nil {
		err = json.Unmarshal(encoded, &lease)
	}
	switch {
	case err != nil:
		return leaseData{}, fmt.Errorf("decoding lease data: %w", err)
	case lease.AccessToken.IsZero():
		return leaseData{}, errors.New("lease data has no token")
	}
	return lease, nil
}

// hardEnd is the end no renewal passes: the lease's lifetime counted from
// its issue, or the token's end when that comes first. issued is the
// lease's issue time truncated to the second, as Vault counts it.
func (l leaseData) hardEnd(issued time.Time) time.Time {
	end := issued.Add(time.Duration(l.Lifetime) * time.Second)
	if tokenEnd := l.expiresAt(); tokenEnd.Before(end) {
		return tokenEnd
	}
	return end
}

// tokenRenew extends a lease by Vault's usual rules up to its hard end. It
// makes no call to Beyond Identity. Vault measures the MaxTTL of a renewal
// from the lease's issue time, so that is what it is given; the TTL comes
// from the same arithmetic Vault applies afterwards (framework.CalculateTTL).
func (b *backend) tokenRenew(_ context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	lease, err := leaseFromInternal(req.Secret.InternalData)
	if err != nil {
		return nil, err
	}
	issued := req.Secret.IssueTime
	if issued.IsZero() {
		issued = b.clock.Now()
	}
	issued = issued.Truncate(time.Second)
	hardEnd := lease.hardEnd(issued)
	if hardEnd.Sub(b.clock.Now()) < time.Second {
		return logical.ErrorResponse("the lease reached its hard end at %s: it cannot be renewed; read new credentials",
			hardEnd.UTC().Format(time.RFC3339)), nil
	}
	maxTTL := hardEnd.Sub(issued)
	// CalculateTTL's warnings are dropped: Vault's expiration manager runs
	// the same calculation on the result and warns itself.
	ttl, _, err := framework.CalculateTTL(b.System(), req.Secret.Increment, time.Duration(lease.TTL)*time.Second,
		0, maxTTL, 0, issued)
	if err != nil {
		return logical.ErrorResponse("renewing: %s", err), nil
	}
	resp := &logical.Response{Secret: req.Secret}
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = maxTTL
	b.Logger().Debug("renewed lease", "role", lease.Role, "token_id", lease.TokenID, "ttl", ttl.String(), "hard_end", hardEnd)
	return resp, nil
}

// tokenRevoke revokes the token at Beyond Identity when its lease ends.
func (b *backend) tokenRevoke(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	lease, err := leaseFromInternal(req.Secret.InternalData)
	if err != nil {
		return nil, err
	}
	if err := b.revokeToken(ctx, req.Storage, lease.token(), kindLease); err != nil {
		return nil, err
	}
	b.Logger().Info("revoked token", "role", lease.Role, "token_id", lease.TokenID)
	return nil, nil
}
