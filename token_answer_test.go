package beyondidentity

// A token answer that is not plain JSON names no token the plugin may use:
// every access_token it names is revoked, and nothing is issued or saved.

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// unseenToken has the fake mint a token the plugin never learns of (its
// answer is a 500), as a second access_token for a later answer, and
// returns its value. request is what the plugin is asked.
func unseenToken(t *testing.T, e *testEnv, request func() (*logical.Response, error)) string {
	t.Helper()
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Times: 1, Status: http.StatusInternalServerError, Body: `{}`, AfterMint: true})
	if status, message := statusOf(request()); status != http.StatusBadGateway {
		t.Fatalf("%d %q: want the 502 of an unknown outcome", status, message)
	}
	return e.lastToken().Value
}

// answerAlsoNaming makes the fake's next token answer write access_token
// twice: first value, then the token it mints.
func answerAlsoNaming(e *testEnv, value string) {
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Times: 1, RewriteBody: func(body []byte) []byte {
		return append([]byte(`{"access_token":"`+value+`",`), body[1:]...)
	}})
}

// revokedValues are the tokens the plugin asked the fake to revoke.
func revokedValues(e *testEnv) []string {
	var values []string
	for _, call := range e.fake.CallsTo(fakebi.OpRevoke) {
		values = append(values, call.Form.Get("token"))
	}
	return values
}

// TestAnAnswerNamingTwoTokensIsRefusedAndBothRevoked: readers of an answer
// that writes access_token twice disagree on which is the token (encoding/
// json keeps the last). Both are revoked, the read is a 502 saying why, and
// nothing is issued.
func TestAnAnswerNamingTwoTokensIsRefusedAndBothRevoked(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	read := func() (*logical.Response, error) { return e.request(logical.ReadOperation, "creds/sync", nil) }
	earlier := unseenToken(t, e, read)
	answerAlsoNaming(e, earlier)
	e.fake.ResetCalls()

	resp, err := read()
	status, message := statusOf(resp, err)
	if status != http.StatusBadGateway || !strings.Contains(message, "token call to Beyond Identity returned an unusable answer") ||
		!strings.Contains(message, `the key "access_token" appears more than once`) ||
		!strings.Contains(message, "candidate 1 of 2: the token was revoked; candidate 2 of 2: the token was revoked") {
		t.Fatalf("%d %q: want a 502 saying access_token is written twice and that both tokens were revoked", status, message)
	}
	if resp != nil && resp.Secret != nil {
		t.Fatal("a credential was issued from an answer that is not plain")
	}
	assertNoSecretIn(t, e, message)
	minted := e.lastToken().Value
	if got := revokedValues(e); !slices.Equal(got, []string{earlier, minted}) {
		t.Fatalf("%d revocations, want one of each token the answer named", len(got))
	}
	e.assertNothingLeft()
	e.assertNoSecretsLogged()
}

// TestAnAnswerNamingOneTokenTwiceRevokesItOnce: the same value under two
// spellings of access_token is one token, refused and revoked once.
func TestAnAnswerNamingOneTokenTwiceRevokesItOnce(t *testing.T) {
	t.Parallel()
	e := newSyncRoleBackend(t)
	e.fake.SetFault(fakebi.OpToken, fakebi.Fault{Times: 1, RewriteBody: func(body []byte) []byte {
		var answer struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.Unmarshal(body, &answer) // the fake's own JSON
		return append([]byte(`{"access\u005ftoken":"`+answer.AccessToken+`",`), body[1:]...)
	}})
	e.fake.ResetCalls()
	status, message := statusOf(e.request(logical.ReadOperation, "creds/sync", nil))
	if status != http.StatusBadGateway || !strings.Contains(message, "appears more than once") ||
		!strings.HasSuffix(message, "; the token was revoked") {
		t.Fatalf("%d %q: want a 502 saying the token was revoked", status, message)
	}
	if got := revokedValues(e); len(got) != 1 || got[0] != e.lastToken().Value {
		t.Fatalf("%d revocations, want the one token", len(got))
	}
	e.assertNothingLeft()
}

// TestVerifyConnectionRevokesEveryTokenOfAnAnswerNotPlain: the test token
// of a config write is discarded the same way, and the config not saved.
func TestVerifyConnectionRevokesEveryTokenOfAnAnswerNotPlain(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	write := func() (*logical.Response, error) {
		return e.request(logical.UpdateOperation, "config", e.configData(nil))
	}
	earlier := unseenToken(t, e, write)
	answerAlsoNaming(e, earlier)
	status, message := statusOf(write())
	if status != http.StatusBadGateway || !strings.Contains(message, "appears more than once") {
		t.Fatalf("%d %q: want a 502 saying access_token is written twice", status, message)
	}
	if got := revokedValues(e); !slices.Equal(got, []string{earlier, e.lastToken().Value}) {
		t.Fatalf("%d revocations, want one of each token the answer named", len(got))
	}
	if resp, err := e.request(logical.ReadOperation, "config", nil); err != nil || resp != nil {
		t.Fatal("the config was saved")
	}
}
