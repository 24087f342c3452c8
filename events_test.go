package beyondidentity

// Vault event notifications: what each says, and that none holds a request.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// recordingEvents records the events a backend sends.
type recordingEvents struct {
	mu     sync.Mutex
	events []string
}

func (r *recordingEvents) SendEvent(_ context.Context, eventType logical.EventType, event *logical.EventData) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	metadata := event.GetMetadata().AsMap()
	r.events = append(r.events, fmt.Sprintf("%s %v", eventType, metadata))
	return nil
}

func (r *recordingEvents) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, "\n")
}

func TestEventsTellTheLifeCycleWithoutSecrets(t *testing.T) {
	t.Parallel()
	events := &recordingEvents{}
	e := newTestBackendWith(t, func(conf *logical.BackendConfig) { conf.EventsSender = events })
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	resp := e.issue("sync", nil)
	_, _ = e.revoke(resp.Secret)
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: 400, Body: `{"error":"invalid_scope"}`})
	_, _ = e.request(logical.ReadOperation, "creds/sync", nil)
	e.fake.ClearFaults()
	e.mustOK(logical.CreateOperation, "static-roles/s", map[string]any{"scopes": "identities:read", "rotation_period": "1h"})
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Status: 503, Body: `{}`})
	_, _ = e.request(logical.UpdateOperation, "rotate-role/s", nil)
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 503, Body: `{}`})
	_, _ = e.revoke(e.issueWithoutFault(t))
	e.mustOK(logical.DeleteOperation, "roles/sync", nil)

	eventuallyTrue(t, func() bool { return !e.b.eventsWaiting() })
	got := events.all()
	for _, want := range []string{
		"beyondidentity/config-write map[", "beyondidentity/role-write map[", "role:sync",
		"beyondidentity/credential-issue map[", "beyondidentity/revoke map[", "outcome:revoked",
		"beyondidentity/credential-issue-failure map[", "status:400",
		"beyondidentity/static-role-write map[", "beyondidentity/static-rotate map[",
		"beyondidentity/static-rotate-failure map[", "beyondidentity/revoke-failure map[", "retrying:true",
		"beyondidentity/role-delete map[",
		// Vault's standard metadata, as its own engines send it.
		"operation:role-write", "modified:true", "operation:credential-issue", "modified:false",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no event carries %q; events:\n%s", want, got)
		}
	}
	assertNoSecretIn(t, e, got)
}

// issueWithoutFault issues a credential of role sync with the token
// endpoint's faults cleared, leaving the revoke fault in place.
func (e *testEnv) issueWithoutFault(t *testing.T) *logical.Secret {
	t.Helper()
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Delay: 1})
	return e.issue("sync", nil).Secret
}

// Community Edition takes events but lets no one subscribe to them: the
// plugin sends none there, neither the first nor any later, and drops none
// it could have sent.
func TestCommunityEditionIsSentNoEvents(t *testing.T) {
	t.Parallel()
	events := &recordingEvents{}
	e := newTestBackendWith(t, func(conf *logical.BackendConfig) {
		conf.EventsSender = events
		conf.System.(*logical.StaticSystemView).PluginEnvironment.VaultVersionMetadata = ""
	})
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	eventuallyTrue(t, func() bool { return !e.b.eventsWaiting() })
	for range 3 {
		_, _ = e.revoke(e.issue("sync", nil).Secret)
	}
	eventuallyTrue(t, func() bool { return !e.b.eventsWaiting() })
	if got := events.all(); got != "" {
		t.Fatalf("Community Edition was sent events:\n%s", got)
	}
	if dropped := value(e.scrape(), "beyondidentity_events_dropped_total", nil); dropped != 0 {
		t.Fatalf("%v events counted as dropped, want 0: none could have been received", dropped)
	}
}

// failingEvents refuses every event, as a Vault without events does.
type failingEvents struct{}

func (failingEvents) SendEvent(context.Context, logical.EventType, *logical.EventData) error {
	return errors.New("events are not supported")
}

// Events are a no-op where Vault cannot take them: the request goes on.
func TestEventsThatCannotBeSentChangeNothing(t *testing.T) {
	t.Parallel()
	e := newTestBackendWith(t, func(conf *logical.BackendConfig) { conf.EventsSender = failingEvents{} })
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	resp := e.issue("sync", nil)
	if _, err := e.revoke(resp.Secret); err != nil {
		t.Fatalf("a revocation failed for want of events: %v", err)
	}
}

// blockedEvents takes no event until released, as a Vault too busy to.
type blockedEvents struct {
	recordingEvents
	release chan struct{}
}

func (b *blockedEvents) SendEvent(ctx context.Context, eventType logical.EventType, event *logical.EventData) error {
	<-b.release
	return b.recordingEvents.SendEvent(ctx, eventType, event)
}

// No request waits for its event: while Vault takes none, credentials are
// issued all the same, and the events beyond maxPendingEvents are dropped
// and counted. The others leave in order once Vault takes them again.
func TestEventsNeverHoldARequest(t *testing.T) {
	t.Parallel()
	events := &blockedEvents{release: make(chan struct{})}
	e := newTestBackendWith(t, func(conf *logical.BackendConfig) { conf.EventsSender = events })
	// The config's event is the one being sent: it blocks the sender. A
	// request that waited for its event would never return.
	configured := make(chan struct{})
	go func() {
		defer close(configured)
		e.configure()
	}()
	select {
	case <-configured:
	case <-time.After(10 * time.Second):
		t.Fatal("writing the config waited for its event")
	}
	eventuallyTrue(t, func() bool {
		e.b.events.mu.Lock()
		defer e.b.events.mu.Unlock()
		return len(e.b.events.pending) == 0
	})
	const beyond = 3
	for i := range maxPendingEvents + beyond {
		e.writeRole(fmt.Sprintf("role-%04d", i), map[string]any{"scopes": "identities:read", "ttl": "1h"})
	}
	if dropped := value(e.scrape(), "beyondidentity_events_dropped_total", nil); dropped != beyond {
		t.Fatalf("events_dropped_total = %v, want %d", dropped, beyond)
	}
	close(events.release)
	eventuallyTrue(t, func() bool { return !e.b.eventsWaiting() })
	got := strings.Split(events.all(), "\n")
	if len(got) != 1+maxPendingEvents || !strings.Contains(got[1], "role:role-0000") ||
		!strings.Contains(got[maxPendingEvents], fmt.Sprintf("role:role-%04d", maxPendingEvents-1)) {
		t.Fatalf("%d events sent; the first role's %q, the last kept %q", len(got), got[1], got[len(got)-1])
	}
}

// eventsWaiting reports whether events wait to be sent or are being sent.
func (b *backend) eventsWaiting() bool {
	b.events.mu.Lock()
	defer b.events.mu.Unlock()
	return b.events.sending
}
