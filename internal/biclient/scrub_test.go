package biclient

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// TestScrubRemovesEveryFormAnUpstreamMayEcho: base64 of a longer text that
// holds the secret at any of the three byte offsets, in either alphabet;
// path-escaped and lower-case percent forms; and any run of 16 or more of
// a token's characters, such as a prefix an upstream cut.
func TestScrubRemovesEveryFormAnUpstreamMayEcho(t *testing.T) {
	const secret = "s3cr3t value/with+odd=chars?"
	const token = "eyJhbGciOiJSUzI1NiJ9.eyJzY29wZSI6ImE6cmVhZCJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1pdHNlbGY"
	embedded := func(prefix string, enc *base64.Encoding) string {
		return enc.EncodeToString([]byte(prefix + secret + " trailing text"))
	}
	forms := map[string]string{
		"base64 at offset 0":          embedded("abc", base64.StdEncoding),
		"base64 at offset 1":          embedded("a", base64.StdEncoding),
		"base64 at offset 2":          embedded("ab", base64.StdEncoding),
		"url-safe base64 at offset 1": embedded("abcd", base64.RawURLEncoding),
		"url-safe base64 at offset 2": embedded("abcde", base64.RawURLEncoding),
		"path-escaped":                url.PathEscape(secret),
		"lower-case percent":          strings.ToLower(url.QueryEscape(secret)),
		"lower-case path-escaped":     strings.ToLower(url.PathEscape(secret)),
		"a 16-character prefix":       secret[:16],
		"a token's 60-char prefix":    token[:60],
		"a piece of a token":          token[20:40],
		"a token's tail":              token[len(token)-16:],
	}
	for name, form := range forms {
		t.Run(name, func(t *testing.T) {
			text := fmt.Sprintf("upstream said: <%s> and more", form)
			got := Scrub(text, NewSecret(secret), NewSecret(token))
			if holdsFragment(got, secret) || holdsFragment(got, token) || strings.Contains(got, form) {
				t.Fatalf("the scrubbed text still holds the %s", name)
			}
			for offset := 0; offset < 3; offset++ {
				core := base64AtOffset([]byte(secret), offset)
				urlSafe := strings.NewReplacer("+", "-", "/", "_").Replace(core)
				if holdsFragment(got, core) || holdsFragment(got, urlSafe) {
					t.Fatalf("the scrubbed text still holds 16 characters of the secret's base64 at offset %d", offset)
				}
			}
			if !strings.HasPrefix(got, "upstream said: <") || !strings.HasSuffix(got, "> and more") || !strings.Contains(got, redacted) {
				t.Fatalf("the scrubbed text lost what was not secret, or shows nothing redacted: %d bytes", len(got))
			}
		})
	}
}

// TestScrubKeepsOrdinaryText: text that shares short runs with a secret
// stays as it is.
func TestScrubKeepsOrdinaryText(t *testing.T) {
	const text = "token call to Beyond Identity failed: HTTP 400 invalid_scope: scope identities:read is not allowed"
	if got := Scrub(text, NewSecret("identities:read-and-more-secret"), NewSecret("eyJhbGciOiJSUzI1NiJ9.eyJ4IjoxfQ.sig")); got != text {
		t.Fatalf("Scrub changed text that holds no secret: %q", got)
	}
}

// holdsFragment reports whether text holds 16 or more consecutive
// characters of value, in ASCII case-insensitive comparison.
func holdsFragment(text, value string) bool {
	text, value = strings.ToLower(text), strings.ToLower(value)
	for i := 0; i+minFragment <= len(value); i++ {
		if strings.Contains(text, value[i:i+minFragment]) {
			return true
		}
	}
	return false
}

// TestScrubKeepsTheClientIDAlone: the client id is part of the Basic
// credentials but no secret: a message that names it keeps it, while the
// credentials themselves go (from where a run of them would show a
// character of the secret).
func TestScrubKeepsTheClientIDAlone(t *testing.T) {
	const clientID, secret = "a-long-client-id-0123456789abcdef", "the-client-secret-value"
	text := "invalid_client: client " + clientID + " sent " + clientID + ":" + secret
	got := Scrub(text, credentialsOf(clientID, NewSecret(secret))...)
	if !strings.HasPrefix(got, "invalid_client: client "+clientID+" sent ") || !strings.HasSuffix(got, redacted) ||
		holdsFragment(got, secret) || strings.Contains(got, ":"+secret[:1]) {
		t.Fatalf("Scrub = %q: want the client id kept where it stands alone, the pair redacted", strings.ReplaceAll(got, secret, "SECRET"))
	}
}
