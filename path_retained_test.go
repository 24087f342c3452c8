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
