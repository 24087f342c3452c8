package beyondidentity

import (
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// replicationStateAge is how long the plugin trusts the replication state
// it last asked Vault for.
const replicationStateAge = time.Second

// cachedReplicationView is Vault's system view, except that it asks Vault
// for the node's replication state at most once per replicationStateAge.
//
// The SDK's framework asks for that state before every request, to decide
// whether to forward it (ForwardPerformanceStandby and
// ForwardPerformanceSecondary), and each ask is a call back to Vault over
// the plugin's connection. Measured with make bench-vault on Raft, that
// call cost about a tenth of creds' throughput. A node's replication state
// changes only when the node changes role (a performance standby
// promoted, replication enabled or promoted), which Vault follows by
// setting up its mounts anew; the second bounds what a state read just
// before such a change can miss. A request the state let through on a node
// that has become read-only fails at its first storage write, which Vault
// forwards, and a token minted meanwhile is revoked as on any failed write.
// Every other call goes to Vault as before: MaxLeaseTTL in particular
// changes with `vault secrets tune` and is never cached.
type cachedReplicationView struct {
	logical.SystemView
	now func() time.Time

	mu    sync.Mutex
	state consts.ReplicationState
	// askedAt is when state was asked for; zero until the first ask.
	askedAt time.Time
}

func newCachedReplicationView(view logical.SystemView, now func() time.Time) *cachedReplicationView {
	return &cachedReplicationView{SystemView: view, now: now}
}

// ReplicationState implements logical.SystemView. The lock is held across
// the call to Vault, so that a burst of requests after the state ages asks
// once, not once per request.
func (v *cachedReplicationView) ReplicationState() consts.ReplicationState {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	if v.askedAt.IsZero() || now.Sub(v.askedAt) >= replicationStateAge || now.Before(v.askedAt) {
		v.state, v.askedAt = v.SystemView.ReplicationState(), now
	}
	return v.state
}
