package biclient

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

func TestLimiterGrowsWhileAnswersComeAndHalvesOnThrottling(t *testing.T) {
	l := NewLimiter(64)
	if l.Limit() != InitialConcurrency {
		t.Fatalf("starts at %d, want %d", l.Limit(), InitialConcurrency)
	}
	for i := 0; i < 20; i++ {
		l.learn(200)
	}
	if l.Limit() != 30 {
		t.Fatalf("after 20 answers: %d, want one more call per answer until throttled", l.Limit())
	}
	l.learn(429)
	if l.Limit() != 15 {
		t.Fatalf("after a 429: %d, want half of 30", l.Limit())
	}
	l.learn(503)
	if l.Limit() != 7 {
		t.Fatalf("after a 503: %d, want half again", l.Limit())
	}
	for i := 0; i < 7; i++ {
		l.learn(200) // one round trip's worth of answers
	}
	if l.Limit() != 8 {
		t.Fatalf("after a round trip once throttled: %d, want one more", l.Limit())
	}
	for i := 0; i < 10000; i++ {
		l.learn(200)
	}
	if l.Limit() != 64 {
		t.Fatalf("never past the ceiling: %d", l.Limit())
	}
	for i := 0; i < 20; i++ {
		l.learn(429)
	}
	if l.Limit() != 1 {
		t.Fatalf("never below one call: %d", l.Limit())
	}
	if NewLimiter(3).Limit() != 3 {
		t.Fatal("a ceiling below the initial bound is the bound")
	}
}

func TestLimiterServesWaitersInOrderAndRespectsTheirContext(t *testing.T) {
	l := NewLimiter(1)
	if err := l.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.acquire(ctx); err == nil || !strings.Contains(err.Error(), "max_concurrent_requests") {
		t.Fatalf("acquire past the deadline: %v", err)
	}
	order := make(chan int, 3)
	for i := 1; i <= 3; i++ {
		queued := make(chan struct{})
		go func() {
			close(queued)
			if l.acquire(context.Background()) == nil {
				order <- i
				l.release()
			}
		}()
		<-queued
		waitForWaiters(t, l, i)
	}
	l.release()
	for want := 1; want <= 3; want++ {
		if got := <-order; got != want {
			t.Fatalf("waiter %d was served before waiter %d", got, want)
		}
	}
}

// waitForWaiters polls until n callers wait for a slot.
func waitForWaiters(t *testing.T, l *Limiter, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		l.mu.Lock()
		waiting := l.waiters.Len()
		l.mu.Unlock()
		if waiting == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters, want %d", waiting, n)
		}
	}
}

func TestLimiterCeilingCountsCallsInFlight(t *testing.T) {
	l := NewLimiter(2)
	for i := 0; i < 2; i++ {
		if err := l.acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	l.SetCeiling(1)
	l.release() // one call still in flight: no room under the new ceiling
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.acquire(ctx); err == nil {
		t.Fatal("a call got a slot while the in-flight call already fills the new ceiling")
	}
	l.release()
	if err := l.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l.inUse != 1 || l.waiters.Len() != 0 {
		t.Fatalf("%d in use and %d waiting, want the one call and no leaked waiter", l.inUse, l.waiters.Len())
	}
}

// TestEveryCallSlotKeepsItsConnection: once as many calls as the limiters
// allow have run at once, later rounds of as many reuse their connections
// instead of opening (and, against Beyond Identity, TLS-handshaking) new
// ones.
func TestEveryCallSlotKeepsItsConnection(t *testing.T) {
	const slots, rounds = 8, 4
	fake := fakebi.New()
	fake.AddApplication(testApp())
	var arrived, opened atomic.Int64
	server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Hold each call until its whole round is in flight, so that every
		// round needs all the slots' connections at once.
		n := arrived.Add(1)
		roundEnd := (n + slots - 1) / slots * slots
		for deadline := time.Now().Add(5 * time.Second); arrived.Load() < roundEnd && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		fake.ServeHTTP(w, r)
	}))
	server.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			opened.Add(1)
		}
	}
	server.Start()
	t.Cleanup(server.Close)
	// go-cleanhttp keeps one idle connection per CPU and one: the client is
	// built on one CPU, so that without a pool fitted to the slots it would
	// keep two, fewer than the slots, on any machine. (This test is not
	// parallel: nothing else runs meanwhile.)
	procs := runtime.GOMAXPROCS(1)
	client, err := New(Config{AuthURL: server.URL, TenantID: "t", RealmID: "r", ApplicationID: "a", ClientID: "c",
		ClientSecret: NewSecret(testSecret), Timeout: 10 * time.Second, Limiter: NewLimiter(slots)})
	runtime.GOMAXPROCS(procs)
	if err != nil {
		t.Fatal(err)
	}
	for range rounds {
		var wg sync.WaitGroup
		for range slots {
			wg.Go(func() {
				if _, err := client.MintToken(context.Background(), MintRequest{Scopes: []string{testScope}, Lifetime: time.Hour}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	if got := opened.Load(); got != slots {
		t.Fatalf("%d rounds of %d calls at once opened %d connections, want %d: one per call slot, kept between rounds", rounds, slots, got, slots)
	}
}
