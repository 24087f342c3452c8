package beyondidentity

import (
	"sync"
)

// pendingSet is the revocations pending in the background, by key, each
// with the static role whose token it is ("" for a lease's token): what the
// metrics count, and what bounds each static role's live tokens. It is
// loaded from storage once per process, by the background loop's first
// look at storage or by the first rotation that needs it, whichever comes
// first, and kept up to date as records come and go.
type pendingSet struct {
	mu     sync.Mutex
	keys   map[string]string
	loaded bool
}

func (p *pendingSet) add(key, staticRole string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.keys == nil {
		p.keys = map[string]string{}
	}
	p.keys[key] = staticRole
}

func (p *pendingSet) remove(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.keys, key)
}

func (p *pendingSet) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.keys)
}

// ofStaticRole counts the pending revocations of a static role's tokens,
// and reports whether the set was loaded from storage.
func (p *pendingSet) ofStaticRole(name string) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, role := range p.keys {
		if role == name {
			n++
		}
	}
	return n, p.loaded
}

func (p *pendingSet) markLoaded() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.loaded = true
}
