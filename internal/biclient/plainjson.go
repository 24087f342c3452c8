package biclient

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// A token's claims are what Beyond Identity enforces, so the plugin must
// read them as any other reader would. encoding/json is lenient where
// readers disagree: it keeps the last of a key written twice, folds invalid
// UTF-8 and lone surrogates into U+FFFD (so two different keys can become
// one), and reads 64-bit floats. PlainObjectProblem accepts only the JSON
// every reader reads alike, so that what the plugin checks is what Beyond
// Identity enforces.

// maxJSONDepth bounds the nesting of a JSON text read from Beyond Identity:
// the claims nest one level below the payload and custom claims, whose
// templates are bounded at 32 levels, one below that.
const maxJSONDepth = 64

// PlainObjectProblem says why data is not one JSON object (RFC 8259) that
// every reader reads alike; "" when it is. Refused: anything but an object,
// a byte-order mark, bytes after the object, nesting beyond maxJSONDepth,
// NaN, Infinity or any other non-JSON number, invalid UTF-8, an escaped
// lone surrogate, and a key written twice in one object at any depth, in
// any escaped spelling.
func PlainObjectProblem(data []byte) string {
	_, problem := readPlainObject(data, false)
	return problem
}

// PlainObject reads data as PlainObjectProblem does and, when it reads
// plainly, returns its value as encoding/json with UseNumber would: a
// map[string]any whose numbers are json.Number, written as in data. It
// spares a caller that needs both the check and the value a second parse.
func PlainObject(data []byte) (map[string]any, string) {
	object, problem := readPlainObject(data, true)
	if problem != "" {
		return nil, problem
	}
	return object.(map[string]any), ""
}

func readPlainObject(data []byte, decode bool) (any, string) {
	if strings.HasPrefix(string(data), "\uFEFF") {
		return nil, "it starts with a byte-order mark"
	}
	r := &plainReader{data: data, decode: decode}
	r.skipSpace()
	if r.peek() != '{' {
		return nil, "it is not a JSON object"
	}
	object := r.object(1)
	if r.problem == "" {
		r.skipSpace()
		if r.pos < len(r.data) {
			r.fail("bytes follow the JSON object")
		}
	}
	return object, r.problem
}

// plainReader is a recursive-descent reader that stops at the first
// problem; the depth bound also bounds its recursion. With decode set it
// also builds the values it reads; without, each value is nil.
type plainReader struct {
	data    []byte
	pos     int
	decode  bool
	problem string
}

func (r *plainReader) fail(format string, args ...any) {
	if r.problem == "" {
		r.problem = fmt.Sprintf(format, args...)
	}
}

func (r *plainReader) peek() byte {
	if r.pos < len(r.data) {
		return r.data[r.pos]
	}
	return 0
}

func (r *plainReader) skipSpace() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// expect consumes c, after any whitespace, or fails.
func (r *plainReader) expect(c byte) bool {
	r.skipSpace()
	if r.peek() != c {
		r.fail("it is not valid JSON at byte %d", r.pos)
		return false
	}
	r.pos++
	return true
}

func (r *plainReader) value(depth int) any {
	r.skipSpace()
	switch c := r.peek(); {
	case c == '{':
		return r.object(depth + 1)
	case c == '[':
		return r.array(depth + 1)
	case c == '"':
		return r.text(r.decode)
	case c == '-' || c >= '0' && c <= '9':
		return r.number()
	case c == 't':
		return r.literal("true", true)
	case c == 'f':
		return r.literal("false", false)
	case c == 'n':
		return r.literal("null", nil)
	case c == 'N' || c == 'I':
		r.fail("it holds NaN or Infinity, which JSON has no number for")
	default:
		r.fail("it is not valid JSON at byte %d", r.pos)
	}
	return nil
}

func (r *plainReader) object(depth int) any {
	if depth > maxJSONDepth {
		r.fail("it nests deeper than %d levels", maxJSONDepth)
		return nil
	}
	var members map[string]any
	if r.decode {
		members = map[string]any{}
	}
	r.pos++ // {
	r.skipSpace()
	if r.peek() == '}' {
		r.pos++
		return members
	}
	seen := map[string]bool{}
	for r.problem == "" {
		r.skipSpace()
		if r.peek() != '"' {
			r.fail("it is not valid JSON at byte %d", r.pos)
			break
		}
		key := r.text(true)
		if r.problem != "" {
			break
		}
		if seen[key] {
			r.fail("the key %q appears more than once in one object", CleanText(key, 32))
			break
		}
		seen[key] = true
		if !r.expect(':') {
			break
		}
		value := r.value(depth)
		if r.decode {
			members[key] = value
		}
		if !r.more('}') {
			break
		}
	}
	return members
}

func (r *plainReader) array(depth int) any {
	if depth > maxJSONDepth {
		r.fail("it nests deeper than %d levels", maxJSONDepth)
		return nil
	}
	var items []any
	if r.decode {
		items = []any{}
	}
	r.pos++ // [
	r.skipSpace()
	if r.peek() == ']' {
		r.pos++
		return items
	}
	for r.problem == "" {
		item := r.value(depth)
		if r.decode {
			items = append(items, item)
		}
		if !r.more(']') {
			break
		}
	}
	return items
}

