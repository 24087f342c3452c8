package fakebi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestAdminHandler(t *testing.T) {
	f := newFixture(t)
	admin := httptest.NewServer(f.s.AdminHandler())
	defer admin.Close()

	secretClaims := `{"note":"visible"}`
	value := f.mintValue(t, appA, "scope", "groups:read", "expiration_time", "60", "custom_claims", secretClaims)
	f.do(t, request{path: issuerPath(appA) + "/revoke", form: url.Values{"token": {value}}, basic: basicOf(appA)})
	f.do(t, request{path: issuerPath(appB) + "/token", form: mintForm("client_id", appB.ClientID, "client_secret", appB.ClientSecret)})
	bearer := f.s.Tokens()[1].Value
	f.do(t, request{method: http.MethodGet, path: tokensPath(appA) + listQueryOf(appA), bearer: bearer})

	tokensBody := adminGet(t, admin.URL+"/_fake/tokens")
	callsBody := adminGet(t, admin.URL+"/_fake/calls")
	for _, body := range []string{tokensBody, callsBody} {
		for _, secret := range []string{appA.ClientSecret, url.QueryEscape(appA.ClientSecret), appB.ClientSecret, value, bearer} {
			if strings.Contains(body, secret) {
				t.Fatalf("admin answer %s leaks a secret or a token", body)
			}
		}
	}

	var tokens []map[string]any
	if err := json.Unmarshal([]byte(tokensBody), &tokens); err != nil || len(tokens) != 2 {
		t.Fatalf("tokens %s: %v", tokensBody, err)
	}
	first, _ := f.s.TokenByValue(value)
	if tokens[0]["id"] != first.ID || tokens[0]["application_id"] != "app-a" || tokens[0]["token_suffix"] != value[len(value)-4:] ||
		!reflect.DeepEqual(tokens[0]["scopes"], []any{"groups:read"}) || tokens[0]["revoked_at"] == nil ||
		tokens[0]["issued_at"] == nil || tokens[0]["expires_at"] == nil {
		t.Errorf("first token = %v", tokens[0])
	}
	if tokens[1]["revoked_at"] != nil {
		t.Errorf("unrevoked token has revoked_at %v", tokens[1]["revoked_at"])
	}

	var calls []map[string]any
	if err := json.Unmarshal([]byte(callsBody), &calls); err != nil || len(calls) != 4 {
		t.Fatalf("calls %s: %v", callsBody, err)
	}
	wantForm := map[string]any{"grant_type": []any{"client_credentials"}, "scope": []any{"groups:read"}, "expiration_time": []any{"60"}}
	if calls[0]["op"] != "token" || calls[0]["method"] != "POST" || calls[0]["status"] != float64(200) ||
		!reflect.DeepEqual(calls[0]["form"], wantForm) || calls[0]["at"] == nil {
		t.Errorf("first call = %v", calls[0])
	}
	if _, ok := calls[1]["form"]; ok {
		t.Errorf("revoke call shows its form: %v", calls[1])
	}
	if n := len(f.s.Calls()); n != 4 {
		t.Errorf("%d calls recorded: admin requests must not be recorded", n)
	}
}

func adminGet(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %s %v", url, res.StatusCode, body, err)
	}
	return string(body)
}

func TestAdminHandlerRefusesOtherRequests(t *testing.T) {
	admin := httptest.NewServer(New().AdminHandler())
	defer admin.Close()
	for path, want := range map[string]int{"/_fake/tokens": http.StatusMethodNotAllowed, "/_fake/other": http.StatusNotFound} {
		res, err := http.Post(admin.URL+path, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("POST %s: %d, want %d", path, res.StatusCode, want)
		}
	}
}
