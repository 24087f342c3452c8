package beyondidentity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// walKindToken marks the write-ahead entry of a token minted by a creds
// request. The entry exists while the request works on the token: if the
// request dies meanwhile (a crash, a lost leader), Vault's periodic rollback
// on the active node finds the entry and revokes the token. The request
// deletes the entry just before returning the credential; a crash in the
// instant between that and Vault storing the lease is the one gap left, and
// the token then expires on its own.
const walKindToken = "token"

// walKindStaticToken marks the write-ahead entry of a static role's new
// token, which lives until the role's record holds it. The rollback leaves
// a token the record holds alone, so the entry may outlive its purpose.
const walKindStaticToken = "static-token"

// walRollbackMinAge is how old an entry must be before the rollback acts on
// it: well beyond a request that makes a few calls of up to 5 minutes
// (request_timeout), so that it never revokes the token of a request still
// running.
var walRollbackMinAge = rollbackMinAge(walRollbackMinAgeOverride)

// walRollbackMinAgeOverride lets a test build shorten walRollbackMinAge, so
// that an HA test can watch a new leader's rollback revoke the tokens of
// requests that died with the old one, within minutes:
//
//	-ldflags "-X github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity.walRollbackMinAgeOverride=20s"
//
// Release builds leave it empty.
var walRollbackMinAgeOverride string

func rollbackMinAge(override string) time.Duration {
	if d, err := time.ParseDuration(override); err == nil && d > 0 {
		return d
	}
	return 15 * time.Minute
}

// coverToken writes the write-ahead entry of a fresh token and returns its
// id. A token that ends before the rollback could act on its entry needs
// none: coverToken then writes nothing and returns "".
func (b *backend) coverToken(ctx context.Context, s logical.Storage, t issuedToken, kind string) (string, error) {
	if t.endsBy().Sub(b.clock.Now()) < walRollbackMinAge {
		return "", nil
	}
	return framework.PutWAL(ctx, s, kind, withToken(t, t.AccessToken))
}

// uncoverToken deletes the entry coverToken wrote, if any.
func uncoverToken(ctx context.Context, s logical.Storage, walID string) error {
	if walID == "" {
		return nil
	}
	return framework.DeleteWAL(ctx, s, walID)
}

// walRollback revokes the token of a request that never finished. When the
// revocation fails, the token is recorded for the background worker, and
// the entry goes; only if that fails too does the entry stay, for Vault to
// try again at its next rollback.
func (b *backend) walRollback(ctx context.Context, req *logical.Request, kind string, data any) error {
	if kind != walKindToken && kind != walKindStaticToken {
		return fmt.Errorf("unknown write-ahead entry kind %q", kind)
	}
	entry, ok := data.(map[string]any)
	if !ok {
		return fmt.Errorf("write-ahead entry of kind %q holds %T, not a token", kind, data)
	}
	var minted issuedToken
	token, err := fromTokenData(entry, &minted)
	if err != nil {
		return err
	}
	minted.AccessToken = token
	if kind == walKindStaticToken {
		if held, err := b.staticRoleHolds(ctx, req.Storage, minted); held || err != nil {
			return err
		}
	}
	err = b.revokeToken(ctx, req.Storage, minted)
	var pending *revocationError
	if err != nil && (!errors.As(err, &pending) || !pending.queued) {
		return err
	}
	b.Logger().Info("rolled back a token whose request never finished", "role", minted.Role, "token_id", minted.TokenID,
		"revoked", err == nil)
	return nil
}

// staticRoleHolds reports whether a static role's record holds the token,
// as its current or a retired one: then the role, not the rollback, owns it.
func (b *backend) staticRoleHolds(ctx context.Context, s logical.Storage, t issuedToken) (bool, error) {
	defer b.lockStaticRole(t.Role)()
	r, err := readStaticRole(ctx, s, t.Role)
	if err != nil || r == nil {
		return false, err
	}
	for _, held := range r.tokens() {
		if held.Token == t.AccessToken.Reveal() {
			return true, nil
		}
	}
	return false, nil
}
