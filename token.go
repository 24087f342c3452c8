package beyondidentity

import (
	"encoding/json"
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

// storedToken is a token as every record stores it: a static role's
// tokens, a revocation record, a journal entry and a lease's data each
// embed it. It is what revoking the token takes (issuedToken), its token
// stored under access_token: the one field by which a token reaches
// storage, last so that each record keeps the order of its fields. A
// revoked token's record keeps no token: then access_token is absent.
type storedToken struct {
	issuedToken
	// AccessToken holds the token in the record, in place of the one
	// issuedToken keeps out of its JSON, which it shadows and leaves
	// empty: a record holds its token once.
	AccessToken storedSecret `json:"access_token,omitzero"`
}

// stored is the token as a record stores it.
func stored(t issuedToken) storedToken {
	token := storedSecret{t.AccessToken}
	t.AccessToken = biclient.Secret{}
	return storedToken{issuedToken: t, AccessToken: token}
}

// token is the stored token, ready to revoke: the one way back from a
// record. Whether it is a static role's, for a record written before
// tokens said so, is the record's to say (staticBy).
func (s storedToken) token() issuedToken {
	t := s.issuedToken
	t.AccessToken = s.AccessToken.Secret
	return t
}

// storedSecret is a token in a record: its JSON is the token, which is how
// storage keeps it, while every fmt verb still prints it redacted. It is
// never part of a value handed to a log line or a response: issuedToken,
// which the plugin passes around, keeps its token out of its JSON.
type storedSecret struct{ biclient.Secret }

func (s storedSecret) MarshalJSON() ([]byte, error) { return json.Marshal(s.Reveal()) }

func (s *storedSecret) UnmarshalJSON(data []byte) error {
	var token string
	if err := json.Unmarshal(data, &token); err != nil {
		return err
	}
	s.Secret = biclient.NewSecret(token)
	return nil
}
