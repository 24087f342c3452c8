package biclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// The token endpoint's 200 answer is read as strictly as a JWT's payload
// (PlainObjectProblem): an answer readers may read differently names no
// token, lifetime or scopes the plugin may rely on.

// tokenAnswer is a plain token answer; extra members go before its end.
func tokenAnswer(value, extra string) string {
	return `{"access_token":"` + value + `","token_type":"Bearer","expires_in":60,"scope":"a:read"` + extra + `}`
}

// notPlainAnswers are answers that are not plain JSON, each with why and
// the access_token values a reader of it may take for its token.
var notPlainAnswers = map[string]struct {
	body       string
	why        string
	candidates []string
}{
	"access_token twice, different values": {`{"access_token":"token-value-1",` + tokenAnswer("token-value-2", "")[1:],
		`the key "access_token" appears more than once`, []string{"token-value-1", "token-value-2"}},
	"access_token twice, one value": {`{"access_token":"token-value-3",` + tokenAnswer("token-value-3", "")[1:],
		`the key "access_token" appears more than once`, []string{"token-value-3"}},
	"access_token twice, one escaped": {tokenAnswer("token-value-1", `,"access\u005ftoken":"token-value-2"`),
		`the key "access_token" appears more than once`, []string{"token-value-1", "token-value-2"}},
	"expires_in twice": {tokenAnswer("token-value-0", `,"expires_in":7776000`),
		`the key "expires_in" appears more than once`, []string{"token-value-0"}},
	"scope twice": {tokenAnswer("token-value-0", `,"scope":"a:read tokens:delete"`),
		`the key "scope" appears more than once`, []string{"token-value-0"}},
	"token_type twice": {tokenAnswer("token-value-0", `,"token_type":"DPoP"`),
		`the key "token_type" appears more than once`, []string{"token-value-0"}},
	"a key twice deeper down": {tokenAnswer("token-value-0", `,"x":[{"k":1,"\u006b":2}]`),
		`the key "k" appears more than once`, []string{"token-value-0"}},
	"trailing bytes": {tokenAnswer("token-value-0", "") + " ]", "bytes follow", []string{"token-value-0"}},
	"a second object after it": {tokenAnswer("token-value-1", "") + `{"access_token":"token-value-2"}`,
		"bytes follow", []string{"token-value-1", "token-value-2"}},
	"a byte-order mark":    {"\uFEFF" + tokenAnswer("token-value-0", ""), "byte-order mark", []string{"token-value-0"}},
	"NaN":                  {tokenAnswer("token-value-0", `,"x":NaN`), "NaN or Infinity", []string{"token-value-0"}},
	"Infinity":             {tokenAnswer("token-value-0", `,"x":-Infinity`), "NaN or Infinity", []string{"token-value-0"}},
	"NaN before the token": {`{"expires_in":NaN,"access_token":"token-value-0"}`, "NaN or Infinity", nil},
	"nesting past the bound": {tokenAnswer("token-value-0", `,"x":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)),
		"deeper than 64 levels", []string{"token-value-0"}},
	"invalid UTF-8": {tokenAnswer("token-value-0", `,"x":"`+"\xff"+`"`), "invalid UTF-8", []string{"token-value-0"}},
}

func TestParseTokenResponseRefusesAnAnswerNotPlain(t *testing.T) {
	sentAt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, tc := range notPlainAnswers {
		t.Run(name, func(t *testing.T) {
			token, err := ParseTokenResponse([]byte(tc.body), sentAt, sentAt.Add(time.Second), []string{"a:read"})
			if err == nil || !strings.Contains(err.Error(), "cannot be read plainly") || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("error = %v, want one saying the body cannot be read plainly: %s", err, tc.why)
			}
			if token != nil {
				t.Fatal("a token read from an answer that is not plain")
			}
		})
	}
}

// rawTokenServer answers every token call with body, as a 200.
func rawTokenServer(t *testing.T, body string) *Client {
	t.Helper()
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(server.Close)
	client, err := New(Config{AuthURL: server.URL, TenantID: "t", RealmID: "r", ApplicationID: "a", ClientID: "c",
		ClientSecret: NewSecret(testSecret), MaxRetries: 0})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// TestMintHandsBackEveryTokenOfAnAnswerNotPlain: every access_token value
// of an answer that is not plain is a token to revoke; without one, a
// token may exist all the same. The message says why, never which token.
func TestMintHandsBackEveryTokenOfAnAnswerNotPlain(t *testing.T) {
	for name, tc := range notPlainAnswers {
		t.Run(name, func(t *testing.T) {
			_, err := rawTokenServer(t, tc.body).MintToken(context.Background(), MintRequest{Lifetime: time.Hour})
			if err == nil || !strings.Contains(err.Error(), "token call to Beyond Identity returned an unusable answer (HTTP 200)") ||
				!strings.Contains(err.Error(), tc.why) {
				t.Fatalf("error = %v, want an unusable token answer saying %s", err, tc.why)
			}
			for _, value := range tc.candidates {
				if strings.Contains(err.Error(), value) {
					t.Fatal("the error quotes a token")
				}
			}
			var unusable *UnusableTokenError
			if tc.candidates == nil {
				var unknown *OutcomeUnknownError
				if !errors.As(err, &unknown) || errors.As(err, &unusable) {
					t.Fatalf("want an unknown outcome, got %T", err)
				}
				return
			}
			if !errors.As(err, &unusable) {
				t.Fatalf("want an UnusableTokenError, got %T", err)
			}
			var got []string
			for _, token := range unusable.Tokens() {
				got = append(got, token.AccessToken.Reveal())
				if token.LatestEnd.IsZero() || token.ExpiresAt.IsZero() {
					t.Error("a candidate without the latest end it can have")
				}
			}
			if !slices.Equal(got, tc.candidates) {
				t.Fatalf("%d tokens to revoke, want %d, in answer order", len(got), len(tc.candidates))
			}
		})
	}
}

func TestACandidateJWTIsKnownByItsID(t *testing.T) {
	jwt := unsignedJWT(t, map[string]any{"jti": "the-jti", "exp": time.Now().Add(time.Hour).Unix()})
	_, err := rawTokenServer(t, `{"access_token":"other",`+tokenAnswer(jwt, "")[1:]).
		MintToken(context.Background(), MintRequest{Lifetime: time.Minute})
	var unusable *UnusableTokenError
	if !errors.As(err, &unusable) || len(unusable.Others) != 1 {
		t.Fatalf("err = %v", err)
	}
	if other := unusable.Others[0]; other.Format != FormatJWT || other.ID != "the-jti" {
		t.Fatalf("the JWT candidate is %s with id %q", other.Format, other.ID)
	}
}

func TestAnAnswerNamingManyTokensIsBounded(t *testing.T) {
	var body strings.Builder
	body.WriteString(`{"token_type":"Bearer"`)
	for i := range 3 * maxTokenCandidates {
		fmt.Fprintf(&body, `,"access_token":"t%d"`, i)
	}
	body.WriteString(`}`)
	_, err := rawTokenServer(t, body.String()).MintToken(context.Background(), MintRequest{Lifetime: time.Minute})
	var unusable *UnusableTokenError
	if !errors.As(err, &unusable) || len(unusable.Tokens()) != maxTokenCandidates ||
		!strings.Contains(err.Error(), fmt.Sprintf("more than %d", maxTokenCandidates)) {
		t.Fatalf("want the first %d candidates and a message saying there were more, got %v", maxTokenCandidates, err)
	}
}

// TestAPlainAnswerIsReadByExactNames: JSON names are case-sensitive, so
// "ACCESS_TOKEN" is not access_token, wherever it stands (encoding/json's
// struct decoding would take the last of both).
func TestAPlainAnswerIsReadByExactNames(t *testing.T) {
	sentAt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	body := tokenAnswer("exact", `,"ACCESS_TOKEN":"folded","Expires_In":7776000,"Scope":"tokens:delete","TOKEN_TYPE":"mac"`)
	token, err := ParseTokenResponse([]byte(body), sentAt, sentAt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token.AccessToken.Reveal() != "exact" || !token.ExpiresAt.Equal(sentAt.Add(time.Minute)) ||
		!slices.Equal(token.Scopes, []string{"a:read"}) {
		t.Fatalf("read a member by a name that only folds to a token answer's: expires %v, scopes %v", token.ExpiresAt, token.Scopes)
	}
}
