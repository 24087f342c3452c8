package beyondidentity

// config/retained/: dropping retained credentials.

import (
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

func TestCredsDroppedCredentialsCannotRevoke(t *testing.T) {
	t.Parallel()
	e, resp := newIssuedCredential(t)
	token := resp.Data["access_token"].(string)
	e.switchToSecondApplication()
	list := e.mustOK(logical.ListOperation, "config/retained/", nil)
	id := list.Data["keys"].([]string)[0]
	dropped := e.mustOK(logical.DeleteOperation, "config/retained/"+id, nil)
	if len(dropped.Warnings) != 1 || !strings.Contains(dropped.Warnings[0], "can no longer be revoked") {
		t.Fatalf("dropping retained credentials must say what it costs, got %s", warningsOf(dropped))
	}
	e.fake.ResetCalls()

	_, err := e.revoke(resp.Secret)
	if err == nil || !strings.Contains(err.Error(), "no longer kept") || !strings.Contains(err.Error(), "would ignore") {
		t.Fatalf("revoking without the issuing application's credentials must fail, got %v", err)
	}
	if len(e.fake.CallsTo(fakebi.OpRevoke)) != 0 || !e.fake.IsActive(token) {
		t.Fatal("a meaningless revocation was sent or the token was touched")
	}
	e.assertNoRevocationRecords() // nothing could ever complete it
	// Configuring the original application again makes it revocable.
	e.mustOK(logical.UpdateOperation, "config", e.configData(nil))
	if _, err := e.revoke(resp.Secret); err != nil || e.fake.IsActive(token) {
		t.Fatalf("revoke with the original application: %v", err)
	}
}

// TestConfigDeleteWarningNamesWhereTheKeptCredentialsAreListed: after a
// delete, reading config finds nothing, so the warning names the list that
// shows the kept credentials, and that list holds them.
func TestConfigDeleteWarningNamesWhereTheKeptCredentialsAreListed(t *testing.T) {
	t.Parallel()
	e := newTestBackend(t)
	e.configure()
	warnings := strings.Join(e.mustOK(logical.DeleteOperation, "config", nil).Warnings, "\n")
	if resp, err := e.request(logical.ReadOperation, "config", nil); err != nil || (resp != nil && !resp.IsError()) {
		t.Fatalf("config reads %v %v after its delete, want nothing", resp, err)
	}
	if strings.Contains(warnings, "reading config") || !strings.Contains(warnings, "vault list beyondidentity/config/retained lists them") {
		t.Fatalf("the delete's warning does not name the list of kept credentials:\n%s", warnings)
	}
	kept := e.mustOK(logical.ListOperation, "config/retained/", nil).Data["keys"].([]string)
	if len(kept) != 1 || !strings.Contains(warnings, "config/retained/"+kept[0]) {
		t.Fatalf("config/retained/ lists %v; the warning says:\n%s", kept, warnings)
	}
}
