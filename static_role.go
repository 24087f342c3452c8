package beyondidentity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// staticRolePrefix is the storage prefix (and path) of static roles. A
// record holds the role's settings and its tokens, so it is seal-wrapped.
const staticRolePrefix = "static-roles/"

const (
	defaultRotationPeriod = 24 * time.Hour
	minRotationPeriod     = 10 * time.Second
)

// staticRole keeps one token for consumers that cannot hold a lease and
// replaces it every RotationPeriod; each replaced token keeps working for
// the grace period, then is revoked.
type staticRole struct {
	Scopes         []string      `json:"scopes"`
	RotationPeriod time.Duration `json:"rotation_period"`
	// GracePeriod is as set; zero means a tenth of the rotation period, so
	// that it follows the period when that changes.
	GracePeriod  time.Duration  `json:"grace_period"`
	CustomClaims map[string]any `json:"custom_claims,omitempty"`
	Description  string         `json:"description"`

	// Current is the token static-creds hands out; Retired are replaced
	// tokens in their grace, each revoked at its RevokeAt.
	Current *staticToken  `json:"current,omitempty"`
	Retired []staticToken `json:"retired,omitempty"`
	// LastRotation is when Current was minted; NextRotation when it is to
	// be replaced, or, while rotations fail, when to try again.
	LastRotation      time.Time `json:"last_rotation"`
	NextRotation      time.Time `json:"next_rotation"`
	LastRotationError string    `json:"last_rotation_error,omitempty"`
	FailedRotations   int       `json:"failed_rotations,omitempty"`
}

// staticToken is one token of a static role, as stored.
type staticToken struct {
	issuedToken
	Token     string    `json:"access_token"`
	TokenType string    `json:"token_type"`
	Scopes    []string  `json:"scopes"`
	RevokeAt  time.Time `json:"revoke_at,omitzero"`
}

// issued is what revoking the token takes.
func (t staticToken) issued() issuedToken {
	issued := t.issuedToken
	issued.AccessToken = biclient.NewSecret(t.Token)
	return issued
}

// tokens are every token of the role that may still work.
func (r *staticRole) tokens() []staticToken {
	tokens := slices.Clone(r.Retired)
	if r.Current != nil {
		tokens = append(tokens, *r.Current)
	}
	return tokens
}

// grace is how long a replaced token keeps working.
func (r *staticRole) grace() time.Duration {
	if r.GracePeriod > 0 {
		return r.GracePeriod
	}
	return r.RotationPeriod / 10
}

// tokenLifetime is the life each token is minted with: it must outlive its
// rotation by the grace.
func (r *staticRole) tokenLifetime() time.Duration { return r.RotationPeriod + r.grace() }

// nextDue is when the background worker must next look at the role: its
// rotation, or the end of a retired token's grace, whichever comes first.
func (r *staticRole) nextDue() time.Time {
	due := r.NextRotation
	for _, t := range r.Retired {
		if t.RevokeAt.Before(due) {
			due = t.RevokeAt
		}
	}
	return due
}

// staticRoleFromRequest merges the request into a copy of the existing
// static role (or the defaults) and validates it. It also reports whether
// what the token carries changed, which calls for a new token at once.
func staticRoleFromRequest(existing *staticRole, d *framework.FieldData) (*staticRole, bool, error) {
	r := &staticRole{RotationPeriod: defaultRotationPeriod}
	if existing != nil {
		copied := *existing
		r = &copied
	}
	changed := false
	if raw, ok := d.GetOk("scopes"); ok {
		scopes, err := parseScopes(raw.([]string))
		if err != nil {
			return nil, false, err
		}
		changed = changed || !slices.Equal(scopes, r.Scopes)
		r.Scopes = scopes
	}
	if len(r.Scopes) == 0 {
		return nil, false, errors.New("'scopes' is required: list at least one scope, e.g. identities:read")
	}
	if raw, ok := d.GetOk("rotation_period"); ok {
		r.RotationPeriod = time.Duration(raw.(int)) * time.Second
	}
	if raw, ok := d.GetOk("grace_period"); ok {
		r.GracePeriod = time.Duration(raw.(int)) * time.Second
	}
	if err := r.validatePeriods(); err != nil {
		return nil, false, err
	}
	if raw, ok := d.GetOk("custom_claims"); ok {
		claims, err := parseCustomClaims(raw.(map[string]any))
		if err != nil {
			return nil, false, err
		}
		changed = changed || !sameJSON(claims, r.CustomClaims)
		r.CustomClaims = claims
	}
	if raw, ok := d.GetOk("description"); ok {
		description, err := parseDescription(raw.(string))
		if err != nil {
			return nil, false, err
		}
		r.Description = description
	}
	return r, changed, nil
}

func (r *staticRole) validatePeriods() error {
	switch {
	case r.RotationPeriod < minRotationPeriod:
		return fmt.Errorf("'rotation_period' must be at least %s, got %s", seconds(minRotationPeriod), seconds(r.RotationPeriod))
	case r.grace() > r.RotationPeriod:
		return fmt.Errorf("'grace_period' (%s) must not exceed 'rotation_period' (%s)", seconds(r.grace()), seconds(r.RotationPeriod))
	case r.tokenLifetime() > biclient.MaxTokenLifetime:
		return fmt.Errorf("'rotation_period' and 'grace_period' together (%s) must be at most 7776000s (90 days), "+
			"the longest life of a Beyond Identity token", seconds(r.tokenLifetime()))
	}
	return nil
}

// sameJSON reports whether two claim sets encode alike, whatever Go types
// their numbers decoded into.
func sameJSON(a, b map[string]any) bool {
	encodedA, _ := json.Marshal(a)
	encodedB, _ := json.Marshal(b)
	return bytes.Equal(encodedA, encodedB)
}

func readStaticRole(ctx context.Context, s logical.Storage, name string) (*staticRole, error) {
	r := &staticRole{}
	if found, err := getJSON(ctx, s, staticRolePrefix+name, fmt.Sprintf("static role %q", name), r); !found || err != nil {
		return nil, err
	}
	return r, nil
}

func writeStaticRole(ctx context.Context, s logical.Storage, name string, r *staticRole) error {
	return putJSON(ctx, s, staticRolePrefix+name, fmt.Sprintf("static role %q", name), r)
}
