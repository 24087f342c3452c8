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
func (b *backend) coverToken(ctx context.Context, s logical.Storage, t issuedToken) (string, error) {
	if t.endsBy().Sub(b.clock.Now()) < walRollbackMinAge {
		return "", nil
	}
	return framework.PutWAL(ctx, s, walKindToken, withToken(t, t.AccessToken))
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
	if kind != walKindToken {
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
	err = b.revokeToken(ctx, req.Storage, minted)
	var pending *revocationError
	if err != nil && !(errors.As(err, &pending) && pending.queued) {
		return err
	}
	b.Logger().Info("rolled back a token whose request never finished", "role", minted.Role, "token_id", minted.TokenID,
		"revoked", err == nil)
	return nil
}
