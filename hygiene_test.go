package beyondidentity

// Secrets stay secret: no log line, error or printed value ever holds the
// client secret or a token, whatever Beyond Identity echoes.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/testutil"
)

// TestLifecycleNeverLogsSecrets runs config, role, creds, renew and revoke
// with trace logging and fails if the client secret or any token appears in
// a log line, or in any response but the one creds response that carries
// its token.
func TestLifecycleNeverLogsSecrets(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	var responses []*logical.Response
	record := func(resp *logical.Response, err error) *logical.Response {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		responses = append(responses, resp)
		return resp
	}

	record(e.request(logical.CreateOperation, "config", e.configData(nil)))
	record(e.request(logical.ReadOperation, "config", nil))
	record(e.request(logical.HelpOperation, "config", nil))
	record(e.request(logical.CreateOperation, "roles/sync", map[string]any{"scopes": "identities:read", "ttl": "1h", "max_ttl": "2h"}))
	record(e.request(logical.CreateOperation, "roles/gone", map[string]any{"scopes": "groups:read"}))
	record(e.request(logical.ReadOperation, "roles/sync", nil))
	record(e.request(logical.ListOperation, "roles/", nil))
	record(e.request(logical.DeleteOperation, "roles/gone", nil))
	creds := record(e.request(logical.ReadOperation, "creds/sync", nil))
	issued := time.Now()
	record(e.renew(creds.Secret, time.Hour, issued))
	record(e.request(logical.UpdateOperation, "config", map[string]any{"request_timeout": "5s"}))
	record(e.revoke(creds.Secret))
	// Failures too: a refused mint, a refused config, a failed revocation.
	record(e.request(logical.UpdateOperation, "creds/sync", map[string]any{"ttl": "3h"}))
	record(e.request(logical.UpdateOperation, "config", map[string]any{"client_secret": "wrong-secret", "client_id": "client-x"}))
	again := record(e.request(logical.ReadOperation, "creds/sync", nil))
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 500, Body: `{"message":"echo ` + again.Data["access_token"].(string) + `"}`})
	if _, err := e.revoke(again.Secret); err == nil || strings.Contains(err.Error(), again.Data["access_token"].(string)) {
		t.Fatalf("a failed revocation must error without echoing the token: %v", err)
	}
	e.fake.ClearFaults()
	record(e.revoke(again.Secret))
	record(e.request(logical.DeleteOperation, "config", nil))

	if trace := e.logs.String(); !strings.Contains(trace, "issued token") || !strings.Contains(trace, "revoked token") {
		t.Fatalf("the trace log did not capture the life cycle:\n%s", trace)
	}
	e.assertNoSecretsLogged()
	if strings.Contains(e.logs.String(), "wrong-secret") {
		t.Error("a rejected client secret appears in the log")
	}

	tokens := e.fake.Tokens()
	for i, resp := range responses {
		if resp == nil {
			continue
		}
		// What a client sees: data and warnings. Lease internal data stays
		// inside Vault.
		encoded, err := json.Marshal(map[string]any{"data": resp.Data, "warnings": resp.Warnings})
		if err != nil {
			t.Fatal(err)
		}
		text := string(encoded)
		if strings.Contains(text, testClientSecret) || strings.Contains(text, "wrong-secret") {
			t.Errorf("response %d carries a client secret", i)
		}
		for _, token := range tokens {
			if strings.Contains(text, token.Value) && resp != creds && resp != again {
				t.Errorf("response %d carries token %s", i, token.ID)
			}
		}
	}
	if minted, ok := e.fake.TokenByValue(creds.Data["access_token"].(string)); !ok || minted.ID != creds.Data["token_id"] {
		t.Fatal("the creds response does not carry its token")
	}
}

