package main

import (
	"bytes"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

func TestReportsEachTokenWithoutPrintingIt(t *testing.T) {
	fake := fakebi.New()
	fake.AddApplication(fakebi.Application{TenantID: "t", RealmID: "r", ID: "a", ClientID: "c", ClientSecret: "s3cret",
		AllowedScopes: []string{"identities:read"}})
	server := httptest.NewServer(fake)
	defer server.Close()

	mint := func() string {
		t.Helper()
		resp, err := server.Client().PostForm(server.URL+"/v1/tenants/t/realms/r/applications/a/token",
			url.Values{"grant_type": {"client_credentials"}, "client_id": {"c"}, "client_secret": {"s3cret"},
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
		url.Values{"token": {revoked}, "client_id": {"c"}, "client_secret": {"s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	t.Setenv("BEYOND_IDENTITY_CLIENT_SECRET", "s3cret")
	var out bytes.Buffer
	args := []string{"-auth-url", server.URL, "-tenant-id", "t", "-realm-id", "r", "-application-id", "a", "-client-id", "c"}
	if err := run(args, strings.NewReader(live+"\n\n"+revoked+"\n"), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	liveToken, _ := fake.TokenByValue(live)
	revokedToken, _ := fake.TokenByValue(revoked)
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "token "+liveToken.ID+": active=true") ||
		!strings.HasSuffix(lines[0], `bi_custom {"vault_user":"alice"}`) ||
		!strings.HasPrefix(lines[1], "token "+revokedToken.ID+": active=false") {
		t.Fatalf("output:\n%s", out.String())
	}
	if strings.Contains(out.String(), live) || strings.Contains(out.String(), revoked) {
		t.Fatal("the output carries a token")
	}
}

func TestRequiresTheSecret(t *testing.T) {
	t.Setenv("BEYOND_IDENTITY_CLIENT_SECRET", "")
	err := run([]string{"-tenant-id", "t", "-realm-id", "r", "-application-id", "a", "-client-id", "c"}, strings.NewReader(""), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "BEYOND_IDENTITY_CLIENT_SECRET") {
		t.Fatalf("err = %v", err)
	}
}
