package beyondidentity

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/sdk/helper/identitytpl"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// A role's claims_template says who in Vault asked for each token: a JSON
// object whose values may be placeholders of Vault's identity templates
// (sdk/helper/identitytpl), rendered with the entity of the Vault token that
// reads creds/ and sent as Beyond Identity custom_claims, so the token
// carries it in bi_custom.
//
// The template is rendered by its structure, never by splicing text into
// JSON: it is parsed once, with each placeholder standing where a value
// stands, and each placeholder's value (resolved by identitytpl) is put in
// its place as one JSON string, list of strings or, for a time, number.
// Whatever a name or a metadata value holds, quotes, braces or newlines, it
// can never add a key, override a claim or change the object's shape; and a
// placeholder renders alike whether the template quotes it or not.

// maxClaimsTemplate bounds the template's text; the rendered claims are
// bounded like custom_claims.
const maxClaimsTemplate = 8 << 10

// claimsTemplate is a parsed claims_template.
type claimsTemplate struct {
	// object is the template's JSON object, each placeholder a
	// placeholder value where it stands.
	object map[string]any
	// directives are the placeholders, trimmed, in the order they appear.
	directives []string
	// namesGroups says whether a placeholder names the entity's groups,
	// which only then are looked up.
	namesGroups bool
}

// placeholder stands in the parsed object for directives[index].
type placeholder struct{ index int }

// sentinelMark starts the JSON string that stands for a placeholder while
// the template is parsed: a NUL no template can hold unnoticed, since every
// string that holds one must be exactly a sentinel.
const sentinelMark = "\x00"

// parseClaimsTemplate parses and validates a claims_template: balanced
// braces, every placeholder one identitytpl knows that names one value, and
// a JSON object in which each placeholder stands alone as a value. It
// returns nil for an empty template.
func parseClaimsTemplate(text string) (*claimsTemplate, error) {
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		return nil, nil
	case len(text) > maxClaimsTemplate:
		return nil, fmt.Errorf("'claims_template' must be at most %d bytes, got %d", maxClaimsTemplate, len(text))
	}
	substituted, directives, err := withSentinels(text)
	if err != nil {
		return nil, err
	}
	entity, groups := sampleIdentity(directives)
	for _, directive := range directives {
		if err := checkDirective(directive, entity, groups); err != nil {
			return nil, err
		}
	}
	object, err := decodeJSONObject("claims_template", substituted, errors.New(`'claims_template' must be a JSON object `+
		`whose values may be placeholders, such as {"vault_entity": {{identity.entity.id}}, "team": `+
		`{{identity.entity.metadata.team}}}: each placeholder stands alone as a value, quoted or not, never inside a longer string`))
	if err != nil {
		return nil, err
	}
	t := &claimsTemplate{directives: directives}
	for _, directive := range directives {
		if strings.HasPrefix(directive, "identity.groups.") || strings.HasPrefix(directive, "identity.entity.groups.") {
			t.namesGroups = true
		}
	}
	used := make([]bool, len(directives))
	parsed, err := t.placeholders(object, used)
	if err != nil {
		return nil, err
	}
	if err := checkClaimsValue("claims_template", parsed); err != nil {
		return nil, err
	}
	t.object = parsed.(map[string]any)
	return t, nil
}

// withSentinels replaces each {{directive}} of text, with the quotes around
// it when it has them, by a JSON string that stands for it, and lists the
// directives. Braces are balanced as identitytpl requires.
func withSentinels(text string) (string, []string, error) {
	const unbalanced = "'claims_template' has unbalanced {{ and }}"
	pieces := strings.Split(text, "{{")
	if strings.Contains(pieces[0], "}}") {
		return "", nil, errors.New(unbalanced)
	}
	var out strings.Builder
	out.WriteString(pieces[0])
	directives := make([]string, 0, len(pieces)-1)
	for i, piece := range pieces[1:] {
		directive, rest, found := strings.Cut(piece, "}}")
		if !found || strings.Contains(rest, "}}") {
			return "", nil, errors.New(unbalanced)
		}
		directives = append(directives, strings.TrimSpace(directive))
		if quoted := strings.HasSuffix(out.String(), `"`) && strings.HasPrefix(rest, `"`); quoted {
			kept := out.String()
			out.Reset()
			out.WriteString(kept[:len(kept)-1])
			rest = rest[1:]
		}
		out.WriteString(`"\u0000` + strconv.Itoa(i) + `"`) // sentinelMark, JSON-escaped
		out.WriteString(rest)
	}
	return out.String(), directives, nil
}

