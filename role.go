package beyondidentity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/scope"
)

// Bounds on a role's input, each refused with a 400 naming the field and
// the bound.
const (
	defaultRoleTTL    = biclient.MaxTokenLifetime
	maxCustomClaims   = 8 << 10
	maxScopes         = 64
	maxScopeLen       = 128
	maxDescriptionLen = 1024
	maxRoleNameLen    = 128
)

// role maps a name to the scopes and lifetimes of the tokens it issues.
// TTL and MaxTTL hold what the operator set, zero meaning the default, so
// that a max_ttl that only follows ttl keeps following it when ttl changes.
type role struct {
	Scopes       []string       `json:"scopes"`
	TTL          time.Duration  `json:"ttl"`
	MaxTTL       time.Duration  `json:"max_ttl"`
	CustomClaims map[string]any `json:"custom_claims,omitempty"`
	// ClaimsTemplate, when set, is rendered with the requesting entity and
	// merged over CustomClaims for each credential (attribution.go);
	// template is it parsed, or templateErr why it no longer parses.
	ClaimsTemplate string `json:"claims_template,omitempty"`
	Description    string `json:"description"`
	template       *claimsTemplate
	templateErr    error
}

// claimsTemplate is the role's parsed claims_template: nil without one.
func (r *role) claimsTemplate() (*claimsTemplate, error) {
	return r.template, r.templateErr
}

// ttl is the lease duration: as set, else 90 days, but never above an
// explicitly set max_ttl.
func (r *role) ttl() time.Duration {
	switch {
	case r.TTL > 0:
		return r.TTL
	case r.MaxTTL > 0:
		return min(defaultRoleTTL, r.MaxTTL)
	}
	return defaultRoleTTL
}

// maxTTL is the token lifetime and lease hard end: as set, else ttl.
func (r *role) maxTTL() time.Duration {
	if r.MaxTTL > 0 {
		return r.MaxTTL
	}
	return r.ttl()
}

// roleFromRequest merges the request into a copy of the existing role (or
// the defaults) and validates it. Its error is the operator's mistake,
// naming the field and the rule.
func roleFromRequest(existing *role, d *framework.FieldData) (*role, error) {
	r := &role{}
	if existing != nil {
		copied := *existing
		r = &copied
	}
	if raw, ok := d.GetOk("scopes"); ok {
		scopes, err := parseScopes(raw.([]string))
		if err != nil {
			return nil, err
		}
		r.Scopes = scopes
	}
	if len(r.Scopes) == 0 {
		return nil, errors.New("'scopes' is required: list at least one scope, e.g. identities:read")
	}
	for _, f := range []struct {
		field  string
		target *time.Duration
	}{{"ttl", &r.TTL}, {"max_ttl", &r.MaxTTL}} {
		if raw, ok := d.GetOk(f.field); ok {
			value := time.Duration(raw.(int)) * time.Second
			if value > biclient.MaxTokenLifetime {
				return nil, fmt.Errorf("'%s' must be at most 7776000s (90 days), the longest life of a Beyond Identity token", f.field)
			}
			*f.target = value
		}
	}
	if r.ttl() > r.maxTTL() {
		return nil, fmt.Errorf("'ttl' of %s must not exceed 'max_ttl' of %s", bothUnits(r.ttl()), bothUnits(r.maxTTL()))
	}
	if raw, ok := d.GetOk("custom_claims"); ok {
		claims, err := parseCustomClaims(raw.(map[string]any))
		if err != nil {
			return nil, err
		}
		r.CustomClaims = claims
	}
	if raw, ok := d.GetOk("claims_template"); ok {
		template, err := parseClaimsTemplate(raw.(string))
		if err != nil {
			return nil, err
		}
		r.ClaimsTemplate, r.template, r.templateErr = strings.TrimSpace(raw.(string)), template, nil
	}
	if raw, ok := d.GetOk("description"); ok {
		description, err := parseDescription(raw.(string))
		if err != nil {
			return nil, err
		}
		r.Description = description
	}
	return r, nil
}

