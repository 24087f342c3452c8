package biclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

const (
	testSecret = "the-client-secret"
	testScope  = "identities:read"
)

func testApp() fakebi.Application {
	return fakebi.Application{
		TenantID: "t", RealmID: "r", ID: "a", ClientID: "c", ClientSecret: testSecret,
		AllowedScopes: []string{"groups:read", testScope},
	}
}

// newFakeClient starts the fake (optionally behind a handler that rewrites
// its answers) and returns a client for it.
func newFakeClient(t *testing.T, wrap func(http.Handler) http.Handler) (*Client, *fakebi.Server) {
	t.Helper()
	fake := fakebi.New()
	fake.AddApplication(testApp())
	var handler http.Handler = fake
	if wrap != nil {
		handler = wrap(fake)
	}
	server := httptest.NewServer(handler)
	t.Cleanup(server.Close)
	client, err := New(Config{
		AuthURL: server.URL, TenantID: "t", RealmID: "r", ApplicationID: "a",
		ClientID: "c", ClientSecret: NewSecret(testSecret), Timeout: 5 * time.Second, UserAgent: "test/1",
	})
	if err != nil {
		t.Fatal(err)
	}
	return client, fake
}

func TestMintRevokeIntrospectAgainstTheFake(t *testing.T) {
	client, fake := newFakeClient(t, nil)
	ctx := context.Background()
	token, err := client.MintToken(ctx, MintRequest{Scopes: []string{testScope}, Lifetime: time.Hour, CustomClaims: map[string]any{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	minted := fake.Tokens()[0]
	if token.AccessToken.Reveal() != minted.Value || token.ID != minted.ID || token.Format != FormatJWT ||
		!withinASecondBefore(token.ExpiresAt, minted.ExpiresAt) || strings.Join(token.Scopes, " ") != testScope {
		t.Fatalf("token %+v does not match the minted %s", token, minted.ID)
	}
	call := fake.CallsTo(fakebi.OpToken)[0]
	if call.BasicUser != "c" || call.BasicPassword != testSecret || call.Form.Get("expiration_time") != "3600" ||
		call.Form.Get("custom_claims") != `{"k":"v"}` || call.ContentType != "application/x-www-form-urlencoded" {
		t.Fatalf("mint request: %+v", call.Form)
	}

	info, err := client.Introspect(ctx, token.AccessToken)
	if err != nil || !info.Active || info.ID != minted.ID || !info.ExpiresAt.Equal(minted.ExpiresAt.Truncate(time.Second)) {
		t.Fatalf("introspect: %+v %v", info, err)
	}
	if err := client.Revoke(ctx, token.AccessToken); err != nil {
		t.Fatal(err)
	}
	if fake.IsActive(minted.Value) {
		t.Fatal("not revoked")
	}
	if info, err := client.Introspect(ctx, token.AccessToken); err != nil || info.Active {
		t.Fatalf("introspect after revoke: %+v %v", info, err)
	}
}

// rewrite replaces the fake's token answers with edit(body).
func rewrite(edit func([]byte) []byte) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/token") {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			w.WriteHeader(rec.Code)
			_, _ = w.Write(edit(rec.Body.Bytes()))
		})
	}
}

// withinASecondBefore reports whether got is end or up to a second before
// it: the client counts a token's life from when it sent the request, in
// whole seconds, which may end just before the server's own count.
func withinASecondBefore(got, end time.Time) bool {
	return !got.After(end) && end.Sub(got) <= time.Second
}

func TestMintUnusableAnswerHandsTheTokenBack(t *testing.T) {
	client, fake := newFakeClient(t, rewrite(func(body []byte) []byte {
		return bytes.Replace(body, []byte(`"Bearer"`), []byte(`"mac"`), 1)
	}))
	_, err := client.MintToken(context.Background(), MintRequest{Scopes: []string{testScope}, Lifetime: time.Hour})
	var unusable *UnusableTokenError
	if !errors.As(err, &unusable) || !strings.Contains(err.Error(), `token_type is "mac"`) {
		t.Fatalf("err = %v", err)
	}
	minted := fake.Tokens()[0]
	if unusable.Token.AccessToken.Reveal() != minted.Value {
		t.Fatal("the error does not carry the token the caller must revoke")
	}
	if strings.Contains(err.Error(), minted.Value) {
		t.Fatal("the error message carries the token")
	}
}

