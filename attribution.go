package beyondidentity

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/hashicorp/vault/sdk/helper/identitytpl"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// A role's claims_template says who in Vault asked for each token: it is
// rendered, in the syntax and semantics of Vault's identity token templates
// (sdk/helper/identitytpl, JSON mode), with the entity of the Vault token
// that reads creds/, and sent as Beyond Identity custom_claims, so the
// token carries it in bi_custom.

// maxClaimsTemplate bounds the template's text; the rendered claims are
// bounded like custom_claims.
const maxClaimsTemplate = 8 << 10

// placeholders lists the directives of a template, trimmed, as identitytpl
// splits them.
func placeholders(template string) []string {
	var found []string
	for _, piece := range strings.Split(template, "{{")[1:] {
		if directive, _, ok := strings.Cut(piece, "}}"); ok {
			found = append(found, strings.TrimSpace(directive))
		}
	}
	return found
}

// parseClaimsTemplate validates a claims_template: balanced braces, every
// placeholder one identitytpl knows, and a JSON object once rendered. It
// renders it with an entity that has every value the template names, so
// that only what can never render fails.
func parseClaimsTemplate(template string) (string, error) {
	template = strings.TrimSpace(template)
	switch {
	case template == "":
		return "", nil
	case len(template) > maxClaimsTemplate:
		return "", fmt.Errorf("'claims_template' must be at most %d bytes, got %d", maxClaimsTemplate, len(template))
	}
	entity, groups := sampleIdentity(placeholders(template))
	for _, directive := range placeholders(template) {
		if _, _, err := renderTemplate("{{"+directive+"}}", entity, groups); err != nil {
			return "", fmt.Errorf("'claims_template' holds {{%s}}, which is not a placeholder of Vault's identity "+
				"templates (such as {{identity.entity.id}}, {{identity.entity.name}}, {{identity.entity.metadata.KEY}}, "+
				"{{identity.entity.groups.names}}): %w", biclient.CleanText(directive, 64), err)
		}
	}
	if _, _, err := renderClaims(template, entity, groups); err != nil {
		return "", err
	}
	return template, nil
}

// sampleIdentity is an entity, with its groups, that has a value for
// every placeholder of a template that names one: the metadata keys, the
// groups and the aliases it names.
func sampleIdentity(directives []string) (*logical.Entity, []*logical.Group) {
	entity := &logical.Entity{ID: "entity-id", Name: "entity-name", Metadata: map[string]string{}}
	var groups []*logical.Group
	for _, directive := range directives {
		switch {
		case strings.HasPrefix(directive, "identity.entity.metadata."):
			entity.Metadata[strings.TrimPrefix(directive, "identity.entity.metadata.")] = "value"
		case strings.HasPrefix(directive, "identity.entity.aliases."):
			accessor, rest, _ := strings.Cut(strings.TrimPrefix(directive, "identity.entity.aliases."), ".")
			alias := &logical.Alias{MountAccessor: accessor, ID: "alias-id", Name: "alias-name",
				Metadata: map[string]string{}, CustomMetadata: map[string]string{}}
			if key, ok := strings.CutPrefix(rest, "metadata."); ok {
				alias.Metadata[key] = "value"
			}
			if key, ok := strings.CutPrefix(rest, "custom_metadata."); ok {
				alias.CustomMetadata[key] = "value"
			}
			entity.Aliases = append(entity.Aliases, alias)
		case strings.HasPrefix(directive, "identity.groups."):
			// identity.groups.names.NAME.FIELD or identity.groups.ids.ID.FIELD
			parts := strings.SplitN(strings.TrimPrefix(directive, "identity.groups."), ".", 3)
			if len(parts) == 3 {
				group := &logical.Group{ID: parts[1], Name: parts[1], Metadata: map[string]string{}}
				if key, ok := strings.CutPrefix(parts[2], "metadata."); ok {
					group.Metadata[key] = "value"
				}
				groups = append(groups, group)
			}
		}
	}
	return entity, groups
}

