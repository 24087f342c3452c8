package biclient

import (
	"fmt"
	"io"
)

// redacted is what every formatting of a Secret prints.
const redacted = "[redacted]"

// Secret holds a client secret or an access token so that it cannot be
// printed, logged or marshalled by accident: every fmt verb, String,
// GoString and JSON print "[redacted]". The value itself is reached only
// through Reveal, which makes each use of it explicit and easy to review.
//
// The value sits behind a pointer because fmt prints nested pointers as
// addresses: even a struct that holds a Secret in an unexported field and is
// printed with %+v does not show it.
type Secret struct {
	value *string
	// public is a prefix of the value that is no secret on its own, such
	// as the client id of the id:secret pair Basic sends: Scrub removes
	// it with the rest, but not where it stands alone.
	public string
}

// NewSecret wraps value.
func NewSecret(value string) Secret {
	return Secret{value: &value}
}

// Reveal returns the secret value. Call it only where the value is sent to
// Beyond Identity, stored, or returned as the one credential of a response.
func (s Secret) Reveal() string {
	if s.value == nil {
		return ""
	}
	return *s.value
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool {
	return s.Reveal() == ""
}

// String implements fmt.Stringer.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return redacted }

// Format implements fmt.Formatter so that every verb, %x and %q included,
// prints the placeholder.
func (s Secret) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, redacted)
}

// MarshalJSON implements json.Marshaler; storage keeps a secret through an
// explicit field holding Reveal(), never by marshalling a Secret.
func (s Secret) MarshalJSON() ([]byte, error) {
	return []byte(`"` + redacted + `"`), nil
}

// MarshalText implements encoding.TextMarshaler for the same reason.
func (s Secret) MarshalText() ([]byte, error) {
	return []byte(redacted), nil
}
