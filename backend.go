// Package beyondidentity is a Vault secrets engine that issues Beyond
// Identity API access tokens as Vault leases and revokes them at Beyond
// Identity when the lease ends.
package beyondidentity

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/helper/salt"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/clock"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/journal"
)

// Every path and storage key of the mount. A path family's handlers and a
// record's storage both name their prefix from here, so that no record
// type depends on a path file, nor a path file on another for a prefix.
// Everything under them that holds the client secret or a token is
// seal-wrapped (newBackend).
const (
	// configPath is the storage key and the path of the mount's
	// configuration.
	configPath = "config"
	// retainedPrefix is the storage prefix of retained credentials
	// (retained.go), whose path is config/retained/.
	retainedPrefix = "retained/"
	// rolePrefix is the storage prefix and path of roles of leases.
	rolePrefix = "roles/"
	// credsPrefix is the path that issues a role's credential as a lease.
	credsPrefix = "creds/"
	// staticRolePrefix is the storage prefix and path of static roles. A
	// record holds the role's settings and its tokens.
	staticRolePrefix = "static-roles/"
	// staticCredsPrefix is the path that hands out a static role's token.
	staticCredsPrefix = "static-creds/"
	// rotateRolePrefix is the path that rotates a static role at once.
	rotateRolePrefix = "rotate-role/"
	// revocationPrefix is the storage prefix and path of the revocations
	// the plugin owes or has done (revocation.go); node-local.
	revocationPrefix = "revocations/"
	// metricsPath is the path of the mount's counters.
	metricsPath = "metrics"
	// saltKey is where the mount's salt is stored (fingerprint.go).
	saltKey = salt.DefaultLocation
)

// Version is the plugin's semantic version, reported to Vault as its running
// version. Release builds set it with
// -ldflags "-X github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity.Version=v1.2.3".
var Version = "v0.1.0-dev"

// Factory creates the backend for Vault. It makes no call to Vault: that
// waits for the first request, or the first event (events.go).
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend()
	if conf.System != nil {
		withView := *conf
		withView.System = newCachedSystemView(conf.System, func() time.Time { return b.clock.Now() })
		conf = &withView
	}
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	// The journal logs through Vault's logger, which Setup provides.
	b.journal = b.newJournal()
	return b, nil
}

// backend is the secrets engine: one framework.Backend plus the Beyond
// Identity client built from the stored config, and the background work.
//
// Locks nest in this order, outer first; a lock is never taken while one
// that comes after it is held, and none is held across a call to Beyond
// Identity but a static role's own, across its rotation:
//
//  1. background.mu: starting and stopping the background loop, which
//     waits for the items it started (and they take the locks below).
//  2. staticRoleLocks[name]: one static role, across its rotation, and a
//     role write of the same name (a role and a static role never share
//     one).
//  3. configLock: config writes and deletes, drops of retained credentials,
//     and the store of a static role's first token.
//  4. revocationLocks[key]: one revocation record's reads and writes.
//  5. lock: the cached clients, retained credentials and the salt of the
//     secrets' fingerprints.
//  6. the leaves, which take no other: queue.mu, roles.mu,
//     identities.mu, events.mu, pendingRevocations.mu, each keyLocks' own
//     and each of the system view's answers (system_view.go).
type backend struct {
	*framework.Backend

	// clock is the time the backend decides by (everything but Vault's own
	// TTL arithmetic); clientClock times the clients' waits between
	// attempts. Both are the system clock but in tests, which skip the
	// waits.
	clock, clientClock clock.Clock

	// lock guards biClient, retained and fingerprints. Requests read
	// biClient under the read lock; building from storage and reset() take
	// the write lock.
	lock     sync.RWMutex
	biClient *biclient.Client
	// retained are the retained credentials, newest first, as last read
	// from storage; nil until needed.
	retained []*retainedEntry
	// fingerprints name the client secrets that mint tokens.
	fingerprints fingerprints
	// configLock serialises config writes and deletes and the drops of
	// retained credentials.
	configLock sync.Mutex
	// staticRoleLocks guard each static role across its rotation;
	// revocationLocks each revocation record's reads and writes.
	staticRoleLocks, revocationLocks keyLocks

	// roles caches the roles credentials are issued from; identities the
	// entities that read them, for a second.
	roles      roleCache
	identities identityCache

	// journal covers fresh tokens until Vault holds their lease (fresh.go).
	journal *journal.Journal[journalEntry]

	// limits are the mount's bounds on concurrent calls. They outlive the
	// clients that config changes replace, and are resized when a client is
	// built from a config with another max_concurrent_requests.
	limits callLimits

	// queue is the background work's (queue.go); background is its loop
	// while it runs.
	queue      *workQueue
	background backgroundLoop

	// metrics are the mount's counters; pendingRevocations the failed
	// revocations the background work retries.
	metrics            *metrics
	pendingRevocations pendingSet
	// events wait here to be sent to Vault.
	events *eventSender
}

