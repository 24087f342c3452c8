package beyondidentity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// Retained credentials (retainedPrefix) are those the config no longer
// uses, kept (seal-wrapped) while tokens they issued may be alive: those of
// an application or client the config moved away from, and the previous
// secrets of the configured client. Each lease is revoked with the
// credentials of the application and client that issued its token, since
// Beyond Identity ignores a revocation by any other; and with the secret
// Beyond Identity accepts, since a rotation or a bad write may have
// replaced it.

// retention is how long credentials are kept after the config stops using
// them: no token issued with them can live longer, nor its lease last
// longer, counting a request that still held the old client and minted up
// to request_timeout after the change.
const retention = biclient.MaxTokenLifetime + maxRequestTimeout + expiredMargin

// Why credentials were retained, for operators.
const (
	retainedMoved   = "the config moved to another application or client"
	retainedRotated = "the client's secret was replaced"
	retainedDeleted = "the config was deleted"
)

// retainedApp is a configuration the mount no longer uses and how long it
// is kept.
type retainedApp struct {
	storageConfig
	Reason    string    `json:"reason,omitempty"`
	RetiredAt time.Time `json:"retired_at"`
	KeptUntil time.Time `json:"kept_until"`
}

// retainedEntry is retained credentials as cached: the fingerprint of the
// secret and the client are made on first use.
type retainedEntry struct {
	id          string
	app         *retainedApp
	fingerprint string
	client      *biclient.Client
}

// clientTag names an application and client without revealing anything:
// the first part of every id of their retained credentials.
func clientTag(issuer, clientID string) string {
	sum := sha256.Sum256([]byte(issuer + "\n" + clientID))
	return hex.EncodeToString(sum[:8])
}

// newRetainedID names one retained secret: its client's tag and a random
// part, since a client may have several.
func newRetainedID(cfg *config) string {
	suffix := make([]byte, 4)
	// crypto/rand.Read never fails: it aborts the program instead (Go 1.24+).
	_, _ = rand.Read(suffix)
	return clientTag(cfg.issuer(), cfg.ClientID) + "-" + hex.EncodeToString(suffix)
}

// summary is what an operator may see of retained credentials: never the
// secret.
func (r *retainedApp) summary(id string) map[string]any {
	return map[string]any{
		"id":         id,
		"token_url":  biclient.TokenURL(r.issuer()),
		"client_id":  r.ClientID,
		"reason":     r.Reason,
		"retired_at": r.RetiredAt.UTC().Format(time.RFC3339),
		"kept_until": r.KeptUntil.UTC().Format(time.RFC3339),
	}
}

// noCredentialsError is a token whose application's credentials the plugin
// no longer holds.
type noCredentialsError struct {
	issuer, clientID, current string
}

func (e *noCredentialsError) Error() string {
	now := ""
	if e.current != "" {
		now = " (the mount is now configured for " + e.current + ")"
	}
	return fmt.Sprintf("it was issued by %s to client %s, whose credentials are no longer kept%s: dropped by an "+
		"operator, or past their retention. Beyond Identity would ignore a revocation by any other application, so write "+
		"that application's config again to revoke it, or let it expire", biclient.TokenURL(e.issuer), e.clientID, now)
}

// clientsFor returns the clients to revoke t with, in order: the configured
// one when it is of t's application and client; then, unless the configured
// secret is the one that minted t, the retained secret that did, found by
// its fingerprint. A record written before tokens named their secret gets
// every retained secret of its client instead, newest first.
func (b *backend) clientsFor(ctx context.Context, s logical.Storage, t issuedToken) ([]*biclient.Client, error) {
	current, err := b.client(ctx, s)
	if err != nil && !errors.Is(err, errNotConfigured) {
		return nil, err
	}
	var clients []*biclient.Client
	var tried *biclient.Client
	if current != nil && current.Issuer() == t.Issuer && current.ClientID() == t.ClientID {
		clients, tried = append(clients, current), current
		if t.SecretFingerprint != "" && current.SecretFingerprint() == t.SecretFingerprint {
			return clients, nil
		}
	}
	retained, err := b.retainedClients(ctx, s, t, tried)
	if err != nil {
		return nil, err
	}
	clients = append(clients, retained...)
	if len(clients) == 0 {
		missing := &noCredentialsError{issuer: t.Issuer, clientID: t.ClientID}
		if current != nil {
			missing.current = fmt.Sprintf("%s and client %s", biclient.TokenURL(current.Issuer()), current.ClientID())
		}
		return nil, missing
	}
	return clients, nil
}

// retainedClients returns clients of the retained secrets that may have
// minted t: the one its fingerprint names, or, without one, every retained
// secret of its application and client, newest first; but for the secret
// of tried (when not nil), which is tried already. The retained
// credentials are read from storage once and cached until reset.
func (b *backend) retainedClients(ctx context.Context, s logical.Storage, t issuedToken, tried *biclient.Client) ([]*biclient.Client, error) {
	b.lock.Lock()
	defer b.lock.Unlock()
	if b.retained == nil {
		loaded, err := loadRetained(ctx, s)
		if err != nil {
			return nil, err
		}
		b.retained = loaded
	}
	var clients []*biclient.Client
	for _, entry := range b.retained {
		app := entry.app
		if app.issuer() != t.Issuer || app.ClientID != t.ClientID || (tried != nil && tried.HasSecret(app.config.ClientSecret)) {
			continue
		}
		if entry.fingerprint == "" {
			entry.fingerprint = b.fingerprints.of(ctx, s, app.config.ClientSecret)
		}
		if t.SecretFingerprint != "" && entry.fingerprint != t.SecretFingerprint {
			continue
		}
		if entry.client == nil {
			c, err := b.newClient(app.config, entry.fingerprint)
			if err != nil {
				return nil, fmt.Errorf("retained credentials %s: %w", entry.id, err)
			}
			entry.client = c
		}
		clients = append(clients, entry.client)
		if t.SecretFingerprint != "" {
			break // one secret has that fingerprint
		}
	}
	return clients, nil
}

