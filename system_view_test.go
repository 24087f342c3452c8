package beyondidentity

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// countingView counts what the plugin asks Vault: the node's replication
// state, the mount's max lease TTL, entities and their groups.
type countingView struct {
	*logical.StaticSystemView
	asked, maxTTLs, entities, groups atomic.Int64
}

func (v *countingView) ReplicationState() consts.ReplicationState {
	v.asked.Add(1)
	return v.StaticSystemView.ReplicationState()
}

func (v *countingView) MaxLeaseTTL() time.Duration {
	v.maxTTLs.Add(1)
	return v.StaticSystemView.MaxLeaseTTL()
}

func (v *countingView) EntityInfo(id string) (*logical.Entity, error) {
	v.entities.Add(1)
	return v.StaticSystemView.EntityInfo(id)
}

func (v *countingView) GroupsForEntity(id string) ([]*logical.Group, error) {
	v.groups.Add(1)
	return v.StaticSystemView.GroupsForEntity(id)
}

// newCountingBackend is a backend whose system view counts what the
// plugin asks of it.
func newCountingBackend(t *testing.T) (*testEnv, *countingView) {
	t.Helper()
	var view *countingView
	e := newTestBackendWith(t, func(conf *logical.BackendConfig) {
		view = &countingView{StaticSystemView: conf.System.(*logical.StaticSystemView)}
		conf.System = view
	})
	return e, view
}

// The SDK asks for the replication state before every request; the plugin
// passes the question on to Vault at most once a second, and a node that
// has since become a performance standby forwards credential requests
// once that second has passed, minting nothing itself.
func TestReplicationStateIsAskedOfVaultOnceASecond(t *testing.T) {
	e, view := newCountingBackend(t)
	fake := e.useFakeClock()
	e.configure()
	e.writeRole("ci", map[string]any{"scopes": "identities:read"})

	before := view.asked.Load()
	for range 20 {
		e.mustOK(logical.ReadOperation, "creds/ci", nil)
	}
	if asked := view.asked.Load() - before; asked > 1 {
		t.Fatalf("20 credential requests within a second asked Vault for the replication state %d times, want at most 1", asked)
	}

	e.sys.ReplicationStateVal = consts.ReplicationPerformanceStandby
	fake.Advance(time.Second)
	e.fake.ResetCalls()
	_, err := e.request(logical.ReadOperation, "creds/ci", nil)
	if !errors.Is(err, logical.ErrReadOnly) {
		t.Fatalf("creds on a node that became a performance standby a second ago: err = %v, want logical.ErrReadOnly "+
			"(Vault forwards it to the active node)", err)
	}
	if calls := e.fake.Calls(); len(calls) != 0 {
		t.Fatalf("a request forwarded to the active node called Beyond Identity %d times, want none", len(calls))
	}
}

// The mount's ceiling is asked of Vault at most once a second, and a
// `vault secrets tune` that lowers it caps the tokens minted a second
// later.
func TestATuneIsSeenWithinASecond(t *testing.T) {
	e, view := newCountingBackend(t)
	fake := e.useFakeClock()
	e.configure()
	e.writeRole("ci", map[string]any{"scopes": "identities:read"})
	before := view.maxTTLs.Load()
	for range 20 {
		e.issue("ci", nil)
	}
	if asked := view.maxTTLs.Load() - before; asked > 1 {
		t.Fatalf("20 credentials within a second asked Vault for the max lease TTL %d times, want at most 1", asked)
	}

	e.sys.MaxLeaseTTLVal = time.Hour // vault secrets tune -max-lease-ttl=1h
	fake.Advance(time.Second)
	resp := e.issue("ci", nil)
	if got := e.lastMintLifetime(); got != "3600" || resp.Secret.TTL != time.Hour {
		t.Fatalf("a second after the tune, a token was minted for %s s with a lease of %s: want the new ceiling, 1h",
			got, resp.Secret.TTL)
	}
}
