package beyondidentity

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// walKindToken marks the write-ahead entry of a token minted by a creds
// request. The entry exists only while the request runs: if the request dies
// before the token's lease exists (a crash, a lost leader), Vault's periodic
// rollback finds the entry and revokes the token.
const walKindToken = "token"

// walRollbackMinAge is how old an entry must be before the rollback acts on
// it: far longer than any request lives.
const walRollbackMinAge = 5 * time.Minute

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
