//go:build e2e

package e2e

import (
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// attempt is one creds read of the load: when it ran, through which node,
// and what the client got.
type attempt struct {
	node       string
	start, end time.Time
	token      string
	leaseID    string
	err        error
}

func (a attempt) ok() bool { return a.err == nil }

// inFlightAt reports whether the request was sent before t and answered
// after it.
func (a attempt) inFlightAt(t time.Time) bool { return a.start.Before(t) && a.end.After(t) }

// credsLoad reads creds in a loop from a few goroutines per node, each with
// its own client, no retries and no redirects, and records every attempt.
// Reader i pauses i*readerPause between requests, so that the readers do
// not run in step: behind the fake's fixed delays, readers in step would
// all be in the same phase of a request when the leader dies.
type credsLoad struct {
	mu       sync.Mutex
	attempts []attempt
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startCredsLoad(t *testing.T, nodes []*vaulttest.Server, perNode int, role string) *credsLoad {
	t.Helper()
	l := &credsLoad{stop: make(chan struct{})}
	reader := 0
	for _, node := range nodes {
		for range perNode {
			client := node.NewClient()
			l.wg.Add(1)
			go l.read(node.Name, client, role, time.Duration(reader)*readerPause)
			reader++
		}
	}
	t.Cleanup(l.stopAndWait)
	return l
}

const readerPause = 40 * time.Millisecond

func (l *credsLoad) read(node string, client *api.Client, role string, pause time.Duration) {
	defer l.wg.Done()
	for {
		select {
		case <-l.stop:
			return
		case <-time.After(pause):
		}
		a := attempt{node: node, start: time.Now()}
		secret, err := client.Logical().Read("beyondidentity/creds/" + role)
		a.end, a.err = time.Now(), err
		if err == nil && (secret == nil || secret.LeaseID == "") {
			a.err = errNoLease
		}
		if a.err == nil {
			a.token, a.leaseID = accessToken(secret), secret.LeaseID
		}
		l.mu.Lock()
		l.attempts = append(l.attempts, a)
		l.mu.Unlock()
		if a.err != nil {
			// A dead node refuses at once: do not spin on it.
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// successesSince counts the attempts sent at or after since that got a
// credential.
func (l *credsLoad) successesSince(since time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.attempts {
		if a.ok() && !a.start.Before(since) {
			n++
		}
	}
	return n
}

// stopAndWait ends the load and waits for the requests in flight; it is
// safe to call more than once.
func (l *credsLoad) stopAndWait() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// results returns every attempt; call it after stopAndWait.
func (l *credsLoad) results() []attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]attempt(nil), l.attempts...)
}

type loadError string

func (e loadError) Error() string { return string(e) }

const errNoLease = loadError("creds returned no lease")
