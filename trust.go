package beyondidentity

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/scope"
)

// What a fresh token's answer says is checked against the token itself:
// its own claims (a JWT's payload, or an opaque token's introspection) are
// what Beyond Identity enforces, and an answer may say less than they grant.
// A token passes only when both grant exactly the scopes asked for and the
// token carries exactly the custom claims sent; a claim that cannot be read
// plainly counts as a difference, never as a pass.

// checkGrant compares a fresh token with its order: the answer's scopes,
// then its own claims when they are known (nil: an opaque token whose
// introspection failed, which is issued with a warning). A scope
// difference is a 400, the operator's to look into; claims that cannot be
// trusted are a 502. Either way the token must be discarded. Whatever the
// messages quote of Beyond Identity's answer is scrubbed (f.quote).
func (f *freshToken) checkGrant(o *order) ([]string, error) {
	claims, isJWT := f.claims, f.answer.Format == biclient.FormatJWT
	if missing, extra := scopeDifference(o.scopes, f.scopes); missing != "" {
		return nil, badRequest("Beyond Identity granted other scopes than %s requested (missing: %s; extra: %s)",
			o.who(), missing, f.quote(extra))
	}
	if claims == nil {
		if len(o.claims) > 0 {
			return []string{"the token's custom claims could not be confirmed: introspecting the opaque token failed"}, nil
		}
		return nil, nil
	}
	if claims.Unreadable != "" {
		return nil, f.untrusted(o, claims.Unreadable)
	}
	switch {
	case claims.HasScopes:
		if missing, extra := scopeDifference(o.scopes, claims.Scopes); missing != "" {
			return nil, badRequest("the token's own scope claims grant other scopes than %s requested, "+
				"whatever Beyond Identity's answer said (missing: %s; extra: %s)", o.who(), missing, f.quote(extra))
		}
	case isJWT:
		return nil, f.untrusted(o, "it carries no scope claim")
	}
	if claims.Custom == nil && !isJWT {
		// Introspection need not show every claim: only a JWT's are complete.
		if len(o.claims) > 0 {
			return []string{"the token's custom claims could not be confirmed: its introspection does not show bi_custom"}, nil
		}
		return nil, nil
	}
	if difference := claimsDifference(o.claims, claims.Custom); difference != "" {
		return nil, f.untrusted(o, difference)
	}
	return nil, nil
}

// quote makes text from Beyond Identity's answer fit for a message:
// scrubbed of the client's credentials and the token, as an error body is,
// and cleaned of control characters.
func (f *freshToken) quote(text string) string {
	return biclient.CleanText(f.scrub(text), 512)
}

// untrusted is the 502 for a token whose own claims do not show what was
// asked; why may quote the claims.
func (f *freshToken) untrusted(o *order, why string) error {
	return refuse(http.StatusBadGateway, "the token Beyond Identity issued for %s does not show what was asked of it: %s",
		o.who(), f.quote(why))
}

// scopeDifference lists what granted lacks of requested and what it has
// beyond it, or two empty strings when they are equal.
func scopeDifference(requested, granted []string) (missing, extra string) {
	lacking, beyond := scope.Missing(requested, granted), scope.Missing(granted, requested)
	if len(lacking) == 0 && len(beyond) == 0 {
		return "", ""
	}
	return listOrNone(lacking), listOrNone(beyond)
}

func listOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, " ")
}