// backgroundLoop is the schedule's loop while it runs: stop ends it, and
// done is closed once it has.
type backgroundLoop struct {
	mu   sync.Mutex
	stop context.CancelFunc
	done chan struct{}
}

// lockConfig takes configLock and returns its release.
func (b *backend) lockConfig() (unlock func()) {
	b.configLock.Lock()
	return b.configLock.Unlock
}

// lockStaticRole takes the lock of one static role: a write, a rotate-role
// and the background work never work on the same role at once. It is
// held across the mint of a new token, so that a role never gets two; it
// is the role's own, so another role never waits for it.
func (b *backend) lockStaticRole(name string) (unlock func()) {
	return b.staticRoleLocks.lock(name)
}

// lockRevocation takes the lock of one revocation record, for its reads
// and writes only: never across a call to Beyond Identity.
func (b *backend) lockRevocation(key string) (unlock func()) {
	return b.revocationLocks.lock(key)
}

func newBackend() *backend {
	b := &backend{
		clock:       clock.Real{},
		clientClock: clock.Real{},
		limits: callLimits{
			issue:  biclient.NewLimiter(defaultMaxConcurrent),
			revoke: biclient.NewLimiter(defaultMaxConcurrent),
		},
		queue: newWorkQueue(),
	}
	b.metrics = newMetrics(b)
	b.events = newEventSender(b)
	b.Backend = &framework.Backend{
		Help:        strings.TrimSpace(backendHelp),
		BackendType: logical.TypeLogical,
		PathsSpecial: &logical.Paths{
			// Everything that holds the client secret or a token.
			SealWrapStorage: []string{configPath, rolePrefix, staticRolePrefix, retainedPrefix, revocationPrefix, journal.Prefix, saltKey},
			// The journal and a failed revocation belong to the cluster
			// that minted the token: performance secondaries mint, lease
			// and revoke their own.
			LocalStorage: []string{journal.Prefix, revocationPrefix},
		},
		Paths: framework.PathAppend(
			b.pathConfig(),
			b.pathRetained(),
			b.pathRoles(),
			[]*framework.Path{b.pathCreds()},
			b.pathStaticRoles(),
			[]*framework.Path{b.pathStaticCreds()},
			[]*framework.Path{b.pathRotateRole()},
			b.pathRevocations(),
			[]*framework.Path{b.pathMetrics()},
		),
		Secrets:        []*framework.Secret{b.tokenSecret()},
		InitializeFunc: b.initialize,
		PeriodicFunc:   b.periodic,
		Clean:          b.clean,
		Invalidate:     b.invalidate,
		RunningVersion: Version,
	}
	return b
}

// newJournal builds the journal on the backend's clock, counting its
// writes in the metrics.
func (b *backend) newJournal() *journal.Journal[journalEntry] {
	return journal.New[journalEntry](journal.Config{
		Clock:  b.clock,
		Logger: b.Logger(),
		Committed: func(op string, commits, tokens int) {
			b.metrics.journalCommits.WithLabelValues(op).Add(float64(commits))
			b.metrics.journalTokens.WithLabelValues(op).Add(float64(tokens))
		},
	})
}

