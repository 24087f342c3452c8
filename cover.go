package beyondidentity

import (
	"context"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
)

// What the journal (internal/journal) holds for the plugin: each fresh
// token from the moment everything is known of it until Vault holds its
// lease or its static role holds it, and how recovery settles the token of
// a request that died.

// Kinds of journal entries: what recovery must check before revoking.
const (
	entryCreds  = "creds"  // a creds request's token: revoke it
	entryStatic = "static" // a static role's new token: revoke it unless the role holds it
)

// journalEntry is one covered token, as the journal's pages store it.
type journalEntry struct {
	issuedToken
	Token string `json:"access_token"`
	Kind  string `json:"kind"`
}

// revocationKindOf is the revocation kind of a token of the journal's kind.
func revocationKindOf(entryKind string) string {
	if entryKind == entryStatic {
		return kindStatic
	}
	return kindLease
}

// cover journals a fresh token until it is handed over. A token that ends
// before recovery could act needs no cover (the zero ticket).
func (b *backend) cover(ctx context.Context, s logical.Storage, t issuedToken, kind string) (journal.Ticket, error) {
	return b.journal.Cover(ctx, s, journalEntry{issuedToken: t, Token: t.AccessToken.Reveal(), Kind: kind}, t.endsBy())
}

// coverWhileLearning covers an opaque token before the plugin introspects
// it, since that call may take as long as request_timeout and the node may
// die meanwhile. Until introspection says otherwise, the token may live as
// long as any Beyond Identity token, so that is the end its entry records:
// recovery never counts it ended too soon. A JWT's facts are in the token
// itself, known at once: it is covered once checked (the zero ticket here).
func (b *backend) coverWhileLearning(ctx context.Context, s logical.Storage, minted issuedToken, token *biclient.Token,
	kind string) (journal.Ticket, error) {
	if token.Format != biclient.FormatOpaque {
		return journal.Ticket{}, nil
	}
	unknown := minted
	unknown.EndsBy = maxTime(minted.endsBy(), token.SentAt.Add(biclient.MaxTokenLifetime)).Unix()
	return b.cover(ctx, s, unknown, kind)
}

// recoverEntry settles the token of a request that died, and reports
// whether it is settled: revoked, recorded for the background work, or
// held by its static role.
func (b *backend) recoverEntry(ctx context.Context, s logical.Storage, entry journalEntry) bool {
	t := entry.issuedToken
	t.AccessToken = biclient.NewSecret(entry.Token)
	if entry.Kind == entryStatic {
		if held, err := b.staticRoleHolds(ctx, s, t); held || err != nil {
			return err == nil
		}
	}
	err := b.revokeToken(ctx, s, t, kindRecovered)
	settled := revocationSettled(err)
	b.Logger().Info("recovered a token whose request never finished", "role", t.Role, "token_id", t.TokenID,
		"revoked", err == nil, "settled", settled)
	return settled
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