func TestOutcomeUnknownOnlyWhereATokenMayExist(t *testing.T) {
	for status, unknown := range map[int]bool{400: false, 401: false, 429: false, 503: false, 500: true, 502: true, 504: true} {
		server, _ := countingServer(t, status, nil)
		_, err := clientFor(t, server.URL, 5*time.Second, 0).MintToken(context.Background(), MintRequest{Lifetime: time.Hour})
		var outcome *OutcomeUnknownError
		if errors.As(err, &outcome) != unknown {
			t.Errorf("HTTP %d: outcome unknown = %v, want %v (%v)", status, !unknown, unknown, err)
		}
		if unknown && !strings.Contains(err.Error(), "expires on its own within the requested lifetime of 1h0m0s") {
			t.Errorf("HTTP %d: %v", status, err)
		}
	}
}

func TestAnswerLargerThanTheLimitIsRefused(t *testing.T) {
	big := bytes.Repeat([]byte("x"), MaxResponseBytes+10)
	client, _ := newFakeClient(t, rewrite(func([]byte) []byte { return big }))
	_, err := client.MintToken(context.Background(), MintRequest{Lifetime: time.Minute})
	var respErr *ResponseError
	if !errors.As(err, &respErr) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}

func TestRevokeTrustsOnlyTheEmptyAnswer(t *testing.T) {
	tests := map[string]struct {
		status int
		body   string
		header map[string]string
		ok     bool
	}{
		"empty 200":      {status: 200, ok: true},
		"json 200":       {status: 200, body: `{}`, ok: true},
		"whitespace 200": {status: 200, body: "\n", ok: true},
		"html 200":       {status: 200, body: "<html>login</html>"},
		"redirect":       {status: 302, header: map[string]string{"Location": "/elsewhere"}},
		"204":            {status: 204},
		"503":            {status: 503, body: `{"code":"service_unavailable","message":"x"}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var calls int
			server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls++
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer server.Close()
			client, err := New(Config{AuthURL: server.URL, TenantID: "t", RealmID: "r", ApplicationID: "a", ClientID: "c", ClientSecret: NewSecret("s")})
			if err != nil {
				t.Fatal(err)
			}
			err = client.Revoke(context.Background(), NewSecret("tok"))
			if (err == nil) != tc.ok {
				t.Fatalf("Revoke error = %v, want success %v", err, tc.ok)
			}
			if calls != 1 {
				t.Fatalf("%d requests: a redirect must not be followed", calls)
			}
		})
	}
}

func TestTransportErrors(t *testing.T) {
	server := httptest.NewServer(http.NotFoundHandler())
	url := server.URL
	server.Close() // nothing listens there any more
	client, err := New(Config{AuthURL: url, TenantID: "t", RealmID: "r", ApplicationID: "a", ClientID: "c", ClientSecret: NewSecret("s")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.MintToken(context.Background(), MintRequest{Lifetime: time.Minute})
	var transportErr *TransportError
	if !errors.As(err, &transportErr) || !transportErr.NotSent() || transportErr.Timeout() {
		t.Fatalf("connection refused: %v (not sent %v)", err, transportErr != nil && transportErr.NotSent())
	}

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-release
	}))
	defer slow.Close()
	defer close(release)
	client, _ = New(Config{AuthURL: slow.URL, TenantID: "t", RealmID: "r", ApplicationID: "a", ClientID: "c", ClientSecret: NewSecret("s"), Timeout: 100 * time.Millisecond})
	_, err = client.MintToken(context.Background(), MintRequest{Lifetime: time.Minute})
	if !errors.As(err, &transportErr) || transportErr.NotSent() || !transportErr.Timeout() {
		t.Fatalf("timeout: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := Config{AuthURL: "https://a.example", TenantID: "t", RealmID: "r", ApplicationID: "a", ClientID: "c", ClientSecret: NewSecret("s")}
	bad := map[string]func(*Config){
		"no secret":   func(c *Config) { c.ClientSecret = Secret{} },
		"relative":    func(c *Config) { c.AuthURL = "a.example" },
		"bad ca_cert": func(c *Config) { c.CACertPEM = "nope" },
	}
	for name, mutate := range bad {
		cfg := good
		mutate(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
}

// readBody reads a token answer into one buffer of its announced length,
// sets aside no more than maxPresize before the bytes come, and reads one
// byte past the limit so that a longer body shows.
func TestReadBodySizesItsBufferFromTheAnnouncedLength(t *testing.T) {
	read := func(announced int64, body string, limit int64) ([]byte, error) {
		resp := &http.Response{ContentLength: announced, Body: io.NopCloser(strings.NewReader(body))}
		defer resp.Body.Close()
		return readBody(resp, limit)
	}
	token := strings.Repeat("t", 1500)
	if body, err := read(1500, token, MaxResponseBytes); err != nil || string(body) != token || cap(body) != 1501 {
		t.Fatalf("a 1500-byte answer: %d bytes in a buffer of %d (%v), want one buffer of 1501", len(body), cap(body), err)
	}
	if body, err := read(MaxResponseBytes, "short", MaxResponseBytes); err != nil || string(body) != "short" || cap(body) > maxPresize+1 {
		t.Fatalf("an answer announcing %d bytes: a buffer of %d (%v), want at most %d", MaxResponseBytes, cap(body), err, maxPresize+1)
	}
	for _, announced := range []int64{-1, 3000} {
		if body, err := read(announced, strings.Repeat("x", 3000), 2000); err != nil || len(body) != 2001 {
			t.Fatalf("3000 bytes (announced %d) over a limit of 2000: read %d (%v), want 2001", announced, len(body), err)
		}
	}
}

// An upstream error that echoes what the client sent never carries its
// secret out, in any form that gives it back: the raw secret, or the Basic
// credentials' base64, padded or not, in either alphabet. The client must
// hand its own secret and the Basic header it builds to the scrubber:
// dropping either fails a case here.
// mixedCase upper-cases every other letter.
func mixedCase(s string) string {
	out := []byte(s)
	for i := 0; i < len(out); i += 2 {
		out[i] = strings.ToUpper(string(out[i]))[0]
	}
	return string(out)
}

// TestARevocationErrorNeverEchoesTheTokenInHex: an upstream that echoes the
// token it was asked to revoke, in hex of either case, gets it scrubbed as
// in every other form.
func TestARevocationErrorNeverEchoesTheTokenInHex(t *testing.T) {
	const token = "eyJhbGciOiJSUzI1NiJ9.payload-of-the-token.signature"
	for name, form := range map[string]string{
		"hex":       hex.EncodeToString([]byte(token)),
		"upper hex": strings.ToUpper(hex.EncodeToString([]byte(token))),
		"mixed hex": mixedCase(hex.EncodeToString([]byte(token))),
	} {
		t.Run(name, func(t *testing.T) {
			server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": "cannot revoke " + form})
			}))
			defer server.Close()
			client, err := New(Config{AuthURL: server.URL, TenantID: "t", RealmID: "r", ApplicationID: "a",
				ClientID: "c", ClientSecret: NewSecret("s"), MaxRetries: 0})
			if err != nil {
				t.Fatal(err)
			}
			err = client.Revoke(context.Background(), NewSecret(token))
			if err == nil || strings.Contains(strings.ToLower(err.Error()), strings.ToLower(form)) || !strings.Contains(err.Error(), redacted) {
				t.Fatalf("the error echoes the token in %s, or says nothing was redacted: %v", name, err != nil)
			}
		})
	}
}

func TestUpstreamErrorsNeverEchoTheClientsSecret(t *testing.T) {
	const clientID, secret = "client-01", "xyz~~~?"
	basic := []byte(clientID + ":" + secret)
	forms := map[string]func(r *http.Request) string{
		"raw secret":           func(*http.Request) string { return secret },
		"basic header as sent": func(r *http.Request) string { return r.Header.Get("Authorization") },
		"basic unpadded":       func(*http.Request) string { return base64.RawStdEncoding.EncodeToString(basic) },
		"basic url-safe":       func(*http.Request) string { return base64.URLEncoding.EncodeToString(basic) },
		"basic url-safe unpadded": func(*http.Request) string {
			return base64.RawURLEncoding.EncodeToString(basic)
		},
		"secret in hex":           func(*http.Request) string { return hex.EncodeToString([]byte(secret)) },
		"secret in upper hex":     func(*http.Request) string { return strings.ToUpper(hex.EncodeToString([]byte(secret))) },
		"basic in hex":            func(*http.Request) string { return hex.EncodeToString(basic) },
		"basic in mixed-case hex": func(*http.Request) string { return mixedCase(hex.EncodeToString(basic)) },
		"basic header in base64": func(r *http.Request) string {
			return base64.StdEncoding.EncodeToString([]byte(r.Header.Get("Authorization")))
		},
		"basic at offset 1 of a longer base64": func(*http.Request) string {
			return base64.StdEncoding.EncodeToString([]byte("<" + string(basic) + ">"))
		},
		"basic at offset 2 of a longer base64": func(*http.Request) string {
			return base64.RawURLEncoding.EncodeToString([]byte("<<" + string(basic) + ">"))
		},
		"secret path-escaped in lower case": func(*http.Request) string { return strings.ToLower(url.PathEscape(secret)) },
		"basic's prefix":                    func(*http.Request) string { return string(basic[:16]) },
	}
	// The forms differ from one another, or the cases would not each test one.
	if base64.StdEncoding.EncodeToString(basic) == base64.RawStdEncoding.EncodeToString(basic) ||
		base64.StdEncoding.EncodeToString(basic) == base64.URLEncoding.EncodeToString(basic) {
		t.Fatal("pick credentials whose base64 has padding and a character the URL-safe alphabet changes")
	}
	for name, echo := range forms {
		t.Run(name, func(t *testing.T) {
			var echoed string
			server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				echoed = echo(r)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client",
					"error_description": "bad credentials: " + echoed})
			}))
			defer server.Close()
			client, err := New(Config{AuthURL: server.URL, TenantID: "t", RealmID: "r", ApplicationID: "a",
				ClientID: clientID, ClientSecret: NewSecret(secret), MaxRetries: 0})
			if err != nil {
				t.Fatal(err)
			}
			for call, do := range map[string]func() error{
				CallToken: func() error {
					_, err := client.MintToken(context.Background(), MintRequest{Lifetime: time.Minute})
					return err
				},
				CallRevoke: func() error { return client.Revoke(context.Background(), NewSecret("some-token")) },
			} {
				err := do()
				var apiErr *APIError
				if !errors.As(err, &apiErr) || !apiErr.InvalidClient() {
					t.Fatalf("%s: want an invalid_client APIError, got %v", call, err)
				}
				text := err.Error()
				if echoed == "" || strings.Contains(text, echoed) || strings.Contains(text, secret) ||
					holdsFragment(text, base64AtOffset(basic, 1)) || holdsFragment(text, base64AtOffset(basic, 2)) {
					t.Errorf("%s: the error gives the client's credentials back (%s)", call, name)
				}
				if !strings.Contains(text, redacted) {
					t.Errorf("%s: the error does not show that something was redacted", call)
				}
			}
		})
	}
}

// TestA200AnswersQuotedFieldsAreScrubbedAndCleaned: a token_type or scope
// that echoes the client's credentials, with control characters, reaches
// the error scrubbed and cleaned, as an error body's fields do; a granted
// scope that is not a scope makes the token unusable.
func TestA200AnswersQuotedFieldsAreScrubbedAndCleaned(t *testing.T) {
	const clientID, secret = "client-01", "a-client-secret-of-some-length"
	basic := base64.StdEncoding.EncodeToString([]byte(clientID + ":" + secret))
	for name, tc := range map[string]struct {
		field, value, reason string
	}{
		"token_type echoing the Basic credentials": {"token_type", basic[:32] + "\u0007\n", "not Bearer"},
		"a scope that is the secret":               {"scope", "a:read " + secret + "\u001b[31m", "not a scope"},
		"a scope that is no scope":                 {"scope", "a:read A:READ", "not a scope"},
	} {
		t.Run(name, func(t *testing.T) {
			answer := map[string]any{"access_token": "opaque-token-value", "token_type": "Bearer", "expires_in": 60, "scope": "a:read"}
			answer[tc.field] = tc.value
			server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(answer)
			}))
			defer server.Close()
			client, err := New(Config{AuthURL: server.URL, TenantID: "t", RealmID: "r", ApplicationID: "a",
				ClientID: clientID, ClientSecret: NewSecret(secret), MaxRetries: 0})
			if err != nil {
				t.Fatal(err)
			}
			_, err = client.MintToken(context.Background(), MintRequest{Scopes: []string{"a:read"}, Lifetime: time.Minute})
			var unusable *UnusableTokenError
			if !errors.As(err, &unusable) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("want an unusable token saying %q, got %v", tc.reason, err)
			}
			text := err.Error()
			if holdsFragment(text, basic) || holdsFragment(text, secret) || strings.ContainsAny(text, "\u0007\n\u001b") {
				t.Fatal("the error quotes the client's credentials, or a control character")
			}
		})
	}
}
