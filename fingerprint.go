package beyondidentity

import (
	"context"

	"github.com/hashicorp/vault/sdk/helper/salt"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// Each token's records name the client secret that minted it by a keyed
// fingerprint: an HMAC-SHA256 under the mount's salt (sdk/helper/salt, as
// Vault's own engines salt what they must recognise without keeping). A
// revocation then tries the current secret and, when Beyond Identity
// refuses it, that one retained secret: at most two calls however many
// secrets were written since, and a fingerprint that helps no one guess
// the secret.

// fingerprints computes secrets' fingerprints under the mount's salt,
// loading (or, on the primary's first use, creating) the salt once. The
// backend's lock guards it: its users hold that lock already.
type fingerprints struct {
	salt *salt.Salt
}

// of is the fingerprint of secret, or "" when the salt cannot be had (a
// performance secondary before the primary made one, a storage error):
// the token's revocation then tries every retained secret of its client.
func (f *fingerprints) of(ctx context.Context, s logical.Storage, secret biclient.Secret) string {
	if f.load(ctx, s) != nil {
		return ""
	}
	return f.salt.GetHMAC(secret.Reveal())
}

// load loads the salt, making it on the primary's first use, so that
// performance secondaries, which cannot write it, find it replicated.
func (f *fingerprints) load(ctx context.Context, s logical.Storage) error {
	if f.salt != nil {
		return nil
	}
	loaded, err := salt.NewSalt(ctx, s, &salt.Config{Location: saltKey})
	if err != nil {
		return err
	}
	f.salt = loaded
	return nil
}
