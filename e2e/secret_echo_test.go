//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// TestSecretOfTheWrongTypeIsNeverEchoed writes client_secret as a list, an
// object and a number, through the CLI (a repeated key makes a list; a JSON
// file the others) and the HTTP API. Each is a 400 that names the field and
// the type it must be; neither the answer, nor Vault's server log (the
// plugin's lines at trace included), nor a file audit device holds the
// secret in any form the scrubber knows. Vault HMACs a request's data in the
// audit log, but not the error it answers with: a value quoted in an error
// would stand there in clear.
func TestSecretOfTheWrongTypeIsNeverEchoed(t *testing.T) {
	const secret = "wrong-type+secret/Never%Echoed~0123456789"
	const numeric = "31415926535897932384626433832795028841"
	rememberSecrets(secret, numeric)
	e := newEnv(t)
	dir := t.TempDir()
	bodyFile := func(name string, body map[string]any) string {
		path := filepath.Join(dir, name+".json")
		data, _ := json.Marshal(body)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return "@" + path
	}
	var answers []string
	expectRefused := func(how, answer string, err error, must string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: accepted; want a 400 naming client_secret", how)
		}
		for _, words := range []string{"client_secret", must} {
			if !strings.Contains(answer, words) {
				t.Errorf("%s: the answer does not say %q: %s", how, words, redactSecrets(answer))
			}
		}
		answers = append(answers, answer)
	}
	for _, form := range []struct {
		name  string
		value any
	}{
		{"list", []string{secret}},
		{"object", map[string]any{"v": secret}},
		{"number", json.Number(numeric)},
	} {
		body := map[string]any{"client_secret": form.value, "verify_connection": false}
		_, err := e.vault.Client.Logical().Write("beyondidentity/config", body)
		expectRefused("API "+form.name, apiErrorText(err), err, "string")
		out, err := e.vault.CLI("write", "beyondidentity/config", bodyFile(form.name, body))
		expectRefused("CLI "+form.name, out, err, "string")
	}
	out, err := e.vault.CLI("write", "beyondidentity/config", "client_secret="+secret, "client_secret="+secret)
	expectRefused("CLI repeated key", out, err, "string")

	// The config was never changed: creds still mint with the suite's secret.
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	e.issue("r")

	e.vault.Stop()
	forms := append(scrubberForms(secret), scrubberForms(numeric)...)
	for _, text := range []struct{ what, body string }{
		{"an answer", strings.Join(answers, "\n")},
		{"Vault's server log", e.vault.LogText()},
		{"the audit log", e.vault.AuditText()},
	} {
		for i, form := range forms {
			if found := newFragmentIndex(map[string]string{form: "form"}).find(text.body); len(found) > 0 {
				t.Errorf("%s holds a run of %d or more characters of the secret's form #%d", text.what, minFragment, i+1)
			}
		}
	}
	if !strings.Contains(e.vault.AuditText(), "beyondidentity/config") {
		t.Error("the audit log holds no request to the config: its check would prove nothing")
	}
}

// apiErrorText is the text of an API error, "" for none.
func apiErrorText(err error) string {
	if err == nil {
		return ""
	}
	var respErr *api.ResponseError
	if errors.As(err, &respErr) {
		return strings.Join(respErr.Errors, "; ")
	}
	return err.Error()
}

// scrubberForms are the forms the contract says an upstream may echo a
// secret in: as is, URL-escaped (query and path), base64 (padded,
// unpadded, URL-safe) and hex (either case).
func scrubberForms(secret string) []string {
	b := []byte(secret)
	return []string{
		secret,
		url.QueryEscape(secret),
		url.PathEscape(secret),
		base64.StdEncoding.EncodeToString(b),
		base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b),
		hex.EncodeToString(b),
		strings.ToUpper(hex.EncodeToString(b)),
		fmt.Sprintf("%q", secret),
	}
}
