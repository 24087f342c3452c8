package biclient

import (
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"
)

// The seeds of these fuzz targets run as ordinary tests; `go test -fuzz`
// explores further (see docs/troubleshooting.md, "Fuzzing").

func FuzzParseTokenResponse(f *testing.F) {
	for _, seed := range []string{
		`{"access_token":"opaque","token_type":"Bearer","expires_in":3600,"scope":"a:read b:read"}`,
		`{"access_token":"eyJhbGciOiJSUzI1NiJ9.eyJqdGkiOiJpZCIsImV4cCI6MTc5NTc4ODQwMywic2NvcGUiOiJhOnJlYWQifQ.c2ln","token_type":"bearer","expires_in":"60"}`,
		`{"access_token":"x","token_type":"mac","expires_in":60}`,
		`{"access_token":"x","token_type":"Bearer","expires_in":-1}`,
		`{"access_token":"x","token_type":"Bearer","expires_in":1e400}`,
		`{"access_token":"x","token_type":"Bearer","expires_in":null,"scope":null}`,
		`{"access_token":5}`, `[]`, `<html>`, ``, `{}`, `{"access_token":"a b","token_type":"Bearer","expires_in":1}`,
		`{"access_token":"a","access\u005ftoken":"b","token_type":"Bearer","expires_in":60}`,
		`{"access_token":"x","token_type":"Bearer","expires_in":60}{"access_token":"y"}`,
	} {
		f.Add([]byte(seed))
	}
	sentAt := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		token, err := ParseTokenResponse(body, sentAt, sentAt.Add(time.Second), []string{"a:read"})
		if err != nil {
			if token != nil && token.AccessToken.IsZero() {
				t.Fatal("a token returned with an error must carry the access token to revoke")
			}
			return
		}
		if PlainObjectProblem(body) != "" {
			t.Fatal("accepted an answer that is not plain JSON")
		}
		if token.AccessToken.IsZero() || token.TokenType != "Bearer" {
			t.Fatalf("accepted a token without value or of type %q", token.TokenType)
		}
		if !token.ExpiresAt.After(sentAt) || token.ExpiresAt.After(sentAt.Add(maxPlausibleExpiresIn)) || token.LatestEnd.Before(token.ExpiresAt) {
			t.Fatalf("expiry %v (latest %v) out of range", token.ExpiresAt, token.LatestEnd)
		}
		if !sort.StringsAreSorted(token.Scopes) || hasDuplicates(token.Scopes) {
			t.Fatalf("scopes %q not sorted and distinct", token.Scopes)
		}
	})
}

func FuzzReadClaims(f *testing.F) {
	for _, seed := range []string{
		"eyJhbGciOiJSUzI1NiJ9.eyJqdGkiOiJpZCIsImV4cCI6MTc5NTc4ODQwMywic2NvcGUiOiJhOnJlYWQifQ.c2ln",
		"a.b.c", "..", "a..c", "eyJ9.bm90IGpzb24.x", "x.eyJleHAiOi0xfQ.y", "x.eyJleHAiOjFlMzAwfQ.y", "opaque-token",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		claims, ok := ReadClaims(token)
		if !ok {
			if claims.ID != "" || claims.HasScopes || claims.Custom != nil || !claims.ExpiresAt.IsZero() {
				t.Fatal("claims of a token that is not a JWT")
			}
			return
		}
		if !claims.ExpiresAt.IsZero() && (claims.ExpiresAt.Year() < 1970 || claims.ExpiresAt.Year() > 2400) {
			t.Fatalf("exp %v out of range", claims.ExpiresAt)
		}
	})
}

func FuzzParseErrorBody(f *testing.F) {
	const secret = "S3cr3t-Value-For-Fuzz"
	for _, seed := range []struct {
		status     int
		retryAfter string
		body       string
	}{
		{400, "", `{"error":"invalid_scope","error_description":"nope"}`},
		{401, "", `{"error":"invalid_client","error_description":"bad secret S3cr3t-Value-For-Fuzz"}`},
		{403, "", `{"code":"forbidden","message":"missing scope","details":[{"x":1}]}`},
		{429, "7", `{"code":"too_many_requests"}`},
		{429, "Wed, 21 Oct 2037 07:28:00 GMT", ``},
		{503, "-5", `<html>down</html>`},
		{500, "", `{"message":"\u0053\u0033cr3t-Value-For-Fuzz"}`},
	} {
		f.Add(seed.status, seed.retryAfter, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, status int, retryAfterHeader string, body []byte) {
		header := http.Header{}
		header.Set("Retry-After", retryAfterHeader)
		err := ParseErrorBody(CallToken, status, header, body, time.Now(), NewSecret(secret))
		msg := err.Error()
		if strings.Contains(msg, secret) {
			t.Fatal("the message carries the secret")
		}
		if strings.ContainsAny(msg, "\n\r") {
			t.Fatal("the message spans lines")
		}
		if len(err.Description) > maxDescriptionLen+3 || err.RetryAfter < 0 {
			t.Fatalf("description of %d bytes, retry after %v", len(err.Description), err.RetryAfter)
		}
	})
}

func hasDuplicates(sorted []string) bool {
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return true
		}
	}
	return false
}
