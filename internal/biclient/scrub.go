package biclient

import (
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"slices"
	"strings"
)

// minFragment is the shortest run of a secret's characters Scrub removes
// on its own: any 16 consecutive characters of a secret or token, in any
// of its forms, are gone from what Scrub returns, so that a prefix or a
// piece of a token cut by an upstream's truncation is gone too. Shorter
// runs are too common to tell from ordinary text.
const minFragment = 16

// minOffsetForm is the shortest base64 form at an offset (see echoForms)
// that Scrub looks for whole, for a secret too short for minFragment.
const minOffsetForm = 8

// Scrub removes every secret value from text, for upstream messages that
// might echo what they were sent, in every form that gives the value back
// to whoever reads it:
//   - as is, form-encoded (url.QueryEscape) and path-escaped
//     (url.PathEscape), in percent escapes of either case;
//   - in base64 with or without its padding and in its URL-safe alphabet,
//     also when the value sat inside a longer text that was encoded, at any
//     of the three byte offsets base64 can give it;
//   - in hex of either case;
//   - any run of minFragment or more consecutive characters of one of
//     these forms.
//
// Each run of removed text becomes one "[redacted]". Text is matched with
// ASCII case folded, which can only remove more. Cost: a lookup per
// character of each form, so Scrub is for the small texts quoted from
// upstream, not for bulk data.
func Scrub(text string, secrets ...Secret) string {
	if text == "" || len(secrets) == 0 {
		return text
	}
	m := newMasker(text)
	for _, s := range secrets {
		for _, form := range echoForms(s) {
			m.hide(asciiLower(form.text), form.public)
		}
	}
	return m.result()
}

// masker marks the bytes of a text that must go.
type masker struct {
	text, folded string
	hidden       []bool
	// windows indexes the text's minFragment-long runs by content, built
	// once the first long form is looked for.
	windows map[string][]int
}

func newMasker(text string) *masker {
	return &masker{text: text, folded: asciiLower(text), hidden: make([]bool, len(text))}
}

// hide marks every occurrence of form, and of any run of minFragment of
// its characters but the first public ones alone, in the text.
func (m *masker) hide(form string, public int) {
	if len(form) < minFragment {
		for at := 0; ; {
			i := strings.Index(m.folded[at:], form)
			if i < 0 {
				return
			}
			m.mark(at+i, len(form))
			at += i + 1
		}
	}
	if len(m.text) < minFragment {
		return
	}
	if m.windows == nil {
		m.windows = make(map[string][]int, len(m.folded))
		for i := 0; i+minFragment <= len(m.folded); i++ {
			run := m.folded[i : i+minFragment]
			m.windows[run] = append(m.windows[run], i)
		}
	}
	for i := max(0, public-minFragment+1); i+minFragment <= len(form); i++ {
		for _, at := range m.windows[form[i:i+minFragment]] {
			m.mark(at, minFragment)
		}
	}
}

func (m *masker) mark(at, n int) {
	for i := at; i < at+n; i++ {
		m.hidden[i] = true
	}
}

// result is the text with each run of marked bytes replaced by one
// redacted.
func (m *masker) result() string {
	var out strings.Builder
	for i := 0; i < len(m.text); i++ {
		switch {
		case !m.hidden[i]:
			out.WriteByte(m.text[i])
		case i == 0 || !m.hidden[i-1]:
			out.WriteString(redacted)
		}
	}
	return out.String()
}

// echoForm is one spelling of a secret; its first public bytes spell the
// secret's public prefix (see Secret), and are no secret alone.
type echoForm struct {
	text   string
	public int
}

// echoForms are the spellings of a secret an upstream may echo, distinct.
// Only its plain spellings (as is, escaped) show its public prefix as is:
// in its encodings, the prefix alone is not ordinary text.
func echoForms(s Secret) []echoForm {
	value := s.Reveal()
	if value == "" {
		return nil
	}
	var forms []echoForm
	for _, escape := range []func(string) string{func(v string) string { return v }, url.QueryEscape, url.PathEscape} {
		forms = append(forms, echoForm{escape(value), len(escape(s.public))})
	}
	raw := []byte(value)
	encoded := []string{hex.EncodeToString(raw)}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		encoded = append(encoded, enc.EncodeToString(raw))
	}
	for offset := 0; offset <= 2; offset++ {
		if core := base64AtOffset(raw, offset); len(core) >= minOffsetForm {
			encoded = append(encoded, core, strings.NewReplacer("+", "-", "/", "_").Replace(core))
		}
	}
	for _, text := range encoded {
		forms = append(forms, echoForm{text: text})
	}
	return distinct(forms)
}

// base64AtOffset is what base64 of a longer text holds of value when value
// starts offset bytes into one of base64's 3-byte groups: the characters
// that depend on value's bytes alone, whatever comes before and after.
func base64AtOffset(value []byte, offset int) string {
	encoded := base64.RawStdEncoding.EncodeToString(append(make([]byte, offset), value...))
	// The first character that no byte before value reaches: 8 bits of
	// offset make 2 characters dirty (one shared), 16 bits 3.
	first := []int{0, 2, 3}[offset]
	// The last character wholly made of value's bits.
	last := (offset + len(value)) * 8 / 6
	if last <= first {
		return ""
	}
	return encoded[first:last]
}

func distinct(forms []echoForm) []echoForm {
	out := forms[:0]
	for _, f := range forms {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// asciiLower folds ASCII letters only, so that every byte keeps its place.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
