package beyondidentity

// The requesting entity of a role that attributes: looked up at most once a
// second, its groups only when the template names one.

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// newCountedIdentity is a configured backend on a fake clock whose Vault
// knows entity alice of team payments, in group sre, and counts look-ups.
func newCountedIdentity(t *testing.T) (*testEnv, *countingView, func(time.Duration)) {
	t.Helper()
	e, view := newCountingBackend(t)
	fake := e.useFakeClock()
	e.sys.EntityVal = &logical.Entity{ID: "entity-alice", Name: "alice", Metadata: map[string]string{"team": "payments"}}
	e.sys.GroupsVal = []*logical.Group{{ID: "group-sre", Name: "sre"}}
	e.configure()
	return e, view, fake.Advance
}

// A template that names no group never asks Vault for the entity's groups,
// and a burst of reads within a second asks for the entity once.
func TestNoGroupLookUpForATemplateWithoutGroups(t *testing.T) {
	t.Parallel()
	e, view, _ := newCountedIdentity(t)
	e.writeRole("who", map[string]any{"scopes": "identities:read", "ttl": "1h",
		"claims_template": `{"vault_entity": {{identity.entity.id}}, "team": {{identity.entity.metadata.team}}}`})
	for range 10 {
		if resp, err := e.readAs("entity-alice", "who"); err != nil || resp.IsError() {
			t.Fatalf("%s %v", errorText(resp), err)
		}
	}
	if entities, groups := view.entities.Load(), view.groups.Load(); entities != 1 || groups != 0 {
		t.Fatalf("10 reads within a second asked for the entity %d times and its groups %d times: want 1 and 0", entities, groups)
	}
	e.writeRole("groups", map[string]any{"scopes": "identities:read", "ttl": "1h",
		"claims_template": `{"groups": {{identity.entity.groups.names}}}`})
	if resp, err := e.readAs("entity-alice", "groups"); err != nil || resp.IsError() {
		t.Fatalf("%s %v", errorText(resp), err)
	}
	if groups := view.groups.Load(); groups != 1 {
		t.Fatalf("a template naming the groups asked for them %d times, want 1", groups)
	}
}

// A change to the entity, or to its groups, shows in the tokens minted a
// second later.
func TestAnEntitysChangeIsSeenWithinASecond(t *testing.T) {
	t.Parallel()
	e, _, advance := newCountedIdentity(t)
	e.writeRole("who", map[string]any{"scopes": "identities:read", "ttl": "1h",
		"claims_template": `{"team": {{identity.entity.metadata.team}}, "groups": {{identity.entity.groups.names}}}`})
	if resp, err := e.readAs("entity-alice", "who"); err != nil || resp.IsError() {
		t.Fatalf("%s %v", errorText(resp), err)
	}
	e.sys.EntityVal = &logical.Entity{ID: "entity-alice", Name: "alice", Metadata: map[string]string{"team": "billing"}}
	e.sys.GroupsVal = []*logical.Group{{ID: "group-ops", Name: "ops"}}
	advance(time.Second)
	if resp, err := e.readAs("entity-alice", "who"); err != nil || resp.IsError() {
		t.Fatalf("%s %v", errorText(resp), err)
	}
	claims := e.lastToken().CustomClaims
	if groups, _ := claims["groups"].([]any); claims["team"] != "billing" || len(groups) != 1 || groups[0] != "ops" {
		t.Fatalf("a second after the entity changed, its token carries %v: want team billing and group ops", claims)
	}
}