// loadRetained reads every retained credentials, newest first. One that
// cannot be read is an error: a revocation must not skip the secret that
// may be the one Beyond Identity accepts.
func loadRetained(ctx context.Context, s logical.Storage) ([]*retainedEntry, error) {
	ids, err := s.List(ctx, retainedPrefix)
	if err != nil {
		return nil, fmt.Errorf("listing retained credentials: %w", err)
	}
	entries := make([]*retainedEntry, 0, len(ids))
	for _, id := range ids {
		app, err := readRetained(ctx, s, id)
		if err != nil {
			return nil, err
		}
		if app != nil {
			entries = append(entries, &retainedEntry{id: id, app: app})
		}
	}
	slices.SortFunc(entries, func(a, b *retainedEntry) int { return b.app.RetiredAt.Compare(a.app.RetiredAt) })
	return entries, nil
}

// retain keeps cfg's credentials for the tokens it issued, from now, and
// returns their id. The same secret of the same client retained before is
// kept longer rather than twice. The caller holds the config lock.
func retain(ctx context.Context, s logical.Storage, cfg *config, reason string, now time.Time) (string, error) {
	existing, err := loadRetained(ctx, s)
	if err != nil {
		return "", err
	}
	id := newRetainedID(cfg)
	for _, entry := range existing {
		if entry.app.sameApplication(cfg) && sameSecret(entry.app.config.ClientSecret, cfg.ClientSecret) {
			id = entry.id
			break
		}
	}
	app := retainedApp{
		storageConfig: storageConfig{config: cfg, ClientSecret: cfg.ClientSecret.Reveal()},
		Reason:        reason,
		RetiredAt:     now,
		KeptUntil:     now.Add(retention),
	}
	return id, putJSON(ctx, s, retainedPrefix+id, "the previous credentials", app)
}

func readRetained(ctx context.Context, s logical.Storage, id string) (*retainedApp, error) {
	app := &retainedApp{storageConfig: storageConfig{config: defaultConfig()}}
	if found, err := getJSON(ctx, s, retainedPrefix+id, "retained credentials "+id, app); !found || err != nil {
		return nil, err
	}
	app.config.ClientSecret = biclient.NewSecret(app.ClientSecret)
	return app, nil
}

// listRetained returns the summaries of every retained credentials, oldest
// first.
func listRetained(ctx context.Context, s logical.Storage) ([]map[string]any, error) {
	entries, err := loadRetained(ctx, s)
	if err != nil {
		return nil, err
	}
	summaries := make([]map[string]any, 0, len(entries))
	for _, entry := range slices.Backward(entries) {
		summaries = append(summaries, entry.app.summary(entry.id))
	}
	return summaries, nil
}

// pruneRetained deletes retained credentials past their retention: the
// only way, but for an operator's delete, that they go. It runs with
// Vault's periodic function, on the active node.
func (b *backend) pruneRetained(ctx context.Context, s logical.Storage) error {
	defer b.lockConfig()()
	entries, err := loadRetained(ctx, s)
	if err != nil {
		return err
	}
	now := b.clock.Now()
	for _, entry := range entries {
		if now.Before(entry.app.KeptUntil) {
			continue
		}
		if err := dropRetained(ctx, s, entry.id); err != nil {
			return err
		}
		b.reset()
		b.Logger().Info("dropped retained credentials past their retention", "id", entry.id, "client_id", entry.app.ClientID)
	}
	return nil
}

func dropRetained(ctx context.Context, s logical.Storage, id string) error {
	if err := s.Delete(ctx, retainedPrefix+id); err != nil {
		return fmt.Errorf("deleting retained credentials %s: %w", id, err)
	}
	return nil
}

// retentionReason says why a write that replaces current with cfg keeps
// current's credentials, or "" when it needs not: the tokens current issued
// can only be revoked with its application, client and a secret Beyond
// Identity accepts, and a new secret may be one it does not.
func retentionReason(current, cfg *config) string {
	switch {
	case current == nil:
		return ""
	case !current.sameApplication(cfg):
		return retainedMoved
	case !sameSecret(current.ClientSecret, cfg.ClientSecret):
		return retainedRotated
	}
	return ""
}

// retainedWarning tells the operator that cfg's credentials are kept (as
// id), and how to drop them.
func retainedWarning(reason string, cfg *config, id string, keptUntil time.Time, mount string) string {
	return fmt.Sprintf("%s: the credentials of client %s at %s are kept, seal-wrapped, until %s, so that the tokens they "+
		"issued are still revoked at Beyond Identity with them (vault list %sconfig/retained lists them). To drop them now, run: "+
		"vault delete %sconfig/retained/%s (the tokens they issued then cannot be revoked until they expire)",
		reason, cfg.ClientID, biclient.TokenURL(cfg.issuer()), keptUntil.UTC().Format(time.RFC3339), mount, mount, id)
}
