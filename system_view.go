package beyondidentity

import (
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// systemViewAge is how long the plugin trusts what it last asked Vault of
// the node's replication state and of the mount's max lease TTL.
const systemViewAge = time.Second

// cachedSystemView is Vault's system view, except that it asks Vault for
// the node's replication state and the mount's max lease TTL at most once
// per systemViewAge, on the backend's clock. Each ask is a call back to
// Vault over the plugin's connection; every creds read needed both.
//
// The replication state: the SDK's framework asks for it before every
// request, to decide whether to forward it (ForwardPerformanceStandby and
// ForwardPerformanceSecondary). Measured with make bench-vault on Raft,
// that call cost about a tenth of creds' throughput. A node's replication
// state changes only when the node changes role (a performance standby
// promoted, replication enabled or promoted), which Vault follows by
// setting up its mounts anew; the second bounds what a state read just
// before such a change can miss. A request the state let through on a node
// that has become read-only fails at its first storage write, which Vault
// forwards, and a token minted meanwhile is revoked as on any failed write.
//
// The max lease TTL: it changes with `vault secrets tune`, and a token
// minted in the second after a tune that lowered it is still bounded by
// it. Vault caps every lease at the mount's ceiling itself, whatever the
// plugin asked, and the lease's revocation revokes the token at Beyond
// Identity: a token minted for the old ceiling ends when its capped lease
// does. Knowing the ceiling a second late changes no token's real life,
// only, for that second, the lifetime the token is minted with and the
// warning that says it was capped.
//
// Every other call goes to Vault as before.
type cachedSystemView struct {
	logical.SystemView
	now func() time.Time

	// state and maxTTL are the last answers; each lock is held across
	// its call to Vault, so that a burst of requests after an answer ages
	// asks once, not once per request.
	state  cachedAnswer[consts.ReplicationState]
	maxTTL cachedAnswer[time.Duration]
}

func newCachedSystemView(view logical.SystemView, now func() time.Time) *cachedSystemView {
	return &cachedSystemView{SystemView: view, now: now}
}

// ReplicationState implements logical.SystemView.
func (v *cachedSystemView) ReplicationState() consts.ReplicationState {
	return v.state.get(v.now(), v.SystemView.ReplicationState)
}

// MaxLeaseTTL implements logical.SystemView.
func (v *cachedSystemView) MaxLeaseTTL() time.Duration {
	return v.maxTTL.get(v.now(), v.SystemView.MaxLeaseTTL)
}

// cachedAnswer is an answer of Vault's, asked again once systemViewAge
// old.
type cachedAnswer[T any] struct {
	mu    sync.Mutex
	value T
	// asked is when value was asked for; zero until the first ask.
	asked time.Time
}

func (a *cachedAnswer[T]) get(now time.Time, ask func() T) T {
	a.mu.Lock()
	defer a.mu.Unlock()
	if stale(a.asked, now, systemViewAge) {
		a.value, a.asked = ask(), now
	}
	return a.value
}

// stale reports whether what was asked at asked is older than age at now
// (or the clock went back).
func stale(asked, now time.Time, age time.Duration) bool {
	return asked.IsZero() || now.Sub(asked) >= age || now.Before(asked)
}