// more consumes the comma before another member, reporting true, or the
// closing byte, reporting false.
func (r *plainReader) more(closing byte) bool {
	if r.problem != "" {
		return false
	}
	r.skipSpace()
	switch r.peek() {
	case ',':
		r.pos++
		return true
	case closing:
		r.pos++
		return false
	}
	r.fail("it is not valid JSON at byte %d", r.pos)
	return false
}

// literal reads word, which stands for value.
func (r *plainReader) literal(word string, value any) any {
	if !strings.HasPrefix(string(r.data[r.pos:]), word) {
		r.fail("it is not valid JSON at byte %d", r.pos)
		return nil
	}
	r.pos += len(word)
	return value
}

// number reads RFC 8259's number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
// When decoding, it is a json.Number written as in the text.
func (r *plainReader) number() any {
	start := r.pos
	if r.peek() == '-' && r.pos+1 < len(r.data) && r.data[r.pos+1] == 'I' {
		r.fail("it holds NaN or Infinity, which JSON has no number for")
		return nil
	}
	if !r.numberSyntax() {
		r.fail("it holds a number JSON does not allow at byte %d", start)
		return nil
	}
	if !r.decode {
		return nil
	}
	return json.Number(r.data[start:r.pos])
}

func (r *plainReader) numberSyntax() bool {
	if r.peek() == '-' {
		r.pos++
	}
	switch c := r.peek(); {
	case c == '0':
		r.pos++
	case c >= '1' && c <= '9':
		r.digits()
	default:
		return false
	}
	if r.peek() == '.' {
		r.pos++
		if !r.digits() {
			return false
		}
	}
	if c := r.peek(); c == 'e' || c == 'E' {
		r.pos++
		if c := r.peek(); c == '+' || c == '-' {
			r.pos++
		}
		return r.digits()
	}
	return true
}

// digits consumes [0-9]* and reports whether there was one.
func (r *plainReader) digits() bool {
	start := r.pos
	for r.pos < len(r.data) && r.data[r.pos] >= '0' && r.data[r.pos] <= '9' {
		r.pos++
	}
	return r.pos > start
}

// text reads a string and, when keep is set, returns its value, escapes
// decoded. Invalid UTF-8 and a lone surrogate are problems: encoding/json
// would read both as U+FFFD, making different strings equal.
func (r *plainReader) text(keep bool) string {
	r.pos++ // "
	// Most strings are printable ASCII without escapes: read at once.
	start := r.pos
	for r.pos < len(r.data) && isPlainASCII(r.data[r.pos]) {
		r.pos++
	}
	if r.peek() == '"' {
		r.pos++
		if keep {
			return string(r.data[start : r.pos-1])
		}
		return ""
	}
	var value []byte
	if keep {
		value = append(value, r.data[start:r.pos]...)
	}
	for r.problem == "" {
		if r.pos >= len(r.data) {
			r.fail("a string is never closed")
			break
		}
		char, size := rune(r.data[r.pos]), 1
		switch {
		case char == '"':
			r.pos++
			return string(value)
		case char == '\\':
			char, size = r.escape()
		case char < 0x20:
			r.fail("a string holds a control character at byte %d", r.pos)
		case char >= utf8.RuneSelf:
			char, size = utf8.DecodeRune(r.data[r.pos:])
			if char == utf8.RuneError && size == 1 {
				r.fail("a string holds invalid UTF-8 at byte %d", r.pos)
			}
		}
		r.pos += size
		if keep {
			value = utf8.AppendRune(value, char)
		}
	}
	return ""
}

// isPlainASCII reports whether c stands for itself in a JSON string: not
// a quote, a backslash, a control character or part of a multi-byte one.
func isPlainASCII(c byte) bool {
	return c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\'
}

// escapes are the one-character escapes JSON allows, and what they stand
// for.
var escapes = map[byte]rune{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// escape decodes the escape sequence at r.pos; it returns the character
// and how many bytes are left to skip (none: it consumed them).
func (r *plainReader) escape() (rune, int) {
	r.pos++ // backslash
	c := r.peek()
	r.pos++
	if char, ok := escapes[c]; ok {
		return char, 0
	}
	if c == 'u' {
		return r.codePoint(), 0
	}
	r.fail("a string holds an invalid escape at byte %d", r.pos-2)
	return 0, 0
}

// codePoint reads the hex digits of a \u escape, and of the low half of a
// surrogate pair after a high one.
func (r *plainReader) codePoint() rune {
	first := r.hex4()
	switch {
	case r.problem != "":
		return 0
	case utf16.IsSurrogate(first) && first < 0xDC00 && strings.HasPrefix(string(r.data[r.pos:]), `\u`):
		r.pos += 2
		pair := utf16.DecodeRune(first, r.hex4())
		if pair != utf8.RuneError {
			return pair
		}
	case !utf16.IsSurrogate(first):
		return first
	}
	r.fail("a string holds a lone surrogate escape")
	return 0
}

func (r *plainReader) hex4() rune {
	if r.pos+4 > len(r.data) {
		r.fail("a string holds an invalid escape at byte %d", r.pos)
		return 0
	}
	var unit [2]byte
	if _, err := hex.Decode(unit[:], r.data[r.pos:r.pos+4]); err != nil {
		r.fail("a string holds an invalid escape at byte %d", r.pos)
		return 0
	}
	r.pos += 4
	return rune(unit[0])<<8 | rune(unit[1])
}
