package beyondidentity

// Test scaffolding: the injected clock, and the background work it drives.

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/clock"
)

// rollback runs Vault's periodic function now, and then the background
// work it queued: the journal's recovery of the pages older than its
// minimum age, by the backend's clock, among it.
func (e *testEnv) rollback() {
	e.t.Helper()
	_, _ = e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RollbackOperation, Storage: e.storage, Data: map[string]any{"immediate": true},
	})
	e.b.runDue(context.Background(), e.storage)
}

// awaitTimer waits for a timer of the fake clock to be created, as the
// background code creates one before it sleeps; what names that code.
func awaitTimer(t testing.TB, created <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-created:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never waited on the clock", what)
	}
}

func eventuallyTrue(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// useFakeClock gives the backend, its clients and the fake Beyond Identity
// one clock that moves only when the test says so, starting now.
func (e *testEnv) useFakeClock() *clock.Fake {
	e.b.journal.Close() // its remover reads the clock it was built with
	fake := clock.NewFake(time.Now())
	e.b.clock, e.b.clientClock = fake, skipWaits{fake}
	e.b.journal = e.b.newJournal()
	e.b.reset() // clients are built with the client clock
	e.fake.SetClock(fake.Now)
	return fake
}

// restartedBackend is a new backend on the test's storage and fake clock:
// a plugin reload, a restart or a failover. Vault has yet to initialize it.
func (e *testEnv) restartedBackend(fake *clock.Fake) *backend {
	e.t.Helper()
	conf := logical.TestBackendConfig()
	conf.System = e.sys
	conf.Logger = e.b.Logger()
	conf.StorageView = e.storage
	raw, err := Factory(context.Background(), conf)
	if err != nil {
		e.t.Fatal(err)
	}
	restarted := raw.(*backend)
	restarted.clock, restarted.clientClock = fake, skipWaits{fake}
	restarted.journal.Close()
	restarted.journal = restarted.newJournal()
	e.t.Cleanup(func() { restarted.Cleanup(context.Background()) })
	return restarted
}

// skipWaits tells a fake clock's time but fires every timer at once, so
// that a client's retries neither sleep nor wait for the test to advance.
type skipWaits struct{ *clock.Fake }

func (s skipWaits) NewTimer(d time.Duration) clock.Timer { return clock.NoWait{}.NewTimer(d) }

// runDue runs the items due by now that can start, and returns when they
// are done: what one tick of the background loop starts.
func (b *backend) runDue(ctx context.Context, s logical.Storage) {
	b.startDue(ctx, s)
	b.queue.inFlight.Wait()
}

// advanceTo moves the fake clock to at and runs what is due.
func (e *testEnv) advanceTo(fake *clock.Fake, at time.Time) {
	e.t.Helper()
	e.advance(fake, at.Sub(fake.Now()))
}

// advance moves the fake clock and runs what the background worker would.
func (e *testEnv) advance(fake *clock.Fake, d time.Duration) {
	e.t.Helper()
	fake.Advance(d)
	e.b.runDue(context.Background(), e.storage)
}
