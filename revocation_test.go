package beyondidentity

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
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
	if len(records) != 1 || !records[0].revoked() || records[0].Token != "" {
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

func TestTokenIsNotExpiredBeforeItsLatestEnd(t *testing.T) {
	t.Parallel()
	now := time.Now()
	token := issuedToken{ExpiresAt: now.Add(-time.Hour).Unix(), EndsBy: now.Add(time.Hour).Unix()}
	if token.surelyExpired(now) {
		t.Fatal("a token whose latest end is an hour away was counted expired")
	}
	if !token.surelyExpired(now.Add(time.Hour + expiredMargin + time.Second)) {
		t.Fatal("a token past its latest end and the margin is not counted expired")
	}
	if token.surelyExpired(now.Add(time.Hour + expiredMargin - time.Second)) {
		t.Fatal("the margin for clock skew is not applied")
	}
}

// Unmounting ends the background worker and closes pooled connections.
func TestCleanStopsTheWorkerAndClosesConnections(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	var closed atomic.Int32
	server := httptest.NewUnstartedServer(e.fake)
	server.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateClosed {
			closed.Add(1)
		}
	}
	server.Start()
	t.Cleanup(server.Close)
	e.mustOK(logical.CreateOperation, "config", e.configData(map[string]any{"auth_url": server.URL}))
	if err := e.b.Initialize(context.Background(), &logical.InitializationRequest{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	e.issue("sync", nil)
	closedBefore := closed.Load()
	e.b.Cleanup(context.Background())
	if e.b.background.done != nil {
		t.Fatal("the worker is still running")
	}
	eventuallyTrue(t, func() bool { return closed.Load() > closedBefore })
}

// TestRetainedSecretsDoNotMultiplyRevokeCalls: however many secrets were
// written since a token was minted, its revocation tries the current
// secret, then the one that minted it, never each retained one.
func TestRetainedSecretsDoNotMultiplyRevokeCalls(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	lease := e.issue("sync", nil)
	for i := range 60 {
		e.mustOK(logical.UpdateOperation, "config", map[string]any{
			"client_secret": fmt.Sprintf("unverified-%d", i), "verify_connection": false})
	}
	e.fake.ResetCalls()
	if _, err := e.revoke(lease.Secret); err != nil {
		t.Fatalf("revoking the lease: %v", err)
	}
	if calls := e.fake.CallsTo(fakebi.OpRevoke); len(calls) > 2 || e.fake.IsActive(lease.Data["access_token"].(string)) {
		t.Fatalf("%d revoke calls after 60 config writes: want at most 2, and the token revoked", len(calls))
	}
}

// TestALeaseFromBeforeFingerprintsTriesEveryRetainedSecret: a lease whose
// data names no secret (written by an earlier version) is revoked with the
// client's retained secrets, newest first, as before.
func TestALeaseFromBeforeFingerprintsTriesEveryRetainedSecret(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	lease := e.issue("sync", nil)
	delete(lease.Secret.InternalData, "secret_fingerprint")
	for i := range 3 {
		e.mustOK(logical.UpdateOperation, "config", map[string]any{
			"client_secret": fmt.Sprintf("unverified-%d", i), "verify_connection": false})
	}
	e.fake.ResetCalls()
	if _, err := e.revoke(lease.Secret); err != nil || e.fake.IsActive(lease.Data["access_token"].(string)) {
		t.Fatalf("revoking a lease without a fingerprint: %v", err)
	}
	if calls := e.fake.CallsTo(fakebi.OpRevoke); len(calls) != 4 {
		t.Fatalf("%d revoke calls: want the current secret and the 3 retained ones, the working one last", len(calls))
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
