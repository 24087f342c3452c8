package beyondidentity

// Retained credentials: kept until their retention ends, and no longer.

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// TestThePeriodicPruneKeepsRetainedCredentialsUntilTheirRetentionEnds: the
// periodic function drops retained credentials the moment their retention
// has run out, and not a second before.
func TestThePeriodicPruneKeepsRetainedCredentialsUntilTheirRetentionEnds(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	fake := e.useFakeClock()
	e.configure()
	e.switchToSecondApplication()
	e.rollback()
	if keys := e.retainedIDs(); len(keys) != 1 {
		t.Fatalf("config/retained lists %v after the move", keys)
	}
	fake.Advance(retention - time.Second)
	e.rollback()
	if keys := e.retainedIDs(); len(keys) != 1 {
		t.Fatalf("a second before their retention ends, config/retained lists %v", keys)
	}
	fake.Advance(2 * time.Second)
	e.rollback()
	if keys := e.retainedIDs(); len(keys) != 0 {
		t.Fatalf("once their retention has ended, config/retained still lists %v", keys)
	}
}

// retainedIDs lists config/retained.
func (e *testEnv) retainedIDs() []string {
	e.t.Helper()
	keys, _ := e.mustOK(logical.ListOperation, "config/retained/", nil).Data["keys"].([]string)
	return keys
}