// placeholders returns a copy of a decoded value with each sentinel string
// turned into its placeholder. A sentinel anywhere else (inside a longer
// string, as a key) or twice is a placeholder that does not stand alone.
func (t *claimsTemplate) placeholders(value any, used []bool) (any, error) {
	switch value := value.(type) {
	case map[string]any:
		copied := make(map[string]any, len(value))
		for key, member := range value {
			if strings.Contains(key, sentinelMark) {
				return nil, t.notAlone()
			}
			converted, err := t.placeholders(member, used)
			if err != nil {
				return nil, err
			}
			copied[key] = converted
		}
		return copied, nil
	case []any:
		copied := make([]any, len(value))
		for i, member := range value {
			converted, err := t.placeholders(member, used)
			if err != nil {
				return nil, err
			}
			copied[i] = converted
		}
		return copied, nil
	case string:
		if !strings.Contains(value, sentinelMark) {
			return value, nil
		}
		index, err := strconv.Atoi(strings.TrimPrefix(value, sentinelMark))
		if !strings.HasPrefix(value, sentinelMark) || err != nil || index < 0 || index >= len(used) || used[index] {
			return nil, t.notAlone()
		}
		used[index] = true
		return placeholder{index}, nil
	}
	return value, nil
}

// notAlone is the answer to a template whose placeholder does not stand
// alone as a value.
func (t *claimsTemplate) notAlone() error {
	names := make([]string, 0, len(t.directives))
	for _, directive := range t.directives {
		names = append(names, "{{"+biclient.CleanText(directive, 64)+"}}")
	}
	return fmt.Errorf("'claims_template' must use each placeholder as a whole value, quoted or not, such as "+
		`"team": {{identity.entity.metadata.team}}: not inside a longer string, nor as a key (placeholders: %s)`,
		strings.Join(names, ", "))
}

// checkDirective refuses a placeholder that identitytpl does not know, or
// that names a whole map rather than one value.
func checkDirective(directive string, entity *logical.Entity, groups []*logical.Group) error {
	value, err := resolveDirective(directive, entity, groups)
	if err != nil {
		return fmt.Errorf("'claims_template' holds {{%s}}, which is not a placeholder of Vault's identity "+
			"templates (such as {{identity.entity.id}}, {{identity.entity.name}}, {{identity.entity.metadata.KEY}}, "+
			"{{identity.entity.groups.names}}): %w", biclient.CleanText(directive, 64), err)
	}
	if _, isMap := value.(map[string]string); isMap {
		return fmt.Errorf("'claims_template' holds {{%s}}, which names a whole map: name one key of it, such as "+
			"{{%s.KEY}}", biclient.CleanText(directive, 64), biclient.CleanText(directive, 64))
	}
	return nil
}

// resolveDirective is the value of one placeholder for an entity and its
// groups, resolved by identitytpl: a string, a []string, a
// map[string]string (a whole map, which templates may not use) or a
// json.Number (a time). identitytpl's JSON mode writes an entity's strings
// quoted and its lists as arrays, but a group's values raw, so each is read
// back from what it is. A group named in a placeholder is looked for in
// the entity's own namespace: a same-named group elsewhere is another group.
func resolveDirective(directive string, entity *logical.Entity, groups []*logical.Group) (any, error) {
	_, out, err := identitytpl.PopulateString(identitytpl.PopulateStringInput{
		Mode: identitytpl.JSONTemplating, String: "{{" + directive + "}}", Entity: entity, Groups: groups,
		NamespaceID: entity.GetNamespaceID(),
	})
	switch {
	case err != nil:
		return nil, err
	case strings.HasPrefix(directive, "identity.groups."):
		return out, nil
	case strings.HasPrefix(out, `"`):
		return strconv.Unquote(out)
	case strings.HasPrefix(out, "{"):
		return map[string]string{}, nil
	case strings.HasPrefix(out, "[") || out == "null":
		var list []string
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return nil, err
		}
		return list, nil
	}
	return json.Number(out), nil // a time: Unix seconds
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
			if len(parts) < 3 {
				continue
			}
			i := slices.IndexFunc(groups, func(g *logical.Group) bool { return g.ID == parts[1] })
			if i < 0 {
				groups = append(groups, &logical.Group{ID: parts[1], Name: parts[1], Metadata: map[string]string{}})
				i = len(groups) - 1
			}
			if key, ok := strings.CutPrefix(parts[2], "metadata."); ok {
				groups[i].Metadata[key] = "value"
			}
		}
	}
	return entity, groups
}