// parseScopes validates the scopes of a role (or of a narrowing request)
// and returns them in their normal form.
func parseScopes(raw []string) ([]string, error) {
	trimmed := make([]string, 0, len(raw))
	for _, s := range raw {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			continue
		case len(s) > maxScopeLen:
			return nil, fmt.Errorf("'scopes' holds a scope of %d characters: each must be at most %d", len(s), maxScopeLen)
		case strings.ContainsFunc(s, unicode.IsSpace):
			// OAuth writes scopes space-separated; Vault lists take commas.
			return nil, fmt.Errorf("'scopes' holds %q, which is not a scope: separate scopes with commas, not spaces, "+
				"such as %s", biclient.CleanText(s, 64), strings.Join(strings.Fields(biclient.CleanText(s, 64)), ","))
		case !scope.Valid(s):
			return nil, fmt.Errorf("'scopes' holds %q, which is not a scope: each must be %s", biclient.CleanText(s, 64), scope.Syntax)
		}
		trimmed = append(trimmed, s)
	}
	scopes := scope.Normalize(trimmed)
	if len(scopes) > maxScopes {
		return nil, fmt.Errorf("'scopes' must hold at most %d scopes, got %d", maxScopes, len(scopes))
	}
	return scopes, nil
}

// parseCustomClaims validates custom_claims (claims.go says what a JSON
// reader must give back unchanged); an empty object clears them.
func parseCustomClaims(claims map[string]any) (map[string]any, error) {
	for key := range claims {
		if strings.TrimSpace(key) == "" {
			return nil, errors.New("'custom_claims' must not have an empty key")
		}
	}
	if err := checkClaimsValue("custom_claims", claims); err != nil {
		return nil, err
	}
	encoded, err := json.Marshal(claims)
	if err != nil {
		return nil, errors.New("'custom_claims' must be a JSON object")
	}
	if len(encoded) > maxCustomClaims {
		return nil, fmt.Errorf("'custom_claims' must be at most %d bytes of JSON, got %d", maxCustomClaims, len(encoded))
	}
	if len(claims) == 0 {
		return nil, nil
	}
	return claims, nil
}

func parseDescription(description string) (string, error) {
	if len(description) > maxDescriptionLen {
		return "", fmt.Errorf("'description' must be at most %d characters, got %d", maxDescriptionLen, len(description))
	}
	return description, nil
}

// mountCeilingWarnings explains, with the command that lifts it, when the
// mount's max lease TTL will cap the role's credentials.
func mountCeilingWarnings(r *role, mountMax time.Duration, mount string) []string {
	ttl, maxTTL := r.ttl(), r.maxTTL()
	if mountMax <= 0 || maxTTL <= mountMax {
		return nil
	}
	field, value := "max_ttl", maxTTL
	if ttl > mountMax {
		field, value = "ttl", ttl
	}
	return []string{fmt.Sprintf(
		"%s of %s exceeds this mount's max lease TTL of %s: credentials of this role will be capped to %s "+
			"(token lifetime and lease). To lift the ceiling, run: vault secrets tune -max-lease-ttl=%s %s",
		field, bothUnits(value), bothUnits(mountMax), bothUnits(mountMax), humanDuration(maxTTL), mount)}
}

// roleCache keeps the roles creds reads, so that a credential costs no
// storage read for its role. The roles in it are never changed, only
// replaced. A role written or deleted here, or invalidated by Vault when
// another node changed it, is dropped; the generation keeps a read that
// raced with such a change from putting the old role back.
type roleCache struct {
	mu         sync.RWMutex
	roles      map[string]*role
	generation uint64
}

func (c *roleCache) get(name string) (*role, uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r, ok := c.roles[name]
	return r, c.generation, ok
}

// put keeps r unless a change came since generation was read.
func (c *roleCache) put(name string, r *role, generation uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.generation != generation {
		return
	}
	if c.roles == nil {
		c.roles = map[string]*role{}
	}
	c.roles[name] = r
}

func (c *roleCache) drop(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation++
	delete(c.roles, name)
}

// cachedRole is readRole through the cache.
func (b *backend) cachedRole(ctx context.Context, s logical.Storage, name string) (*role, error) {
	r, generation, ok := b.roles.get(name)
	if ok {
		return r, nil
	}
	r, err := readRole(ctx, s, name)
	if err == nil && r != nil {
		b.roles.put(name, r, generation)
	}
	return r, err
}

func readRole(ctx context.Context, s logical.Storage, name string) (*role, error) {
	r := &role{}
	if found, err := getJSON(ctx, s, rolePrefix+name, fmt.Sprintf("role %q", name), r); !found || err != nil {
		return nil, err
	}
	// Parsed once per read, and so once per role in the cache creds reads.
	r.template, r.templateErr = parseClaimsTemplate(r.ClaimsTemplate)
	return r, nil
}

func writeRole(ctx context.Context, s logical.Storage, name string, r *role) error {
	return putJSON(ctx, s, rolePrefix+name, fmt.Sprintf("role %q", name), r)
}
