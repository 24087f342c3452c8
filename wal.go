package beyondidentity

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// walKindToken marks the write-ahead entry of a token minted by a creds
// request. The entry exists while the request works on the token: if the
// request dies meanwhile (a crash, a lost leader), or fails and cannot
// revoke the token, Vault's periodic rollback finds the entry and revokes
// it. The request deletes the entry just before returning the credential;
// a crash in the instant between that and Vault storing the lease is the
// one gap left, and the token then expires on its own.
const walKindToken = "token"

// walRollbackMinAge is how old an entry must be before the rollback acts on
// it: well beyond a request that makes a few calls of up to 5 minutes
// (request_timeout), so that it never revokes the token of a request still
// running.
const walRollbackMinAge = 15 * time.Minute

// walRollback revokes the token of a request that never finished. An error
// keeps the entry, and Vault tries again at its next rollback.
func (b *backend) walRollback(ctx context.Context, req *logical.Request, kind string, data any) error {
	if kind != walKindToken {
		return fmt.Errorf("unknown write-ahead entry kind %q", kind)
	}
	entry, ok := data.(map[string]any)
	if !ok {
		return fmt.Errorf("write-ahead entry of kind %q holds %T, not a token", kind, data)
	}
	minted, err := leaseFromInternal(entry)
	if err != nil {
		return err
	}
	if err := b.revokeLeaseToken(ctx, req.Storage, minted); err != nil {
		return err
	}
	b.Logger().Info("rolled back a token whose request never finished", "role", minted.Role, "token_id", minted.TokenID)
	return nil
}
