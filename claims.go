package beyondidentity

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// Custom claims and claims templates are JSON that Beyond Identity reads,
// puts in the token as bi_custom, and the plugin then compares with what it
// sent, value for value. So what is written must come back unchanged from
// any JSON reader: numbers such a reader rounds, nesting some parsers
// refuse or crash on, and text after the object are refused on write.
//
// Numbers: JSON readers (JavaScript's, and most others) hold a number as a
// 64-bit float. An integer is kept exact up to 2^53 in magnitude; beyond
// it, it is refused. A number with a fraction or an exponent is kept as
// written, end to end (stored, sent and compared as its decimal text),
// when a float reader gives back the same value: 1.5, 0.1 or 2.5e-3 do;
// 0.30000000000000001 (which reads back as 0.3), 1e400 (Infinity) and
// 1e-400 (0) do not.

// claimsNumbersHelp is the rule on numbers, as the fields' help says it.
const claimsNumbersHelp = "Numbers a JSON reader may round are refused: integers beyond 2^53 (write them as strings), " +
	"and other numbers that a 64-bit float does not give back as written (more than 15 significant digits, " +
	"non-finite); the others are kept exactly as written."

// maxClaimsDepth bounds the nesting of custom_claims and of a
// claims_template: the object itself is the first level.
const maxClaimsDepth = 32

// maxExactInteger is the largest integer a float64 holds exactly, with
// every integer below it: 2^53.
const maxExactInteger = 1 << 53

// decodeJSONObject decodes text, the value of field, as one JSON object and
// nothing after it, nested at most maxClaimsDepth levels, its numbers kept
// as written (json.Number). notObject is the answer to text that is no
// JSON object.
func decodeJSONObject(field, text string, notObject error) (map[string]any, error) {
	if depth := textDepth(text); depth > maxClaimsDepth {
		return nil, depthError(field)
	}
	decoder := json.NewDecoder(strings.NewReader(text))
	decoder.UseNumber()
	var object map[string]any
	err := decoder.Decode(&object)
	if err != nil || object == nil {
		return nil, notObject
	}
	// decoder.More would let a stray ] or } through: anything but space
	// after the object is refused.
	if rest := strings.TrimSpace(text[decoder.InputOffset():]); rest != "" {
		return nil, fmt.Errorf("'%s' must be one JSON object with nothing after it, but %q follows its closing brace",
			field, biclient.CleanText(rest, 16))
	}
	return object, nil
}

// textDepth is how deep the brackets and braces of JSON text nest, outside
// its strings: measured before decoding, so that a deep value is refused
// with the bound, not decoded.
func textDepth(text string) int {
	depth, deepest, inString, escaped := 0, 0, false, false
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString && c == '"':
			inString = false
		case inString:
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

func depthError(field string) error {
	return fmt.Errorf("'%s' nests objects and lists more than %d levels deep (the object itself is the first): "+
		"at most %d levels", field, maxClaimsDepth, maxClaimsDepth)
}

// checkClaimsValue refuses, in a decoded value of field, nesting deeper
// than maxClaimsDepth and a number a JSON reader may round. A placeholder
// of a claims_template counts as a level: it may render as a list.
func checkClaimsValue(field string, value any) error {
	return checkClaimsAt(field, "", value, 1)
}

func checkClaimsAt(field, at string, value any, depth int) error {
	switch value := value.(type) {
	case map[string]any:
		if depth > maxClaimsDepth {
			return depthError(field)
		}
		keys := make([]string, 0, len(value))
		for key := range value {
			keys = append(keys, key)
		}
		sort.Strings(keys) // the first offence named is the same on every try
		for _, key := range keys {
			if err := checkClaimsAt(field, joinKey(at, key), value[key], depth+1); err != nil {
				return err
			}
		}
	case []any:
		if depth > maxClaimsDepth {
			return depthError(field)
		}
		for i, member := range value {
			if err := checkClaimsAt(field, fmt.Sprintf("%s[%d]", at, i), member, depth+1); err != nil {
				return err
			}
		}
	case placeholder:
		if depth > maxClaimsDepth {
			return depthError(field)
		}
	default:
		if text, isNumber := numberText(value); isNumber && !keptExact(text) {
			return fmt.Errorf("'%s' holds the number %s at %s, which a JSON reader may round: integers must be at most "+
				"2^53 (9007199254740992) in magnitude, and other numbers must read back as written from a 64-bit float "+
				"(at most 15 significant digits, finite); write it as a string, such as \"%s\"",
				field, biclient.CleanText(text, 40), biclient.CleanText(at, 64), biclient.CleanText(text, 40))
		}
	}
	return nil
}

func joinKey(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}

// numberText is a JSON number's text, whatever Go type holds it: a
// json.Number from Vault's decoding, or a Go number from a caller in the
// same process.
func numberText(value any) (string, bool) {
	switch value := value.(type) {
	case json.Number:
		return string(value), true
	case float64:
		if math.IsInf(value, 0) || math.IsNaN(value) {
			return strconv.FormatFloat(value, 'g', -1, 64), true
		}
		return strconv.FormatFloat(value, 'f', -1, 64), true
	case float32:
		return numberText(float64(value))
	case int:
		return strconv.Itoa(value), true
	case int64:
		return strconv.FormatInt(value, 10), true
	case uint64:
		return strconv.FormatUint(value, 10), true
	}
	return "", false
}

// keptExact reports whether a 64-bit float reader gives back the value of
// the JSON number text: an integer of at most 2^53 in magnitude, or a
// finite number whose shortest float form has the same decimal value.
func keptExact(text string) bool {
	written, ok := parseDecimal(text)
	if !ok {
		return false
	}
	if written.isInteger() {
		return written.atMost(maxExactInteger)
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return false
	}
	read, ok := parseDecimal(strconv.FormatFloat(f, 'e', -1, 64))
	return ok && read == written
}

// decimal is a number's exact value as digits × 10^exponent, its digits
// without leading or trailing zeros ("" for zero), so that two texts of one
// value give equal decimals.
type decimal struct {
	negative bool
	digits   string
	exponent int
}

// parseDecimal reads a JSON number's text exactly, without arithmetic on
// its exponent (1e1000000000 costs nothing).
func parseDecimal(text string) (decimal, bool) {
	var d decimal
	mantissa, exponentText, hasExponent := strings.Cut(strings.ToLower(text), "e")
	if strings.HasPrefix(mantissa, "-") {
		d.negative, mantissa = true, mantissa[1:]
	}
	whole, fraction, _ := strings.Cut(mantissa, ".")
	digits := whole + fraction
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return d, false
	}
	exponent := 0
	if hasExponent {
		e, err := strconv.Atoi(exponentText)
		if err != nil || e > math.MaxInt32 || e < math.MinInt32 {
			return d, false
		}
		exponent = e
	}
	exponent -= len(fraction)
	trimmed := strings.TrimRight(digits, "0")
	exponent += len(digits) - len(trimmed)
	d.digits = strings.TrimLeft(trimmed, "0")
	if d.digits == "" {
		return decimal{}, true
	}
	d.exponent = exponent
	return d, true
}

func (d decimal) isInteger() bool { return d.exponent >= 0 }

// atMost reports whether an integer's magnitude is at most limit.
func (d decimal) atMost(limit uint64) bool {
	if d.digits == "" {
		return true
	}
	if len(d.digits)+d.exponent > len(strconv.FormatUint(limit, 10)) {
		return false
	}
	n, err := strconv.ParseUint(d.digits+strings.Repeat("0", d.exponent), 10, 64)
	return err == nil && n <= limit
}
