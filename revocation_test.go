package beyondidentity

// Revocation: retried in the background until done or the token ends,
// with slots of its own.

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// TestFailedRevocationIsRetriedInTheBackground walks a failed revocation
// through Beyond Identity's outage and recovery on the injected clock.
func TestFailedRevocationIsRetriedInTheBackground(t *testing.T) {
	t.Parallel()
	e, resp, fake := failRevocationsNow(t)
	token := resp.Data["access_token"].(string)
	ctx := context.Background()

	// Nothing is due before the backoff has passed.
	e.fake.ResetCalls()
	e.b.runDue(ctx, e.storage)
	if calls := len(e.fake.CallsTo(fakebi.OpRevoke)); calls != 0 {
		t.Fatalf("%d revoke calls before the record was due", calls)
	}
	// Still down: the attempt fails, and the next one backs off further.
	fake.Advance(revocationRetryBase)
	e.b.runDue(ctx, e.storage)
	records := e.revocationRecords()
	if len(records) != 1 || records[0].Attempts != 2 || !strings.Contains(records[0].LastError, "HTTP 503") ||
		!records[0].Next.After(fake.Now().Add(revocationRetryBase)) {
		t.Fatalf("after a second failure: %+v", records)
	}
	// Beyond Identity recovers: within the longest backoff the token is revoked.
	e.fake.ClearFaults()
	fake.Advance(revocationRetryMax)
	e.b.runDue(ctx, e.storage)
	if e.fake.IsActive(token) {
		t.Fatal("the background worker did not revoke the token after recovery")
	}
	records = e.revocationRecords()
	if len(records) != 1 || !records[0].revoked() || !records[0].AccessToken.IsZero() {
		t.Fatal("the revoked record must stay, without its token, as proof for Vault's next attempt")
	}
	// Vault's next attempt on the lease succeeds at once, without a call.
	e.fake.ResetCalls()
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 503, Body: `{}`})
	if _, err := e.revoke(resp.Secret); err != nil {
		t.Fatalf("Vault's attempt after the background revocation: %v", err)
	}
	if calls := len(e.fake.CallsTo(fakebi.OpRevoke)); calls != 0 {
		t.Fatalf("%d revoke calls for a token already revoked", calls)
	}
	e.assertNoRevocationRecords()
	e.assertNoSecretsLogged()
}

// The proof of a background revocation is forgotten once the token would
// have ended anyway.
func TestRevokedRecordsAreForgottenAfterTheTokenEnds(t *testing.T) {
	t.Parallel()
	e, _, fake := failRevocationsNow(t)
	e.fake.ClearFaults()
	fake.Advance(revocationRetryMax)
	e.b.runDue(context.Background(), e.storage)
	if records := e.revocationRecords(); len(records) != 1 || !records[0].revoked() {
		t.Fatal("want the proof of revocation")
	}
	fake.Advance(time.Hour + expiredMargin)
	e.b.runDue(context.Background(), e.storage)
	e.assertNoRevocationRecords()
}

// A token that ends during the outage is not revoked: it needs not be.
func TestBackgroundRevocationGivesUpWhenTheTokenEnds(t *testing.T) {
	t.Parallel()
	e, _, fake := failRevocationsNow(t)
	fake.Advance(time.Hour + 2*expiredMargin)
	e.fake.ResetCalls()
	e.b.runDue(context.Background(), e.storage)
	e.assertNoRevocationRecords()
}

