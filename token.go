package beyondidentity

import (
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// expiredMargin is how long after a token's recorded end it is surely dead
// at Beyond Identity too, whatever the skew between the two clocks.
const expiredMargin = time.Minute

// shortLifeTolerance absorbs clock skew and latency before a token living
// shorter than asked is worth a warning.
const shortLifeTolerance = 5 * time.Second

// issuedToken is what the plugin must know of a token to revoke it: the
// token, the application that issued it, and when it ends.
type issuedToken struct {
	AccessToken biclient.Secret `json:"-"`
	TokenID     string          `json:"token_id"`
	Role        string          `json:"role"`
	// Issuer and ClientID say which application minted the token: only
	// that application's credentials can revoke it.
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
	// ExpiresAt is the earliest the token can end (Unix seconds): leases
	// and renewals never pass it.
	ExpiresAt int64 `json:"expires_at"`
	// EndsBy is the latest the token can end (Unix seconds): only past it
	// does a failed revocation count as done.
	EndsBy int64 `json:"ends_by,omitempty"`
	// Static says Role is a static role, whose token this is, not a
	// role of leases (the two may share a name).
	Static bool `json:"static,omitempty"`
	// SecretFingerprint names the client secret that minted the token by
	// a keyed hash (fingerprint.go), never the secret: revoking the token
	// tries the current secret, then that one. Empty in records written
	// before tokens said so.
	SecretFingerprint string `json:"secret_fingerprint,omitempty"`
}

// describe names the token in messages, by its id when known.
func (t issuedToken) describe() string {
	if t.TokenID == "" {
		return "the token (its id is unknown)"
	}
	return "token " + t.TokenID
}

func (t issuedToken) expiresAt() time.Time { return time.Unix(t.ExpiresAt, 0).UTC() }

// endsBy is the latest end the plugin knows of, on either clock.
func (t issuedToken) endsBy() time.Time {
	return time.Unix(max(t.EndsBy, t.ExpiresAt), 0).UTC()
}

// surelyExpired reports whether the token is past its latest possible end
// on both clocks.
func (t issuedToken) surelyExpired(now time.Time) bool {
	return now.After(t.endsBy().Add(expiredMargin))
}
