package beyondidentity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// retainedPrefix holds the credentials of applications the config used to
// point at, kept (seal-wrapped) while tokens they issued may be alive, so
// that each lease is revoked with the credentials of the application that
// issued its token: Beyond Identity ignores a revocation by any other.
const retainedPrefix = "retained/"

// retention is how long a previous application's credentials are kept
// after the config moves away from them: no token issued before the move
// can live longer, nor its lease last longer.
const retention = biclient.MaxTokenLifetime + expiredMargin

// retainedApp is a previous configuration and how long it is kept.
type retainedApp struct {
	storageConfig
	RetiredAt time.Time `json:"retired_at"`
	KeptUntil time.Time `json:"kept_until"`
}

// retainedID names the credentials of one application and client.
func retainedID(issuer, clientID string) string {
	sum := sha256.Sum256([]byte(issuer + "\n" + clientID))
	return hex.EncodeToString(sum[:8])
}

// summary is what an operator may see of retained credentials: never the
// secret.
func (r *retainedApp) summary(id string) map[string]any {
	return map[string]any{
		"id":         id,
		"token_url":  biclient.TokenURL(r.issuer()),
		"client_id":  r.ClientID,
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
	now := "the mount is not configured"
	if e.current != "" {
		now = "the mount is now configured for " + e.current
	}
	return fmt.Sprintf("it was issued by %s to client %s, but %s and the credentials of that application are no longer kept "+
		"(dropped by an operator, or past their retention); Beyond Identity would ignore a revocation by any other application, "+
		"so write that application's config again to revoke it, or let it expire", biclient.TokenURL(e.issuer), e.clientID, now)
}

// clientFor returns a client with the credentials of the application that
// issued a token: the configured one, or one retained after the config
// moved away from it or was deleted.
func (b *backend) clientFor(ctx context.Context, s logical.Storage, issuer, clientID string) (*biclient.Client, error) {
	current, err := b.client(ctx, s)
	switch {
	case err == nil && current.Issuer() == issuer && current.ClientID() == clientID:
		return current, nil
	case err != nil && !errors.Is(err, errNotConfigured):
		return nil, err
	}
	retained, err := b.retainedClient(ctx, s, retainedID(issuer, clientID))
	if err != nil || retained != nil {
		return retained, err
	}
	missing := &noCredentialsError{issuer: issuer, clientID: clientID}
	if current != nil {
		missing.current = fmt.Sprintf("%s and client %s", biclient.TokenURL(current.Issuer()), current.ClientID())
	}
	return nil, missing
}

// retainedClient returns the cached client of retained credentials, or nil
// when there are none under id.
func (b *backend) retainedClient(ctx context.Context, s logical.Storage, id string) (*biclient.Client, error) {
	b.lock.RLock()
	c := b.retainedClients[id]
	b.lock.RUnlock()
	if c != nil {
		return c, nil
	}
	b.lock.Lock()
	defer b.lock.Unlock()
	if c := b.retainedClients[id]; c != nil {
		return c, nil
	}
	app, err := readRetained(ctx, s, id)
	if err != nil || app == nil {
		return nil, err
	}
	c, err = b.newClient(app.config)
	if err != nil {
		return nil, fmt.Errorf("retained credentials %s: %w", id, err)
	}
	b.retainedClients[id] = c
	return c, nil
}

// retain keeps cfg's credentials for the tokens it issued, from now.
func retain(ctx context.Context, s logical.Storage, cfg *config, now time.Time) error {
	app := retainedApp{
		storageConfig: storageConfig{config: cfg, ClientSecret: cfg.ClientSecret.Reveal()},
		RetiredAt:     now,
		KeptUntil:     now.Add(retention),
	}
	return putJSON(ctx, s, retainedPrefix+retainedID(cfg.issuer(), cfg.ClientID), "the previous application's credentials", app)
}

func readRetained(ctx context.Context, s logical.Storage, id string) (*retainedApp, error) {
	app := &retainedApp{storageConfig: storageConfig{config: defaultConfig()}}
	if found, err := getJSON(ctx, s, retainedPrefix+id, "retained credentials "+id, app); !found || err != nil {
		return nil, err
	}
	app.config.ClientSecret = biclient.NewSecret(app.ClientSecret)
	return app, nil
}

// listRetained returns the summaries of every retained application, oldest
// first.
func listRetained(ctx context.Context, s logical.Storage) ([]map[string]any, error) {
	ids, err := s.List(ctx, retainedPrefix)
	if err != nil {
		return nil, fmt.Errorf("listing retained credentials: %w", err)
	}
	apps := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		app, err := readRetained(ctx, s, id)
		if err != nil {
			return nil, err
		}
		if app != nil {
			apps = append(apps, app.summary(id))
		}
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i]["retired_at"].(string) < apps[j]["retired_at"].(string) })
	return apps, nil
}

// pruneRetained deletes retained credentials past their retention. It runs
// with Vault's periodic function, on the active node.
func (b *backend) pruneRetained(ctx context.Context, s logical.Storage) error {
	ids, err := s.List(ctx, retainedPrefix)
	if err != nil {
		return fmt.Errorf("listing retained credentials: %w", err)
	}
	now := b.clock.Now()
	for _, id := range ids {
		app, err := readRetained(ctx, s, id)
		if err != nil || app == nil || now.Before(app.KeptUntil) {
			continue
		}
		if err := dropRetained(ctx, s, id); err != nil {
			return err
		}
		b.reset()
		b.Logger().Info("dropped retained credentials past their retention", "id", id, "client_id", app.ClientID)
	}
	return nil
}

func dropRetained(ctx context.Context, s logical.Storage, id string) error {
	if err := s.Delete(ctx, retainedPrefix+id); err != nil {
		return fmt.Errorf("deleting retained credentials %s: %w", id, err)
	}
	return nil
}
