package beyondidentity

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// TestConcurrentIssueAndRevoke issues and revokes hundreds of credentials
// from many goroutines while the config is rewritten (same application,
// other settings), and checks the books: every token the fake minted is
// either leased or revoked, and every revoked lease was revoked upstream
// exactly once.
func TestConcurrentIssueAndRevoke(t *testing.T) {
	t.Parallel()
	const (
		workers   = 16
		perWorker = 20 // 320 credentials
	)
	e := newTestBackend(t)
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read,groups:read", "ttl": "1h"})
	// Slow enough that calls overlap unless something serialises them.
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Delay: 20 * time.Millisecond})
	e.fake.ResetMaxInFlight()

	type outcome struct {
		token   string
		revoked bool
	}
	results := make(chan outcome, workers*perWorker)
	failures := make(chan error, workers*perWorker+8)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				resp, err := e.request(logical.ReadOperation, "creds/sync", nil)
				if err != nil || resp.IsError() {
					failures <- fmt.Errorf("issue: %w %s", err, errorText(resp))
					continue
				}
				token := resp.Data["access_token"].(string)
				revoke := (w+i)%3 != 0 // revoke two thirds, keep the rest leased
				if revoke {
					if _, err := e.revoke(resp.Secret); err != nil {
						failures <- fmt.Errorf("revoke: %w", err)
						continue
					}
				}
				results <- outcome{token: token, revoked: revoke}
			}
		}(w)
	}
	// Config rewrites in the middle: same application, other settings.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 8; i++ {
			resp, err := e.request(logical.UpdateOperation, "config", map[string]any{
				"request_timeout": fmt.Sprintf("%ds", 10+i), "max_concurrent_requests": 4 + i%3,
			})
			if err != nil || (resp != nil && resp.IsError()) {
				failures <- fmt.Errorf("config rewrite: %w %s", err, errorText(resp))
			}
		}
	}()
	wg.Wait()
	close(results)
	close(failures)
	for err := range failures {
		t.Error(err)
	}

	revokeCalls := map[string]int{}
	for _, call := range e.fake.CallsTo(fakebi.OpRevoke) {
		revokeCalls[call.Form.Get("token")]++
	}
	leased := map[string]bool{}
	issued := 0
	for r := range results {
		issued++
		leased[r.token] = true
		switch {
		case r.revoked && revokeCalls[r.token] != 1:
			t.Errorf("a revoked lease's token was revoked upstream %d times", revokeCalls[r.token])
		case r.revoked && e.fake.IsActive(r.token):
			t.Error("a revoked lease's token is still active")
		case !r.revoked && (revokeCalls[r.token] != 0 || !e.fake.IsActive(r.token)):
			t.Error("a leased token was revoked")
		}
	}
	if issued != workers*perWorker {
		t.Fatalf("%d credentials issued, want %d", issued, workers*perWorker)
	}
	// Every token the fake minted is leased, or was revoked (the config
	// writes' test tokens).
	for _, token := range e.fake.Tokens() {
		if !leased[token.Value] && e.fake.IsActive(token.Value) {
			t.Errorf("token %s is neither leased nor revoked", token.ID)
		}
	}
	if pages := e.journalPages(); len(pages) != 0 {
		t.Errorf("journal pages left after every request ended: %v", pages)
	}
	if peak := e.fake.MaxInFlight(); peak < 2 {
		t.Errorf("at most %d call was in flight at once: something holds a lock across calls to Beyond Identity", peak)
	}
	e.assertNoSecretsLogged()
}