// Records outlive the process: a new backend on the same storage (a plugin
// restart, a new active node) finds them when Vault initializes it, and
// its worker completes them on its own.
func TestBackgroundRevocationsSurviveARestart(t *testing.T) {
	t.Parallel()
	e, resp, fake := failRevocationsNow(t)
	e.fake.ClearFaults()
	restarted := e.restartedBackend(fake)
	timerCreated := fake.TimerCreated()
	if err := restarted.Initialize(context.Background(), &logical.InitializationRequest{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	awaitTimer(t, timerCreated, "the background worker, with a revocation due later,")
	fake.Advance(revocationRetryMax)
	eventuallyTrue(t, func() bool { return !e.fake.IsActive(resp.Data["access_token"].(string)) })
}

// A revocation needs no free issuing slot: a flood of slow mints holding
// every slot does not delay it.
func TestRevocationsHaveTheirOwnCallSlots(t *testing.T) {
	t.Parallel()
	e, resp := newIssuedCredential(t)
	e.mustOK(logical.UpdateOperation, "config", map[string]any{"max_concurrent_requests": 1, "verify_connection": false})
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Delay: time.Minute})
	mintCtx, stopMint := context.WithCancel(context.Background())
	defer stopMint()
	go func() { _, _ = e.requestCtx(mintCtx, logical.ReadOperation, "creds/sync", nil) }()
	eventuallyTrue(t, func() bool { return e.fake.InFlight() == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.b.HandleRequest(ctx, &logical.Request{Operation: logical.RevokeOperation, Secret: resp.Secret, Storage: e.storage})
	if err != nil || e.fake.IsActive(resp.Data["access_token"].(string)) {
		t.Fatalf("a revocation waited for the slot a mint holds: %v", err)
	}
}

// TestAnEchoOfTheTokenInHexNeverReachesRevocationsOrTheLog: an upstream
// that answers a revocation with the token in hex leaves neither
// revocations/'s last_error nor the log holding it, in either case.
func TestAnEchoOfTheTokenInHexNeverReachesRevocationsOrTheLog(t *testing.T) {
	t.Parallel()
	e, resp := newIssuedCredential(t)
	token := resp.Data["access_token"].(string)
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: http.StatusServiceUnavailable, EchoRequest: true, EchoInHex: true})
	if _, err := e.revoke(resp.Secret); err == nil {
		t.Fatal("the revocation succeeded against a failing upstream")
	}
	records := e.revocationRecords()
	if len(records) != 1 || !strings.Contains(records[0].LastError, "[redacted]") {
		t.Fatalf("want one pending revocation whose last_error shows the echo redacted, got %d", len(records))
	}
	view := fmt.Sprint(e.mustOK(logical.ReadOperation, "revocations/"+revocationKey(secretOf(token)), nil).Data)
	hexToken := hex.EncodeToString([]byte(token))
	for where, text := range map[string]string{"revocations/": view, "the log": e.logs.String()} {
		if strings.Contains(strings.ToLower(text), hexToken) {
			t.Errorf("%s holds the token in hex", where)
		}
	}
	e.assertNoSecretsLogged()
}

// TestARevocationErrorNeverCarriesItsToken: whatever error a revocation
// fails with, its text (the log's, the caller's) and revocations/'s
// last_error never hold the token or 16 characters of it, even should the
// client's scrubbing have missed it.
func TestARevocationErrorNeverCarriesItsToken(t *testing.T) {
	t.Parallel()
	e, resp := newIssuedCredential(t)
	token := resp.Data["access_token"].(string)
	missed := fmt.Errorf("revoke call failed: the gateway said %q and %q", token[:60], token[40:70])

	wrapped := &tokenScrubbed{err: missed, token: secretOf(token)}
	if holdsTokenFragment(wrapped.Error(), token) {
		t.Error("a revocation error carries a piece of its token")
	}

	lease, err := leaseFromInternal(resp.Secret.InternalData)
	if err != nil {
		t.Fatal(err)
	}
	key := revocationKey(lease.AccessToken.Secret)
	if err := e.b.recordRevocation(context.Background(), e.storage, key, lease.token(), kindLease, missed); err != nil {
		t.Fatal(err)
	}
	records := e.revocationRecords()
	view := fmt.Sprint(e.mustOK(logical.ReadOperation, "revocations/"+key, nil).Data)
	if len(records) != 1 || holdsTokenFragment(records[0].LastError, token) || holdsTokenFragment(view, token) {
		t.Fatalf("want one pending revocation whose last_error holds no piece of its token, got %d records", len(records))
	}
}

// holdsTokenFragment reports whether text holds 16 or more consecutive
// characters of token.
func holdsTokenFragment(text, token string) bool {
	for i := 0; i+16 <= len(token); i++ {
		if strings.Contains(text, token[i:i+16]) {
			return true
		}
	}
	return false
}