// The structs that hold the client secret or a token print neither, with
// any verb, so a careless log line or error cannot leak them. The values
// the plugin passes around and could log (as JSON, which is how a plugin
// logs to Vault) keep them out of their JSON too; only a record's JSON, what
// storage keeps, holds its token (storedToken).
func TestSecretHoldersNeverPrintTheirSecrets(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig()
	cfg.ClientSecret = biclient.NewSecret(testClientSecret)
	issued := issuedToken{AccessToken: biclient.NewSecret("the-access-token-value"), TokenID: "id"}
	fresh := &freshToken{issuedToken: issued}
	token := &biclient.Token{AccessToken: biclient.NewSecret("the-access-token-value")}
	records := []any{leaseData{storedToken: stored(issued)}, journalEntry{storedToken: stored(issued)},
		revocationRecord{storedToken: stored(issued)}, &staticRole{Current: &staticToken{storedToken: stored(issued)}}}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		out := fmt.Sprintf(strings.Repeat(verb+" ", 4+len(records)), append([]any{cfg, issued, fresh, token}, records...)...)
		if strings.Contains(out, testClientSecret) || strings.Contains(out, "the-access-token-value") ||
			strings.Contains(out, fmt.Sprintf("%x", testClientSecret)) {
			t.Errorf("%s prints a secret: %s", verb, out)
		}
	}
	encoded, _ := json.Marshal(map[string]any{"config": cfg, "issued": issued, "fresh": fresh, "token": token})
	if strings.Contains(string(encoded), testClientSecret) || strings.Contains(string(encoded), "the-access-token-value") {
		t.Error("JSON encoding reveals a secret")
	}
}

// A plugin logs to Vault as JSON, which carries a time.Duration as a number
// of nanoseconds that Vault then prints as 3.6e+12: durations are logged
// as text.
func TestLogLinesGiveDurationsAsText(t *testing.T) {
	t.Parallel()
	logs := &testutil.SyncBuffer{}
	e := newTestBackendWith(t, func(conf *logical.BackendConfig) {
		conf.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace, JSONFormat: true})
	})
	e.configure()
	e.writeRole("sync", map[string]any{"scopes": "identities:read", "ttl": "1h", "max_ttl": "2h"})
	if resp, err := e.renew(e.issue("sync", nil).Secret, time.Hour, time.Now()); err != nil || resp.IsError() {
		t.Fatalf("renew: %v %s", err, errorText(resp))
	}
	e.mustOK(logical.CreateOperation, "static-roles/static", map[string]any{"scopes": "identities:read", "rotation_period": "1h"})
	e.mustOK(logical.UpdateOperation, "static-roles/static", map[string]any{"rotation_period": "2h"})
	want := map[string]map[string]string{
		"role saved":        {"ttl": "1h0m0s", "max_ttl": "2h0m0s"},
		"issued token":      {"lease_ttl": "1h0m0s"},
		"renewed lease":     {"ttl": "1h0m0s"},
		"static role saved": {"rotation_period": "2h0m0s"},
	}
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("not a JSON log line: %q", line)
		}
		fields, ok := want[entry["@message"].(string)]
		for name, text := range fields {
			if entry[name] != text {
				t.Errorf("%q logs %s=%v (%T), want %q", entry["@message"], name, entry[name], entry[name], text)
			}
		}
		if ok {
			delete(want, entry["@message"].(string))
		}
	}
	if len(want) > 0 {
		t.Errorf("no log line for %v", want)
	}
}

// Some gateways answer an error with a page that echoes the request: its
// body (a token being revoked or introspected) and its Authorization
// header. No such echo reaches a message.
func TestUpstreamErrorsThatEchoTheRequestAreScrubbed(t *testing.T) {
	t.Parallel()
	for _, op := range []fakebi.Op{fakebi.OpToken, fakebi.OpRevoke, fakebi.OpIntrospect} {
		t.Run(string(op), func(t *testing.T) {
			t.Parallel()
			e := newConfiguredBackend(t, referentialTokens)
			var resp *logical.Response
			if op != fakebi.OpToken {
				resp = e.issue("sync", nil)
			}
			e.fake.SetFault(op, fakebi.Fault{Status: 400, EchoRequest: true})
			var message string
			switch op {
			case fakebi.OpToken:
				resp, err := e.request(logical.ReadOperation, "creds/sync", nil)
				_, message = statusOf(resp, err)
			case fakebi.OpRevoke:
				_, err := e.revoke(resp.Secret)
				message = fmt.Sprint(err)
			case fakebi.OpIntrospect:
				issued := e.issue("sync", nil)
				message = strings.Join(issued.Warnings, " ")
			}
			if !strings.Contains(message, "cannot handle the request") || !strings.Contains(message, "[redacted]") {
				t.Fatalf("the echo did not reach the message, or was not scrubbed, so the test proves nothing: %s", message)
			}
			basic := base64.StdEncoding.EncodeToString([]byte(testClientID + ":" + testClientSecret))
			for _, leaked := range []string{testClientSecret, url.QueryEscape(testClientSecret), basic} {
				if strings.Contains(message, leaked) {
					t.Fatalf("the message echoes the client credentials: %s", message)
				}
			}
			assertNoSecretIn(t, e, message)
			e.assertNoSecretsLogged()
		})
	}
}