// render fills the template for an entity and its groups, over a copy of
// the claims beneath it (the role's custom_claims): its members win. A
// placeholder without a value (an empty string, a group the entity is not
// in) is a missing(directive) error naming it.
func (t *claimsTemplate) render(beneath map[string]any, entity *logical.Entity, groups []*logical.Group,
	missing func(directive string) error) (map[string]any, error) {
	values := make([]any, len(t.directives))
	for i, directive := range t.directives {
		value, err := resolveDirective(directive, entity, groups)
		if err != nil {
			return nil, missing(directive)
		}
		switch value := value.(type) {
		case string:
			if value == "" {
				return nil, missing(directive)
			}
			values[i] = value
		case []string:
			list := make([]any, len(value))
			for j, item := range value {
				list[j] = item
			}
			values[i] = list
		case json.Number:
			values[i] = value
		default: // a whole map, refused on write
			return nil, missing(directive)
		}
	}
	claims := make(map[string]any, len(beneath)+len(t.object))
	maps.Copy(claims, beneath)
	for key, member := range t.object {
		claims[key] = fill(member, values)
	}
	return claims, nil
}

// fill is a copy of a parsed template value with its placeholders' values.
func fill(value any, values []any) any {
	switch value := value.(type) {
	case map[string]any:
		filled := make(map[string]any, len(value))
		for key, member := range value {
			filled[key] = fill(member, values)
		}
		return filled
	case []any:
		filled := make([]any, len(value))
		for i, member := range value {
			filled[i] = fill(member, values)
		}
		return filled
	case placeholder:
		return values[value.index]
	}
	return value
}

// attributedClaims renders a role's claims_template for the entity that
// asks, merged over the role's custom_claims and bounded like them. A
// token without an entity (a root token), or an entity without a value a
// placeholder names, is a 400 naming the placeholder: never an anonymous
// token.
func (b *backend) attributedClaims(r *role, name, entityID string) (map[string]any, error) {
	t, err := r.claimsTemplate()
	if err != nil {
		return nil, badRequest("role %q has a claims_template this version refuses: %v; write the role's "+
			"claims_template again", name, err)
	}
	if entityID == "" {
		return nil, badRequest("role %q attributes each token to the Vault entity that reads it "+
			"('claims_template' names {{%s}}), but this Vault token has no entity: a root token, or a token created "+
			"without an identity. Read it with a token from an auth method (userpass, approle, oidc...)", name, firstOr(t.directives))
	}
	entity, groups, err := b.identity(entityID, t.namesGroups)
	if err != nil {
		return nil, err
	}
	if entity == nil {
		return nil, badRequest("role %q names {{%s}} in 'claims_template', but entity %s of this "+
			"Vault token no longer exists", name, firstOr(t.directives), entityID)
	}
	claims, err := t.render(r.CustomClaims, entity, groups, func(directive string) error {
		return badRequest("role %q names {{%s}} in 'claims_template', but the requesting "+
			"entity %q (%s) has no value for it: give the entity that value (vault write identity/entity/id/%s ...), "+
			"or change the role's claims_template", name, directive, entity.Name, entity.ID, entity.ID)
	})
	if err != nil {
		return nil, err
	}
	encoded, err := json.Marshal(claims)
	if err != nil {
		return nil, fmt.Errorf("encoding the attributed claims: %w", err)
	}
	if len(encoded) > maxCustomClaims {
		return nil, badRequest("the claims of role %q rendered for entity %q are %d bytes of JSON: "+
			"at most %d (custom_claims and claims_template together)", name, entity.Name, len(encoded), maxCustomClaims)
	}
	return claims, nil
}

func firstOr(directives []string) string {
	if len(directives) == 0 {
		return ""
	}
	return directives[0]
}
