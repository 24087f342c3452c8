package beyondidentity

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Event notifications leave apart from the requests that cause them: an
// answer never waits for one (a round trip to Vault per credential), and
// Vault slow to take events never slows a credential. They leave in order,
// one at a time, from a goroutine that runs while some wait. If Vault falls
// maxPendingEvents behind, new ones are dropped and counted: events are
// notifications, and Vault itself drops them for slow subscribers.
//
// Only Vault Enterprise lets anyone subscribe to events: Community Edition
// (1.16 through 1.21 at least) takes them and discards them, since its
// subscription endpoint is an Enterprise stub. Each one still costs a call
// back to Vault, about a tenth of creds' throughput measured with make
// bench-vault. So the plugin asks Vault which edition it is once, where its
// first event is made (or, should that fail, again before the sender sends
// one), and on Community Edition sends none. It asks there, and not when
// the mount is set up, so that setting a mount up makes no call to Vault.

// maxPendingEvents bounds the events waiting to be sent.
const maxPendingEvents = 1024

// eventTimeout bounds the sending of one event.
const eventTimeout = 10 * time.Second

// pendingEvent is an event waiting to be sent.
type pendingEvent struct {
	kind     string
	modified bool
	metadata []string
}

// eventSender holds a mount's events until they are sent. Its sender is
// started when an event arrives and none runs, and ends when none waits;
// close stops it for good.
type eventSender struct {
	b *backend
	// ctx ends with close: the sender's sends end with it.
	ctx    context.Context
	cancel context.CancelFunc
	sender sync.WaitGroup

	mu      sync.Mutex
	pending []pendingEvent
	sending bool
	closed  bool
	// edition is whether anyone can subscribe to Vault's events: asked once
	// with the first event (asked), or by the sender when that could not
	// learn it.
	edition vaultEdition
	asked   sync.Once
}

type vaultEdition int

const (
	editionUnknown vaultEdition = iota
	editionWithSubscribers
	editionWithout
)

func newEventSender(b *backend) *eventSender {
	ctx, cancel := context.WithCancel(context.Background())
	return &eventSender{b: b, ctx: ctx, cancel: cancel}
}

// event queues a Vault event notification of the given kind, with Vault's
// standard metadata, as its own engines send it: the operation (the kind)
// and whether it modified what its path holds. A Vault without events
// (before 1.16, or with them turned off) makes it a no-op, and so does a
// mount being cleaned up.
func (b *backend) event(kind string, modified bool, metadata ...string) {
	es := b.events
	es.asked.Do(func() {
		ctx, cancel := context.WithTimeout(es.ctx, eventTimeout)
		defer cancel()
		es.askEdition(ctx)
	})
	es.mu.Lock()
	defer es.mu.Unlock()
	switch {
	case es.closed, es.edition == editionWithout:
		return
	case len(es.pending) >= maxPendingEvents:
		b.metrics.eventsDropped.Inc()
		return
	}
	es.pending = append(es.pending, pendingEvent{kind: kind, modified: modified, metadata: metadata})
	if !es.sending {
		es.sending = true
		es.sender.Add(1)
		go es.send()
	}
}

// send sends the queued events in order, and stops when none waits. An
// event leaves the queue when its sending begins, so the queue's bound
// counts every event held but the one being sent.
func (es *eventSender) send() {
	defer es.sender.Done()
	if !es.subscribable() {
		return
	}
	for {
		e, ok := es.next()
		if !ok {
			return
		}
		es.sendOne(e)
	}
}

// subscribable says whether Vault is an edition whose events anyone can
// subscribe to, asking it if the setup could not. When it is not, the
// waiting events are dropped (uncounted: nothing could have received
// them), no event is queued from then on, and the sender stops. When Vault
// cannot say, the events are sent, and the next sender asks again.
func (es *eventSender) subscribable() bool {
	es.mu.Lock()
	edition := es.edition
	es.mu.Unlock()
	if edition == editionUnknown {
		ctx, cancel := context.WithTimeout(es.ctx, eventTimeout)
		edition = es.askEdition(ctx)
		cancel()
	}
	if edition != editionWithout {
		return true
	}
	es.mu.Lock()
	defer es.mu.Unlock()
	es.pending, es.sending = nil, false
	return false
}

// askEdition asks Vault its version: Enterprise builds carry "ent" in the
// version's metadata (1.21.0+ent, +ent.hsm, +ent.fips1403).
func (es *eventSender) askEdition(ctx context.Context) vaultEdition {
	env, err := es.b.System().PluginEnv(ctx)
	if err != nil || env == nil {
		es.b.Logger().Debug("asking Vault its edition failed; sending events", "error", err)
		return editionUnknown
	}
	edition := editionWithout
	if strings.HasPrefix(env.VaultVersionMetadata, "ent") {
		edition = editionWithSubscribers
	}
	es.mu.Lock()
	es.edition = edition
	es.mu.Unlock()
	return edition
}

// next takes the oldest event; when none waits, or the queue is closed,
// the sender is marked stopped.
func (es *eventSender) next() (pendingEvent, bool) {
	es.mu.Lock()
	defer es.mu.Unlock()
	if len(es.pending) == 0 || es.closed {
		es.sending = false
		return pendingEvent{}, false
	}
	e := es.pending[0]
	es.pending = es.pending[1:]
	return e, true
}

func (es *eventSender) sendOne(e pendingEvent) {
	ctx, cancel := context.WithTimeout(es.ctx, eventTimeout)
	defer cancel()
	metadata := append([]string{logical.EventMetadataModified, strconv.FormatBool(e.modified),
		logical.EventMetadataOperation, e.kind}, e.metadata...)
	err := logical.SendEvent(ctx, es.b.Backend, "beyondidentity/"+e.kind, metadata...)
	if err != nil && !errors.Is(err, framework.ErrNoEvents) {
		es.b.Logger().Debug("sending an event failed", "event", e.kind, "error", err)
	}
}

// close drops the events still waiting (they are notifications), ends the
// send under way and waits for the sender to stop.
func (es *eventSender) close() {
	es.mu.Lock()
	es.closed = true
	es.pending = nil
	es.mu.Unlock()
	es.cancel()
	es.sender.Wait()
}