// claimsDifference compares the custom claims sent with the token's
// bi_custom, and says how they differ; "" when they are equal.
func claimsDifference(sent map[string]any, shown json.RawMessage) string {
	if len(sent) == 0 {
		if shown == nil || bytes.Equal(bytes.TrimSpace(shown), []byte("{}")) {
			return ""
		}
		return "it carries bi_custom, although no custom claims were sent"
	}
	if shown == nil {
		return "it carries no bi_custom, although custom claims were sent"
	}
	want, ok := asSent(sent)
	if !ok {
		return "the custom claims sent cannot be encoded"
	}
	// One strict read gives both the check and the value.
	got, problem := biclient.PlainObject(shown)
	if problem != "" {
		return "its bi_custom cannot be read plainly: " + problem
	}
	if sameJSONValue(want, got) {
		return ""
	}
	var missing, extra, other []string
	for _, key := range slices.Sorted(maps.Keys(want)) {
		value, ok := got[key]
		switch {
		case !ok:
			missing = append(missing, key)
		case !sameJSONValue(want[key], value):
			other = append(other, key)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[key]; !ok {
			extra = append(extra, key)
		}
	}
	return fmt.Sprintf("its bi_custom differs from the custom claims sent (missing: %s; extra: %s; other values: %s)",
		claimKeys(missing), claimKeys(extra), claimKeys(other))
}

// claimKeys names claim keys in a message, cleaned and bounded.
func claimKeys(keys []string) string {
	if len(keys) == 0 {
		return "none"
	}
	return biclient.CleanText(strings.Join(keys, ", "), 256)
}

// asSent is the custom claims as Beyond Identity received them: as a JSON
// reader, numbers kept exact, reads their encoding. Claims that hold only
// what such a reader gives (strings of valid UTF-8, json.Number, bool, nil,
// and objects and lists of them: what decoded and rendered claims hold)
// are that already, and are not encoded again.
func asSent(sent map[string]any) (map[string]any, bool) {
	if isDecodedJSON(sent) {
		return sent, true
	}
	encoded, err := json.Marshal(sent)
	if err != nil {
		return nil, false
	}
	decoded, problem := biclient.PlainObject(encoded)
	return decoded, problem == ""
}

// isDecodedJSON reports whether value is one a JSON reader, numbers kept
// exact, could have given: encoding and reading it back changes nothing
// sameJSONValue can tell.
func isDecodedJSON(value any) bool {
	switch value := value.(type) {
	case map[string]any:
		for key, member := range value {
			if !utf8.ValidString(key) || !isDecodedJSON(member) {
				return false
			}
		}
		return true
	case []any:
		return !slices.ContainsFunc(value, func(item any) bool { return !isDecodedJSON(item) })
	case string:
		return utf8.ValidString(value)
	case json.Number:
		_, exact := exactNumber(string(value))
		return exact && json.Valid([]byte(value))
	case bool, nil:
		return true
	}
	return false
}

// sameJSONValue compares two decoded JSON values; numbers by their exact
// value, since 1, 1.0 and 1e0 are one number however a server writes it,
// and 1e20+1 is not 1e20.
func sameJSONValue(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for key, value := range a {
			other, ok := b[key]
			if !ok || !sameJSONValue(value, other) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		return ok && slices.EqualFunc(a, b, sameJSONValue)
	case json.Number:
		b, ok := b.(json.Number)
		return ok && sameNumber(a, b)
	}
	return a == b
}

func sameNumber(a, b json.Number) bool {
	x, okX := exactNumber(string(a))
	y, okY := exactNumber(string(b))
	return okX && okY && x == y
}

// exactNumber writes a JSON number in one form, its significant digits and
// a power of ten ("-15e-1" for -1.50), so that two numbers are equal
// exactly when their forms are. No float is involved, and no number is
// expanded: 1e999999999 costs no more than 1.
func exactNumber(number string) (string, bool) {
	mantissa, exponent, _ := strings.Cut(strings.ToLower(number), "e")
	sign := ""
	if unsigned, negative := strings.CutPrefix(mantissa, "-"); negative {
		sign, mantissa = "-", unsigned
	}
	whole, fraction, _ := strings.Cut(mantissa, ".")
	if whole == "" || !allDigits(whole) || !allDigits(fraction) {
		return "", false
	}
	power, ok := new(big.Int).SetString(cmp.Or(exponent, "0"), 10)
	if !ok {
		return "", false
	}
	digits := strings.TrimLeft(whole+fraction, "0")
	if digits == "" {
		return "0", true // -0 is 0
	}
	significant := strings.TrimRight(digits, "0")
	power.Add(power, big.NewInt(int64(len(digits)-len(significant)-len(fraction))))
	return sign + significant + "e" + power.String(), true
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
