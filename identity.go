package beyondidentity

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// A role that attributes asks Vault who the requesting entity is, and, when
// its template names a group, the entity's groups: calls back to Vault that
// a pipeline reading in a burst would make many times a second for the same
// answer. So an answer is reused for at most identityAge, on the backend's
// clock: a change to an entity or its groups shows in tokens within a
// second, as the README says.

// identityAge is how long a looked-up entity, and its groups, are reused.
const identityAge = time.Second

// maxCachedIdentities bounds the entities kept; past it, the answers that
// have aged go first, and if none has, all go.
const maxCachedIdentities = 4096

// identityCache keeps the entities looked up in the last identityAge.
type identityCache struct {
	mu      sync.Mutex
	entries map[string]*cachedIdentity
}

// cachedIdentity is one entity's answer; groups is set only once asked for.
type cachedIdentity struct {
	entity    *logical.Entity
	groups    []*logical.Group
	hasGroups bool
	askedAt   time.Time
}

// identity returns the entity entityID names (nil when Vault knows none)
// and, when withGroups, its groups: from an answer younger than
// identityAge, or from Vault.
func (b *backend) identity(entityID string, withGroups bool) (*logical.Entity, []*logical.Group, error) {
	now := b.clock.Now()
	c := &b.identities
	c.mu.Lock()
	cached := c.entries[entityID]
	c.mu.Unlock()
	if cached == nil || stale(cached.askedAt, now, identityAge) {
		entity, err := b.System().EntityInfo(entityID)
		if err != nil {
			return nil, nil, fmt.Errorf("looking up the requesting entity %s: %w", entityID, err)
		}
		cached = &cachedIdentity{entity: entity, askedAt: now}
	}
	if withGroups && !cached.hasGroups && cached.entity != nil {
		groups, err := b.System().GroupsForEntity(entityID)
		if err != nil {
			return nil, nil, fmt.Errorf("looking up the groups of entity %s: %w", entityID, err)
		}
		// The groups join the entity's answer, as old as it is.
		cached = &cachedIdentity{entity: cached.entity, groups: groups, hasGroups: true, askedAt: cached.askedAt}
	}
	c.keep(entityID, cached, now)
	return cached.entity, cached.groups, nil
}

// keep stores an answer; a full cache first drops what has aged, or, when
// nothing has, everything.
func (c *identityCache) keep(entityID string, answer *cachedIdentity, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*cachedIdentity{}
	}
	if _, known := c.entries[entityID]; !known && len(c.entries) >= maxCachedIdentities {
		for id, entry := range c.entries {
			if stale(entry.askedAt, now, identityAge) {
				delete(c.entries, id)
			}
		}
		if len(c.entries) >= maxCachedIdentities {
			clear(c.entries)
		}
	}
	c.entries[entityID] = answer
}
