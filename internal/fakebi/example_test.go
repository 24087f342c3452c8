package fakebi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// A test serves the fake, mints a token through it, and then asserts what
// the client sent and what the fake minted.
func Example() {
	fake := fakebi.New()
	fake.AddApplication(fakebi.Application{
		TenantID: "t", RealmID: "r", ID: "a",
		ClientID: "client", ClientSecret: "secret",
		AllowedScopes: []string{"tokens:read", "groups:read"},
	})
	srv := httptest.NewServer(fake)
	defer srv.Close()

	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"groups:read"}, "expiration_time": {"3600"}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/tenants/t/realms/r/applications/a/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("client", "secret")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
	}
	_ = json.NewDecoder(res.Body).Decode(&body)

	call := fake.CallsTo(fakebi.OpToken)[0]
	fmt.Println(res.StatusCode, body.ExpiresIn, body.Scope)
	fmt.Println(call.BasicAuth, call.BasicUser, call.Form.Get("grant_type"))
	fmt.Println(len(fake.Tokens()), fake.IsActive(body.AccessToken))
	// Output:
	// 200 3600 groups:read
	// true client client_credentials
	// 1 true
}