// renderTemplate renders a template in identitytpl's JSON mode.
func renderTemplate(template string, entity *logical.Entity, groups []*logical.Group) (bool, string, error) {
	return identitytpl.PopulateString(identitytpl.PopulateStringInput{
		Mode: identitytpl.JSONTemplating, String: template, Entity: entity, Groups: groups,
	})
}

// renderClaims renders a template into the JSON object it must be, and
// reports its encoded size.
func renderClaims(template string, entity *logical.Entity, groups []*logical.Group) (map[string]any, int, error) {
	_, rendered, err := renderTemplate(template, entity, groups)
	if err != nil {
		return nil, 0, fmt.Errorf("'claims_template' does not render: %w", err)
	}
	claims := map[string]any{}
	decoder := json.NewDecoder(strings.NewReader(rendered))
	decoder.UseNumber()
	if err := decoder.Decode(&claims); err != nil || decoder.More() {
		return nil, 0, errors.New(`'claims_template' must render a JSON object, such as {"vault_entity": {{identity.entity.id}}}: ` +
			`placeholders render as JSON values (strings quoted, lists as arrays), so write them without quotes`)
	}
	return claims, len(rendered), nil
}

// missingValueError is a placeholder the requesting entity has no value
// for, or a read with no entity at all: the operator's, or the reader's, to
// fix, never an anonymous token.
type missingValueError struct{ message string }

func (e *missingValueError) Error() string { return e.message }

// attributedClaims renders a role's claims_template for the entity that
// asks, merged over the role's custom_claims and bounded like them. A
// token without an entity (a root token), or an entity without a value a
// placeholder names, is a missingValueError naming the placeholder.
func (b *backend) attributedClaims(r *role, name, entityID string) (map[string]any, error) {
	directives := placeholders(r.ClaimsTemplate)
	if entityID == "" {
		return nil, &missingValueError{fmt.Sprintf("role %q attributes each token to the Vault entity that reads it "+
			"('claims_template' names {{%s}}), but this Vault token has no entity: a root token, or a token created "+
			"without an identity. Read it with a token from an auth method (userpass, approle, oidc...)", name, firstOr(directives))}
	}
	entity, err := b.System().EntityInfo(entityID)
	if err != nil {
		return nil, fmt.Errorf("looking up the requesting entity %s: %w", entityID, err)
	}
	if entity == nil {
		return nil, &missingValueError{fmt.Sprintf("role %q names {{%s}} in 'claims_template', but entity %s of this "+
			"Vault token no longer exists", name, firstOr(directives), entityID)}
	}
	groups, err := b.System().GroupsForEntity(entityID)
	if err != nil {
		return nil, fmt.Errorf("looking up the groups of entity %s: %w", entityID, err)
	}
	for _, directive := range directives {
		_, value, err := renderTemplate("{{"+directive+"}}", entity, groups)
		if err != nil || value == `""` {
			return nil, &missingValueError{fmt.Sprintf("role %q names {{%s}} in 'claims_template', but the requesting "+
				"entity %q (%s) has no value for it: give the entity that value (vault write identity/entity/id/%s ...), "+
				"or change the role's claims_template", name, directive, entity.Name, entity.ID, entity.ID)}
		}
	}
	rendered, _, err := renderClaims(r.ClaimsTemplate, entity, groups)
	if err != nil {
		return nil, err
	}
	claims := maps.Clone(r.CustomClaims)
	if claims == nil {
		claims = map[string]any{}
	}
	maps.Copy(claims, rendered)
	encoded, err := json.Marshal(claims)
	if err != nil {
		return nil, fmt.Errorf("encoding the attributed claims: %w", err)
	}
	if len(encoded) > maxCustomClaims {
		return nil, &missingValueError{fmt.Sprintf("the claims of role %q rendered for entity %q are %d bytes of JSON: "+
			"at most %d (custom_claims and claims_template together)", name, entity.Name, len(encoded), maxCustomClaims)}
	}
	return claims, nil
}

func firstOr(directives []string) string {
	if len(directives) == 0 {
		return ""
	}
	return directives[0]
}
