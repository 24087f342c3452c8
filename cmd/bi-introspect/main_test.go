package main

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// TestMain runs main itself when a test re-executes this binary, so that a
// test can see the exit code a user sees.
func TestMain(m *testing.M) {
	if os.Getenv("BI_INTROSPECT_RUN_MAIN") == "1" {
		os.Args = append([]string{"bi-introspect"}, strings.Fields(os.Getenv("BI_INTROSPECT_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const testSecret = "s3cret+Never/Printed"

// fakeWithTokens serves a fake Beyond Identity holding application t/r/a
// with client c, and mints a live token carrying bi_custom and a revoked
// one. It returns the fake's URL and both tokens.
func fakeWithTokens(t *testing.T) (string, *fakebi.Server, string, string) {
	t.Helper()
	fake := fakebi.New()
	fake.AddApplication(fakebi.Application{TenantID: "t", RealmID: "r", ID: "a", ClientID: "c", ClientSecret: testSecret,
		AllowedScopes: []string{"identities:read"}})
	server := httptest.NewServer(fake)
	t.Cleanup(server.Close)
	mint := func() string {
		t.Helper()
		resp, err := server.Client().PostForm(server.URL+"/v1/tenants/t/realms/r/applications/a/token",
			url.Values{"grant_type": {"client_credentials"}, "client_id": {"c"}, "client_secret": {testSecret},
				"custom_claims": {`{"vault_user":"alice"}`}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		tokens := fake.Tokens()
		return tokens[len(tokens)-1].Value
	}
	live, revoked := mint(), mint()
	resp, err := server.Client().PostForm(server.URL+"/v1/tenants/t/realms/r/applications/a/revoke",
		url.Values{"token": {revoked}, "client_id": {"c"}, "client_secret": {testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return server.URL, fake, live, revoked
}

// env is a getenv over a map.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// checkReport checks the two lines printed for live and revoked, and that
// neither token nor the secret was printed.
func checkReport(t *testing.T, fake *fakebi.Server, out, live, revoked string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	liveToken, _ := fake.TokenByValue(live)
	revokedToken, _ := fake.TokenByValue(revoked)
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "token "+liveToken.ID+": active=true") ||
		!strings.HasSuffix(lines[0], `bi_custom {"vault_user":"alice"}`) ||
		!strings.HasPrefix(lines[1], "token "+revokedToken.ID+": active=false") {
		t.Fatalf("output:\n%s", strings.NewReplacer(live, "[live token]", revoked, "[revoked token]").Replace(out))
	}
	if strings.Contains(out, live) || strings.Contains(out, revoked) || strings.Contains(out, testSecret) {
		t.Fatal("the output carries a token or the secret")
	}
}

func TestReportsEachTokenWithoutPrintingIt(t *testing.T) {
	authURL, fake, live, revoked := fakeWithTokens(t)
	var out bytes.Buffer
	args := []string{"-auth-url", authURL, "-tenant-id", "t", "-realm-id", "r", "-application-id", "a", "-client-id", "c"}
	if err := run(args, env(map[string]string{secretEnv: testSecret}), strings.NewReader(live+"\n\n"+revoked+"\n"), &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	checkReport(t, fake, out.String(), live, revoked)
}

// TestTakesEverythingFromTheEnvironment: in make dev's shell, whose banner
// exports the BEYOND_IDENTITY_* variables, no flag is needed.
func TestTakesEverythingFromTheEnvironment(t *testing.T) {
	authURL, fake, live, revoked := fakeWithTokens(t)
	vars := map[string]string{
		"BEYOND_IDENTITY_TENANT_ID": "t", "BEYOND_IDENTITY_REALM_ID": "r", "BEYOND_IDENTITY_APPLICATION_ID": "a",
		"BEYOND_IDENTITY_CLIENT_ID": "c", "BEYOND_IDENTITY_AUTH_URL": authURL, secretEnv: testSecret,
	}
	var out bytes.Buffer
	if err := run(nil, env(vars), strings.NewReader(live+"\n"+revoked+"\n"), &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	checkReport(t, fake, out.String(), live, revoked)
}

// TestFlagsOverrideTheEnvironment: a flag wins over its variable, so a
// wrong variable set by an earlier shell does not stand in the way.
func TestFlagsOverrideTheEnvironment(t *testing.T) {
	authURL, fake, live, revoked := fakeWithTokens(t)
	vars := map[string]string{
		"BEYOND_IDENTITY_TENANT_ID": "other", "BEYOND_IDENTITY_REALM_ID": "r", "BEYOND_IDENTITY_APPLICATION_ID": "a",
		"BEYOND_IDENTITY_CLIENT_ID": "c", "BEYOND_IDENTITY_AUTH_URL": "http://127.0.0.1:1", secretEnv: testSecret,
	}
	var out bytes.Buffer
	if err := run([]string{"-tenant-id", "t", "-auth-url", authURL}, env(vars), strings.NewReader(live+"\n"+revoked+"\n"), &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	checkReport(t, fake, out.String(), live, revoked)
}

func TestRequiresTheSecret(t *testing.T) {
	err := run([]string{"-tenant-id", "t", "-realm-id", "r", "-application-id", "a", "-client-id", "c"},
		env(nil), strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), secretEnv) {
		t.Fatalf("err = %v", err)
	}
}

// TestNamesEachMissingID: without an id, the error names its flag and its
// variable, before any call.
func TestNamesEachMissingID(t *testing.T) {
	err := run([]string{"-tenant-id", "t", "-client-id", "c"}, env(map[string]string{secretEnv: testSecret}),
		strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("no error without a realm and an application")
	}
	for _, want := range []string{"-realm-id (or $BEYOND_IDENTITY_REALM_ID)", "-application-id (or $BEYOND_IDENTITY_APPLICATION_ID)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "tenant") || strings.Contains(err.Error(), "client-id") {
		t.Errorf("the error %q names an id that was given", err)
	}
}

// TestHelpExitsZero runs the program as a user does: -h prints the usage,
// naming the variables, on standard output and exits 0; a wrong flag exits
// 1 with the usage on standard error.
func TestHelpExitsZero(t *testing.T) {
	for _, tc := range []struct {
		args   string
		ok     bool
		stdout bool
	}{
		{"-h", true, true},
		{"-help", true, true},
		{"-nope", false, false},
	} {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "BI_INTROSPECT_RUN_MAIN=1", "BI_INTROSPECT_ARGS="+tc.args)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case tc.ok && err != nil:
			t.Errorf("bi-introspect %s: %v, want exit 0\n%s", tc.args, err, stderr.String())
		case !tc.ok && (!errors.As(err, &exit) || exit.ExitCode() != 1):
			t.Errorf("bi-introspect %s: %v, want exit 1", tc.args, err)
		}
		usage := stderr.String()
		if tc.stdout {
			usage = stdout.String()
		}
		for _, want := range []string{"Usage: bi-introspect", "-auth-url", "BEYOND_IDENTITY_AUTH_URL", secretEnv} {
			if !strings.Contains(usage, want) {
				t.Errorf("bi-introspect %s: the usage lacks %q:\n%s", tc.args, want, usage)
			}
		}
	}
}
