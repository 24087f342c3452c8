// Package beyondidentity is a Vault secrets engine that issues Beyond
// Identity API access tokens as Vault leases and revokes them at Beyond
// Identity when the lease ends.
package beyondidentity

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// Version is the plugin's semantic version, reported to Vault as its running
// version. Release builds set it with
// -ldflags "-X github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity.Version=v1.2.3".
var Version = "v0.1.0-dev"

// errNotConfigured is returned by client() before config is written.
var errNotConfigured = errors.New("the mount is not configured: write its config first")

// Factory creates the backend for Vault.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend()
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

// backend is the secrets engine: one framework.Backend plus the Beyond
// Identity client built from the stored config.
type backend struct {
	*framework.Backend

	// lock guards biClient. Requests read it under the read lock; only
	// building it from storage and reset() take the write lock. No lock is
	// held across a call to Beyond Identity.
	lock     sync.RWMutex
	biClient *biclient.Client

	// limiter is the mount's bound on concurrent calls. It outlives the
	// clients that config changes replace, and is resized when a client is
	// built from a config with another max_concurrent_requests.
	limiter *biclient.Limiter
}

func newBackend() *backend {
	b := &backend{limiter: biclient.NewLimiter(defaultMaxConcurrent)}
	b.Backend = &framework.Backend{
		Help:        strings.TrimSpace(backendHelp),
		BackendType: logical.TypeLogical,
		PathsSpecial: &logical.Paths{
			SealWrapStorage: []string{configPath, rolePrefix},
			// A write-ahead entry belongs to the node that minted its
			// token, and performance secondaries mint their own.
			LocalStorage: []string{framework.WALPrefix},
		},
		Paths: framework.PathAppend(
			[]*framework.Path{b.pathConfig()},
			b.pathRoles(),
			[]*framework.Path{b.pathCreds()},
		),
		Secrets:           []*framework.Secret{b.tokenSecret()},
		WALRollback:       b.walRollback,
		WALRollbackMinAge: walRollbackMinAge,
		Invalidate:        b.invalidate,
		RunningVersion:    Version,
	}
	return b
}

// HandleRequest and HandleExistenceCheck let custom_claims arrive as a JSON
// string as well as an object: the vault CLI sends every key=value pair as a
// string, and a framework.TypeMap field would refuse it. Vault runs the
// existence check first, so both must convert it.
func (b *backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if errResp := decodeClaimsField(req); errResp != nil {
		return errResp, nil
	}
	return b.Backend.HandleRequest(ctx, req)
}

// HandleExistenceCheck implements logical.Backend; see HandleRequest.
func (b *backend) HandleExistenceCheck(ctx context.Context, req *logical.Request) (bool, bool, error) {
	if errResp := decodeClaimsField(req); errResp != nil {
		return false, false, errutil.UserError{Err: errResp.Error().Error()}
	}
	return b.Backend.HandleExistenceCheck(ctx, req)
}

// decodeClaimsField replaces a role write's custom_claims string with the
// object it holds.
func decodeClaimsField(req *logical.Request) *logical.Response {
	raw, isString := req.Data["custom_claims"].(string)
	if !isString || !strings.HasPrefix(req.Path, rolePrefix) {
		return nil
	}
	claims, errResp := decodeClaimsString(raw)
	if errResp != nil {
		return errResp
	}
	req.Data["custom_claims"] = claims
	return nil
}

// forwarded is an operation that writes storage or changes state at Beyond
// Identity: performance standbys and secondaries forward it to the active
// node of the primary cluster instead of running it themselves.
func forwarded(callback framework.OperationFunc, summary string) *framework.PathOperation {
	return &framework.PathOperation{
		Callback:                    callback,
		Summary:                     summary,
		ForwardPerformanceStandby:   true,
		ForwardPerformanceSecondary: true,
	}
}

// invalidate drops the cached client when another node changes the config.
func (b *backend) invalidate(_ context.Context, key string) {
	if key == configPath {
		b.reset()
	}
}

// reset drops everything derived from the config.
func (b *backend) reset() {
	b.lock.Lock()
	defer b.lock.Unlock()
	if b.biClient != nil {
		b.biClient.CloseIdleConnections()
	}
	b.biClient = nil
}

// client returns the Beyond Identity client for the stored config, building
// it on first use. It returns errNotConfigured before config is written.
func (b *backend) client(ctx context.Context, s logical.Storage) (*biclient.Client, error) {
	b.lock.RLock()
	c := b.biClient
	b.lock.RUnlock()
	if c != nil {
		return c, nil
	}

	b.lock.Lock()
	defer b.lock.Unlock()
	// Another request may have built it while we waited for the write lock.
	if b.biClient != nil {
		return b.biClient, nil
	}
	cfg, err := readConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, errNotConfigured
	}
	b.limiter.SetCapacity(cfg.MaxConcurrent)
	c, err = cfg.newClient(b.limiter)
	if err != nil {
		return nil, err
	}
	b.biClient = c
	return c, nil
}

const backendHelp = `
The Beyond Identity secrets engine issues Beyond Identity Management API
access tokens as Vault leases.

Store a Beyond Identity application's client credentials at "config", define
roles mapped to sets of scopes at "roles/<name>", and read tokens from
"creds/<name>". Each token is minted with the client-credentials grant for
the lifetime of its lease and revoked at Beyond Identity when the lease ends.
`
