package biclient

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// TestANotFoundNamesTheURLItTried: a wrong auth_url path is a 404 whose
// message shows where the request went, so the operator sees the path to
// fix, and never what a URL may carry of a credential.
func TestANotFoundNamesTheURLItTried(t *testing.T) {
	fake := fakebi.New()
	fake.AddApplication(testApp())
	server := httptest.NewServer(fake)
	t.Cleanup(server.Close)
	authURL, err := url.Parse(server.URL + "/wrong/prefix")
	if err != nil {
		t.Fatal(err)
	}
	authURL.User = url.UserPassword("someone", "userinfo-secret")
	client, err := New(Config{
		AuthURL: authURL.String(), TenantID: "t", RealmID: "r", ApplicationID: "a",
		ClientID: "c", ClientSecret: NewSecret(testSecret), Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.MintToken(context.Background(), MintRequest{Scopes: []string{testScope}, Lifetime: time.Hour})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Fatalf("a wrong auth_url path answered %v, want a 404", err)
	}
	message := err.Error()
	tried := server.URL + "/wrong/prefix/v1/tenants/t/realms/r/applications/a/token"
	if !strings.Contains(message, tried) || !strings.Contains(message, "auth_url") {
		t.Errorf("the 404's message does not name the URL it tried (%s) and auth_url: %s", tried, message)
	}
	for _, secret := range []string{"userinfo-secret", "someone", testSecret} {
		if strings.Contains(message, secret) {
			t.Errorf("the 404's message shows a part of the URL that may hold a credential (%d characters)", len(secret))
		}
	}
}

func TestOnlyANotFoundNamesTheURL(t *testing.T) {
	for status, named := range map[int]bool{404: true, 400: false, 401: false, 500: false} {
		client, _ := newFakeClient(t, nil)
		err := client.errorFor(CallToken, &answer{status: status, url: "https://auth.example/v1/tenants/t/token"})
		if got := strings.Contains(err.Error(), "https://auth.example/v1/tenants/t/token"); got != named {
			t.Errorf("HTTP %d: the message names the URL: %v, want %v (%s)", status, got, named, err)
		}
	}
}

func TestShownURLDropsWhatMayHoldACredential(t *testing.T) {
	got := shownURL("https://user:pass-secret@auth.example:8443/base/v1/tenants/t/token?key=query-secret#fragment-secret")
	if got != "https://auth.example:8443/base/v1/tenants/t/token" {
		t.Errorf("shownURL = %s", got)
	}
}
