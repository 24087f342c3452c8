package beyondidentity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// journalMinAge is how old a journal page (or a write-ahead entry of an
// earlier version) must be before recovery acts on it: well beyond a
// request that makes a few calls of up to 5 minutes (request_timeout), so
// that it never revokes the token of a request still running.
var journalMinAge = minAge(journalMinAgeOverride)

// journalMinAgeOverride lets a test build shorten journalMinAge, so that an
// HA test can watch a new leader revoke the tokens of requests that died
// with the old one, within minutes:
//
//	-ldflags "-X github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity.journalMinAgeOverride=20s"
//
// Release builds leave it empty.
var journalMinAgeOverride string

func minAge(override string) time.Duration {
	if d, err := time.ParseDuration(override); err == nil && d > 0 {
		return d
	}
	return 15 * time.Minute
}

// Kinds of the write-ahead entries earlier versions wrote per token, before
// the journal: Vault's rollback still hands any that are left to walRollback.
const (
	walKindToken       = "token"
	walKindStaticToken = "static-token"
)

// walRollback settles the token of a write-ahead entry an earlier version
// left: as the journal's recovery does.
func (b *backend) walRollback(ctx context.Context, req *logical.Request, kind string, data any) error {
	kinds := map[string]string{walKindToken: entryCreds, walKindStaticToken: entryStatic}
	entryKind, ok := kinds[kind]
	if !ok {
		return fmt.Errorf("unknown write-ahead entry kind %q", kind)
	}
	fields, ok := data.(map[string]any)
	if !ok {
		return fmt.Errorf("write-ahead entry of kind %q holds %T, not a token", kind, data)
	}
	var minted issuedToken
	token, err := fromTokenData(fields, &minted)
	if err != nil {
		return err
	}
	if !b.recoverEntry(ctx, req.Storage, journalEntry{issuedToken: minted, Token: token.Reveal(), Kind: entryKind}) {
		return errors.New("the token of a write-ahead entry could be neither revoked nor recorded; Vault's rollback tries again")
	}
	return nil
}

// staticRoleHolds reports whether a static role's record holds the token,
// as its current or a retired one: then the role, not recovery, owns it.
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
