//go:build e2e

package e2e

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// minFragment is the shortest run of a secret's or a token's characters
// that counts as a leak: the contract's bound on what a log, an audit log,
// an answer or a record may hold of one.
const minFragment = 16

// blockSize is the length of the blocks a secret is indexed by. Every run
// of minFragment characters of a secret holds at least one whole block
// that starts at a multiple of blockSize in the secret (minFragment >=
// 2*blockSize-1), so looking up every block of a text finds every such run.
const blockSize = 8

// The run's secrets: every client secret and password the suite uses
// (registered by rememberSecrets), and every token of every fake (newFake).
var (
	runSecretsMu sync.Mutex
	runSecrets   = []string{clientSecret}
)

// rememberSecrets adds secrets to those every Vault log of the run is
// checked for.
func rememberSecrets(secrets ...string) {
	runSecretsMu.Lock()
	defer runSecretsMu.Unlock()
	for _, secret := range secrets {
		if !slices.Contains(runSecrets, secret) {
			runSecrets = append(runSecrets, secret)
		}
	}
}

// secretsOfTheRun lists what no log may hold a fragment of, each with the
// name a failure may print: the secrets, and every token the fakes minted
// so far. A JWT's header is left out: it is the same public metadata
// (alg, typ, kid) in every token of a fake, no credential.
func secretsOfTheRun() map[string]string {
	named := make(map[string]string)
	runSecretsMu.Lock()
	for i, secret := range runSecrets {
		named[secret] = fmt.Sprintf("secret #%d of the run", i+1)
	}
	runSecretsMu.Unlock()
	fakesMu.Lock()
	all := append([]*fakebi.Server(nil), fakes...)
	fakesMu.Unlock()
	for _, fake := range all {
		for _, token := range fake.Tokens() {
			named[withoutJWTHeader(token.Value)] = "token " + token.ID
		}
	}
	return named
}

// withoutJWTHeader is a token less the header of a JWT.
func withoutJWTHeader(token string) string {
	if header, rest, ok := strings.Cut(token, "."); ok && strings.HasPrefix(header, "eyJ") {
		return rest
	}
	return token
}

// fragmentIndex finds runs of minFragment or more characters of any of a
// set of secrets in a text, in one pass over the text.
type fragmentIndex struct {
	blocks map[string][]fragmentRef
}

// fragmentRef is where a block stands in a secret.
type fragmentRef struct {
	secret, name string
	at           int
}

// maxRefsPerBlock bounds the secrets a block points to: a block shared by
// many tokens is their common claims, not anything one of them keeps.
const maxRefsPerBlock = 8

func newFragmentIndex(secrets map[string]string) *fragmentIndex {
	index := &fragmentIndex{blocks: make(map[string][]fragmentRef)}
	for secret, name := range secrets {
		for at := 0; at+blockSize <= len(secret); at += blockSize {
			block := secret[at : at+blockSize]
			if refs := index.blocks[block]; len(refs) < maxRefsPerBlock {
				index.blocks[block] = append(refs, fragmentRef{secret: secret, name: name, at: at})
			}
		}
	}
	return index
}

// find returns the names of the secrets of which text holds a run of
// minFragment or more characters.
func (index *fragmentIndex) find(text string) []string {
	var found []string
	for i := 0; i+blockSize <= len(text); i++ {
		for _, ref := range index.blocks[text[i:i+blockSize]] {
			if matchedAround(text, i, ref) >= minFragment && !slices.Contains(found, ref.name) {
				found = append(found, ref.name)
			}
		}
	}
	return found
}

// matchedAround is the length of the run that text, at i, shares with
// ref's secret around its block.
func matchedAround(text string, i int, ref fragmentRef) int {
	left := 0
	for i-left > 0 && ref.at-left > 0 && text[i-left-1] == ref.secret[ref.at-left-1] {
		left++
	}
	right := blockSize
	for i+right < len(text) && ref.at+right < len(ref.secret) && text[i+right] == ref.secret[ref.at+right] {
		right++
	}
	return left + right
}

// leaksIn describes every secret or token of the run that text holds a
// fragment of, or "" when it holds none.
func leaksIn(what, text string) string {
	found := newFragmentIndex(secretsOfTheRun()).find(text)
	if len(found) == 0 {
		return ""
	}
	return fmt.Sprintf("%s holds a run of %d or more characters of %s", what, minFragment, strings.Join(found, ", "))
}

// inspectServer checks, once a Vault of the suite has stopped, that neither
// its server log (at trace, so with every line of the plugin's) nor its
// audit log holds a fragment of any secret or token of the run.
func inspectServer(s *vaulttest.Server) error {
	var problems []string
	for _, log := range []struct{ what, text string }{
		{"the server log", s.LogText()},
		{"the audit log", s.AuditText()},
	} {
		if leak := leaksIn(log.what, log.text); leak != "" {
			problems = append(problems, leak)
		}
	}
	if s.AuditText() == "" {
		problems = append(problems, "the audit log is empty: the check of it would prove nothing")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// TestFragmentIndexFindsEveryRun checks the suite's own leak check: a run of
// minFragment characters of a secret is found at every offset of the secret
// and of the text around it, and one character less is not.
func TestFragmentIndexFindsEveryRun(t *testing.T) {
	const secret = "0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJ"
	index := newFragmentIndex(map[string]string{secret: "the secret"})
	for at := 0; at+minFragment <= len(secret); at++ {
		for _, pad := range []string{"", "!", "!#", "#%!", "~~~~~~~"} {
			text := pad + secret[at:at+minFragment] + pad
			if found := index.find(text); len(found) != 1 {
				t.Fatalf("a run of %d characters at offset %d, padded %d, went unseen", minFragment, at, len(pad))
			}
			if found := index.find(pad + secret[at:at+minFragment-1] + pad); len(found) != 0 {
				t.Fatalf("a run of %d characters at offset %d counted as a leak", minFragment-1, at)
			}
		}
	}
}
