package beyondidentity

// revocations/: what the plugin is still trying to revoke, never a token.

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// TestRevocationsListsWhatIsPendingWithoutTheToken: a failed revocation is
// listed and read with what it was, and the token appears nowhere; once
// revoked it is no longer listed.
func TestRevocationsListsWhatIsPendingWithoutTheToken(t *testing.T) {
	t.Parallel()
	e, resp, fake := failRevocationsNow(t)
	token := resp.Data["access_token"].(string)
	list := e.mustOK(logical.ListOperation, "revocations/", nil)
	keys, _ := list.Data["keys"].([]string)
	if len(keys) != 1 || keys[0] != revocationKey(secretOf(token)) {
		t.Fatalf("revocations/ lists %v, want the failed one under its key", keys)
	}
	read := e.mustOK(logical.ReadOperation, "revocations/"+keys[0], nil)
	for field, want := range map[string]any{"role": "sync", "kind": kindLease, "attempts": 1} {
		if read.Data[field] != want {
			t.Errorf("revocations/%s reads %s=%v, want %v", keys[0], field, read.Data[field], want)
		}
	}
	for _, text := range []string{fmt.Sprint(list.Data), fmt.Sprint(read.Data)} {
		if strings.Contains(text, token) {
			t.Fatal("revocations/ shows the token")
		}
	}
	e.fake.ClearFaults()
	e.advance(fake, revocationRetryMax)
	if keys := e.mustOK(logical.ListOperation, "revocations/", nil).Data["keys"]; keys != nil {
		t.Fatalf("revocations/ still lists %v once the token is revoked", keys)
	}
	if resp := e.mustOK(logical.ReadOperation, "revocations/"+revocationKey(secretOf(token)), nil); resp != nil {
		t.Fatal("a done revocation still reads")
	}
}