// The background work starts and stops here, and only here.

// initialize starts the background loop on the node that owns the mount's
// leases: Vault calls it on the active node after a mount, an unseal, a
// failover or a plugin reload. The loop first finds the work a previous
// process or node left in storage.
func (b *backend) initialize(ctx context.Context, req *logical.InitializationRequest) error {
	state := b.System().ReplicationState()
	if state.HasState(consts.ReplicationPerformanceStandby) || state.HasState(consts.ReplicationDRSecondary) {
		return nil
	}
	b.lock.Lock()
	err := b.fingerprints.load(ctx, req.Storage)
	b.lock.Unlock()
	if err != nil {
		b.Logger().Debug("the salt of secret fingerprints is not there yet", "error", err)
	}
	b.background.mu.Lock()
	defer b.background.mu.Unlock()
	b.stopBackgroundLocked()
	// The loop outlives the request that starts it (Vault's
	// initialization): its context ends with clean, not with that request.
	loop, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.background.stop, b.background.done = cancel, done
	go func() {
		defer close(done)
		b.runSchedule(loop, req.Storage)
	}()
	return nil
}

// stopBackground ends the background loop, if it runs, and waits for it
// and for the items it started.
func (b *backend) stopBackground() {
	b.background.mu.Lock()
	defer b.background.mu.Unlock()
	b.stopBackgroundLocked()
}

func (b *backend) stopBackgroundLocked() {
	if b.background.stop != nil {
		b.background.stop()
		<-b.background.done
		b.background.stop, b.background.done = nil, nil
	}
	b.queue.inFlight.Wait()
}

// periodic runs with Vault's rollback, about once a minute on the active
// node: it finds again in storage whatever the schedule may have missed, with
// the journal's recovery, and drops retained credentials past their
// retention.
func (b *backend) periodic(ctx context.Context, req *logical.Request) error {
	if b.System().ReplicationState().HasState(consts.ReplicationPerformanceSecondary) {
		// Retained credentials are the primary's, replicated here read-only.
		return b.populateQueue(ctx, req.Storage)
	}
	return errors.Join(b.populateQueue(ctx, req.Storage), b.pruneRetained(ctx, req.Storage))
}

// clean runs when the mount is unmounted or the plugin stops: it ends
// every goroutine the plugin started (the background loop, the journal's
// remover, the event sender), removes the journal's pages of tokens handed
// over, and releases pooled connections. After it returns, none runs.
func (b *backend) clean(context.Context) {
	b.stopBackground()
	b.journal.Close()
	b.events.close()
	b.reset()
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

// invalidate drops what is cached of a key another node changed: the
// clients of the config or of retained credentials, or a role.
func (b *backend) invalidate(_ context.Context, key string) {
	switch {
	case key == configPath || strings.HasPrefix(key, retainedPrefix):
		b.reset()
	case strings.HasPrefix(key, rolePrefix):
		b.roles.drop(strings.TrimPrefix(key, rolePrefix))
	}
}

// reset drops everything derived from the config and the retained
// credentials.
func (b *backend) reset() {
	b.lock.Lock()
	defer b.lock.Unlock()
	if b.biClient != nil {
		b.biClient.CloseIdleConnections()
	}
	b.biClient = nil
	for _, entry := range b.retained {
		if entry.client != nil {
			entry.client.CloseIdleConnections()
		}
	}
	b.retained = nil
}

// newClient builds a client for cfg that shares the mount's call limits,
// its secret named by fingerprint ("" for a client that mints nothing kept).
func (b *backend) newClient(cfg *config, fingerprint string) (*biclient.Client, error) {
	return cfg.newClient(b.limits, b.clientClock, b.metrics.observe, fingerprint)
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
	b.limits.setCeiling(cfg.MaxConcurrent)
	c, err = b.newClient(cfg, b.fingerprints.of(ctx, s, cfg.ClientSecret))
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

For consumers that cannot hold a lease, a static role at
"static-roles/<name>" keeps one token, replaced on a schedule, which
"static-creds/<name>" hands out without a lease.
`
