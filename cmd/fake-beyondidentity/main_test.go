package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/scope"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/testutil"
)

// started is a command running in the test process.
type started struct {
	base           string
	stdout, stderr *testutil.SyncBuffer
	stop           func() int // cancels and returns the exit status
}

// start runs the command with args until the test stops it, and waits for
// its ready file.
func start(t *testing.T, env map[string]string, args ...string) started {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	args = append([]string{"-listen", "127.0.0.1:0", "-ready-file", ready}, args...)
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &testutil.SyncBuffer{}, &testutil.SyncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, func(k string) string { return env[k] }, stdout, stderr) }()

	stopped := false
	stop := func() int {
		if stopped {
			return -1
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(15 * time.Second):
			t.Fatalf("the command did not stop; stderr:\n%s", stderr)
			return -1
		}
	}
	t.Cleanup(func() { stop() })

	deadline := time.Now().Add(10 * time.Second)
	for {
		if data, err := os.ReadFile(ready); err == nil {
			return started{base: strings.TrimSpace(string(data)), stdout: stdout, stderr: stderr, stop: stop}
		}
		select {
		case code := <-done:
			t.Fatalf("the command exited with %d before it was ready; stderr:\n%s", code, stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready file after 10s; stderr:\n%s", stderr)
		}
	}
}

const demoIssuerPath = "/v1/tenants/tenant-demo/realms/realm-demo/applications/app-demo"

// mint obtains a token from the command's fake.
func mint(t *testing.T, base, user, secret string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"groups:read"}}
	req, err := http.NewRequest(http.MethodPost, base+demoIssuerPath+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body
}

func TestRunServesAndStops(t *testing.T) {
	const secret = "env-secret-1234"
	cmd := start(t, map[string]string{secretEnv: secret})
	if !strings.HasPrefix(cmd.base, "http://127.0.0.1:") {
		t.Fatalf("base URL %q", cmd.base)
	}

	if status, _ := mint(t, cmd.base, "client-demo", demoSecret); status != http.StatusUnauthorized {
		t.Errorf("the demo secret worked although %s was set: %d", secretEnv, status)
	}
	status, body := mint(t, cmd.base, "client-demo", secret)
	token, _ := body["access_token"].(string)
	if status != http.StatusOK || token == "" || body["scope"] != "groups:read" {
		t.Fatalf("mint: %d %v", status, body)
	}
	res, err := http.Get(cmd.base + "/_fake/tokens")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /_fake/tokens: %d, want 404: there is no admin API", res.StatusCode)
	}

	if code := cmd.stop(); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if want := "fake Beyond Identity listening on " + cmd.base + "\n"; cmd.stdout.String() != want {
		t.Errorf("stdout = %q, want %q", cmd.stdout, want)
	}
	logs := cmd.stderr.String()
	if !strings.Contains(logs, "op=token method=POST") || !strings.Contains(logs, "status=200") || !strings.Contains(logs, `op=unknown method=GET path="/_fake/tokens" status=404`) {
		t.Errorf("stderr lacks the request log lines:\n%s", logs)
	}
	for _, leak := range []string{secret, token, base64.StdEncoding.EncodeToString([]byte("client-demo:" + secret))} {
		if strings.Contains(logs+cmd.stdout.String(), leak) {
			t.Errorf("output leaks a secret or a token:\n%s", logs)
		}
	}
}

func TestRunDefaultSecret(t *testing.T) {
	cmd := start(t, nil, "-token-format", "referential", "-scopes", "identities:read, groups:read")
	status, body := mint(t, cmd.base, "client-demo", demoSecret)
	if token, _ := body["access_token"].(string); status != http.StatusOK || strings.Count(token, ".") == 2 {
		t.Fatalf("mint with the demo secret: %d, a referential token expected", status)
	}
}

func TestDefaultScopesAreRealScopes(t *testing.T) {
	for _, s := range defaultScopes {
		if !scope.Valid(s) || strings.HasPrefix(s, "tokens:") {
			t.Errorf("default scope %q: malformed, or a token scope the plugin does not need", s)
		}
	}
}

func TestRunRejectsBadCommandLines(t *testing.T) {
	tests := map[string]struct {
		args []string
		code int
		say  string // in stderr
	}{
		"help":                {args: []string{"-h"}, code: 0, say: "-listen"},
		"unknown flag":        {args: []string{"-nope"}, code: 2, say: "-nope"},
		"stray argument":      {args: []string{"serve"}, code: 2, say: "unexpected arguments"},
		"bad token format":    {args: []string{"-token-format", "jwt"}, code: 2, say: "-token-format"},
		"bad scope":           {args: []string{"-scopes", "groups:read,Admin"}, code: 2, say: `"Admin"`},
		"one-segment scope":   {args: []string{"-scopes", "tokens"}, code: 2, say: `"tokens"`},
		"short expires-after": {args: []string{"-expires-after", "500ms"}, code: 2, say: "-expires-after"},
		"empty tenant":        {args: []string{"-tenant-id", ""}, code: 2, say: "-tenant-id"},
		"TLS is gone":         {args: []string{"-tls-cert", "cert.pem"}, code: 2, say: "-tls-cert"},
		"bad listen address":  {args: []string{"-listen", "256.0.0.1:1"}, code: 1, say: "listening"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr testutil.SyncBuffer
			code := run(context.Background(), tc.args, func(string) string { return "" }, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.say) {
				t.Errorf("exit %d, stderr %q; want %d and a mention of %q", code, stderr.String(), tc.code, tc.say)
			}
			if stdout.String() != "" {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}

func TestBaseURL(t *testing.T) {
	tests := map[string]struct {
		addr net.Addr
		want string
	}{
		"loopback":      {&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8300}, "http://127.0.0.1:8300"},
		"any IPv4":      {&net.TCPAddr{IP: net.IPv4zero, Port: 1}, "http://127.0.0.1:1"},
		"any IPv6":      {&net.TCPAddr{IP: net.IPv6unspecified, Port: 2}, "http://[::1]:2"},
		"IPv6 loopback": {&net.TCPAddr{IP: net.IPv6loopback, Port: 3}, "http://[::1]:3"},
	}
	for name, tc := range tests {
		if got := baseURL(tc.addr); got != tc.want {
			t.Errorf("%s: baseURL = %q, want %q", name, got, tc.want)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ready")
	if err := writeFileAtomic(path, "one\n"); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(path, "two\n"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	entries, _ := os.ReadDir(dir)
	if err != nil || string(data) != "two\n" || len(entries) != 1 {
		t.Errorf("content %q, %d files (%v); want the last content and no temporary file", data, len(entries), err)
	}
	if err := writeFileAtomic(filepath.Join(dir, "missing", "ready"), "x"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("writing into a missing folder: %v", err)
	}
}
