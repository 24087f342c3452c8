package beyondidentity

// Locks by key: a slow holder of one key never delays another.

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// No lock is held across a revocation's call to Beyond Identity: a
// revocation that hangs there delays no other, even one whose record key
// shares a lock stripe with it.
func TestASlowRevocationDelaysNoOther(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	var held sync.Map // token values whose revocation waits
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	gated := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/revoke") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, _ := url.ParseQuery(string(body))
			if _, ok := held.Load(form.Get("token")); ok {
				arrived <- struct{}{}
				<-release
			}
		}
		e.fake.ServeHTTP(w, r)
	}))
	t.Cleanup(gated.Close)
	defer close(release)
	e.mustOK(logical.UpdateOperation, "config", e.configData(map[string]any{"auth_url": gated.URL}))
	slow, other := twoLeasesSharingALockStripe(e)
	held.Store(slow.Data["access_token"], true)
	go func() { _, _ = e.revoke(slow.Secret) }()
	select {
	case <-arrived: // the slow revocation is at Beyond Identity
	case <-time.After(10 * time.Second):
		t.Fatal("the slow revocation never reached Beyond Identity")
	}
	done := make(chan error, 1)
	go func() { _, err := e.revoke(other.Secret); done <- err }()
	select {
	case err := <-done:
		if err != nil || e.fake.IsActive(other.Data["access_token"].(string)) {
			t.Fatalf("the other revocation failed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a revocation waited for another one's call to Beyond Identity")
	}
}

// twoLeasesSharingALockStripe issues credentials until two of them would
// share one of 256 striped locks by their revocation record's key: about
// twenty, by the birthday bound.
func twoLeasesSharingALockStripe(e *testEnv) (*logical.Response, *logical.Response) {
	e.t.Helper()
	seen := map[uint8]*logical.Response{}
	for range 200 {
		resp := e.issue("sync", nil)
		stripe := locksutil.LockIndexForKey(revocationKey(secretOf(resp.Data["access_token"].(string))))
		if first, ok := seen[stripe]; ok {
			return first, resp
		}
		seen[stripe] = resp
	}
	e.t.Fatal("no two of 200 tokens share a lock stripe")
	return nil, nil
}

// TestKeyLocksHoldOneKeyAndForgetIt: a key's lock holds that key only, and
// is dropped once nobody holds or waits for it.
func TestKeyLocksHoldOneKeyAndForgetIt(t *testing.T) {
	t.Parallel()
	var locks keyLocks
	unlockA := locks.lock("a")
	done := make(chan struct{})
	go func() {
		locks.lock("b")()
		close(done)
	}()
	<-done // b is not held up by a
	waiting := make(chan struct{})
	go func() {
		defer close(waiting)
		locks.lock("a")()
	}()
	unlockA()
	<-waiting
	locks.mu.Lock()
	defer locks.mu.Unlock()
	if len(locks.locks) != 0 {
		t.Fatalf("%d locks kept after every holder let go", len(locks.locks))
	}
}
