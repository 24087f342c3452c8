package beyondidentity

// The one background schedule: what it finds again in storage.

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// runDue runs the items due by now that can start, and returns when they
// are done: what one tick of the background loop starts.
func (b *backend) runDue(ctx context.Context, s logical.Storage) {
	b.startDue(ctx, s)
	b.schedule.inFlight.Wait()
}

// TestARecordThatCannotBeDecodedIsSkippedNotAReasonToStop: among the
// failed revocations in storage, one that does not decode is logged and
// skipped, and the records after it are still scheduled.
func TestARecordThatCannotBeDecodedIsSkippedNotAReasonToStop(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	ctx := context.Background()
	next := time.Now().Add(time.Hour)
	for _, key := range []string{"a-first", "c-last"} {
		record := &revocationRecord{issuedToken: issuedToken{Role: "sync", ExpiresAt: next.Unix()}, Kind: kindLease,
			Token: "token-" + key, Attempts: 1, Next: next}
		if err := writeRevocation(ctx, e.storage, key, record); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.storage.Put(ctx, &logical.StorageEntry{Key: revocationPrefix + "b-garbled", Value: []byte("{not json")}); err != nil {
		t.Fatal(err)
	}
	if err := e.b.populateQueue(ctx, e.storage); err != nil {
		t.Fatalf("populateQueue: %v", err)
	}
	for _, key := range []string{"a-first", "c-last"} {
		if !e.b.schedule.known(revocationPrefix + key) {
			t.Errorf("record %s is not scheduled", key)
		}
	}
	if e.b.schedule.known(revocationPrefix+"b-garbled") || e.b.pendingRevocations.len() != 2 {
		t.Errorf("the garbled record is scheduled, or the pending count is %d, not 2", e.b.pendingRevocations.len())
	}
}
