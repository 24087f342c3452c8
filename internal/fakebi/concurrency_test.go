package fakebi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrentUse drives every endpoint from many goroutines while other
// goroutines read and change the fake's state; run it with -race.
func TestConcurrentUse(t *testing.T) {
	f := newFixture(t)
	f.ts.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	const workers = 200
	var minted, requests atomic.Int64

	stop := make(chan struct{})
	var background sync.WaitGroup
	background.Go(func() { churnState(f, stop) })

	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			n, err := exerciseEndpoints(f, i)
			requests.Add(n)
			if err != nil {
				t.Error(err)
				return
			}
			minted.Add(1)
		})
	}
	wg.Wait()
	close(stop)
	background.Wait()

	if got := int64(len(f.s.Tokens())); got != minted.Load() {
		t.Errorf("%d tokens recorded, want %d", got, minted.Load())
	}
	if got := int64(len(f.s.Calls())); got != requests.Load() {
		t.Errorf("%d calls recorded, want %d", got, requests.Load())
	}
	for _, tok := range f.s.Tokens() {
		if tok.RevokedAt.IsZero() {
			t.Errorf("token %s was not revoked", tok.ID)
		}
	}
}

// exerciseEndpoints mints, introspects and revokes one token, and
// returns how many requests it sent.
func exerciseEndpoints(f *fixture, i int) (int64, error) {
	app := appA
	if i%2 == 1 {
		app = appRef
	}
	steps := []func(token string) request{
		func(string) request { return mintRequestOf(app) },
		func(token string) request {
			return request{path: introspectPath(app), form: url.Values{"token": {token}}, basic: basicOf(app)}
		},
		func(token string) request { return revokeRequestOf(app, token) },
	}
	var token string
	for n, step := range steps {
		resp, err := f.send(step(token))
		if err != nil {
			return int64(n + 1), err
		}
		if resp.status != http.StatusOK {
			return int64(n + 1), fmt.Errorf("worker %d step %d: status %d, body %s", i, n, resp.status, resp.body)
		}
		if n == 0 {
			var m struct {
				AccessToken string `json:"access_token"`
			}
			if err := json.Unmarshal(resp.body, &m); err != nil {
				return 1, err
			}
			token = m.AccessToken
		}
	}
	return int64(len(steps)), nil
}

// churnState reads and changes the fake's state until stop closes, with
// settings that never change the answers the workers expect.
func churnState(f *fixture, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		f.s.SetFault(OpUnknown, Fault{Status: 500, Times: 1})
		f.s.ClearFaults()
		f.s.ResetMaxInFlight()
		_ = f.s.InFlight()
		f.s.SetClock(f.clock.Now)
		f.s.AddApplication(appOtherRealm)
		_ = f.s.Calls()
		_ = f.s.CallsTo(OpToken)
		_ = f.s.Tokens()
		time.Sleep(time.Millisecond)
	}
}
