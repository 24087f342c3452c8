package biclient

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestSecretNeverFormatsItsValue(t *testing.T) {
	const value = "s3cr3t-value"
	s := NewSecret(value)
	type holder struct {
		exported Secret
		Exported Secret
		ptr      *Secret
	}
	h := holder{exported: s, Exported: s, ptr: &s}
	jsonBytes, err := json.Marshal(h)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	outputs := map[string]string{
		"%v":     fmt.Sprintf("%v", s),
		"%+v":    fmt.Sprintf("%+v", s),
		"%#v":    fmt.Sprintf("%#v", s),
		"%s":     fmt.Sprintf("%s", s),
		"%q":     fmt.Sprintf("%q", s),
		"%x":     fmt.Sprintf("%x", s),
		"%d":     fmt.Sprintf("%d", s),
		"String": s.String(),
		"struct": fmt.Sprintf("%+v %#v %v", h, h, []Secret{s}),
		"map":    fmt.Sprintf("%v", map[string]Secret{"k": s}),
		"json":   string(jsonBytes),
	}
	for name, out := range outputs {
		if strings.Contains(out, value) {
			t.Errorf("%s formatting revealed the secret", name)
		}
	}
	if got := s.Reveal(); got != value {
		t.Errorf("Reveal() did not return the wrapped value")
	}
}

func TestSecretZero(t *testing.T) {
	var zero Secret
	if !zero.IsZero() || !NewSecret("").IsZero() || NewSecret("x").IsZero() {
		t.Error("IsZero is wrong")
	}
	if zero.Reveal() != "" {
		t.Error("the zero Secret must reveal an empty string")
	}
}
