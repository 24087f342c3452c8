//go:build e2e

package e2e

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// TestOperatorMistakes runs the vault CLI as an operator would, through the
// usual mistakes: each row is the command, the exit code, and the words of
// the answer that tell the operator what to do. After each, nothing was
// stored (roles, static roles, config as they were) and nothing minted.
func TestOperatorMistakes(t *testing.T) {
	e := newEnv(t)
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h"})
	e.write("beyondidentity/static-roles/ci", map[string]any{"scopes": "identities:read", "rotation_period": "1h"})
	// A second mount with no config yet.
	e.vault.MustCLI("secrets", "enable", "-path=bare", pluginName)
	e.vault.MustCLI("write", "bare/roles/r", "scopes=identities:read")
	// Retained credentials to delete by mistake: a secret written and
	// replaced again.
	e.vault.MustCLI("write", "beyondidentity/config", "client_secret=a-mistake", "verify_connection=false")
	e.vault.MustCLI("write", "beyondidentity/config", "client_secret="+clientSecret)
	retainedID := e.retainedIDs()[0]

	for _, row := range []struct {
		name  string
		args  []string
		exit  int
		words []string
	}{
		{"max-ttl on a role", []string{"write", "beyondidentity/roles/x", "scopes=identities:read", "max-ttl=1h"}, 2,
			[]string{"'max-ttl' is not a parameter", "did you mean max_ttl?", "nothing was stored"}},
		{"tll on a role", []string{"write", "beyondidentity/roles/x", "scopes=identities:read", "tll=1h"}, 2,
			[]string{"'tll' is not a parameter", "did you mean ttl?"}},
		{"scope= on a role", []string{"write", "beyondidentity/roles/x", "scope=identities:read"}, 2,
			[]string{"'scope' is not a parameter", "did you mean scopes?"}},
		{"a typo on a static role", []string{"write", "beyondidentity/static-roles/ci", "rotation-period=2h"}, 2,
			[]string{"'rotation-period' is not a parameter", "did you mean rotation_period?"}},
		{"a typo on creds", []string{"read", "beyondidentity/creds/r", "tll=30m"}, 2,
			[]string{"'tll' is not a parameter", "did you mean ttl?", "nothing was minted"}},
		{`ttl="1 day"`, []string{"write", "beyondidentity/roles/x", "scopes=identities:read", "ttl=1 day"}, 2,
			[]string{"'ttl' must be a duration", "24h"}},
		{"an unknown role on creds", []string{"read", "beyondidentity/creds/nope"}, 2,
			[]string{`role "nope" does not exist`, "beyondidentity/roles/nope"}},
		{"an unknown static role", []string{"read", "beyondidentity/static-creds/nope"}, 2,
			[]string{`static role "nope" does not exist`, "vault list beyondidentity/static-roles/"}},
		{"an invalid role name", []string{"write", "beyondidentity/roles/scim.", "scopes=identities:read"}, 2,
			[]string{"is not a valid name", "letters, digits, '_', '-' and '.'"}},
		{"client_id changed without the secret", []string{"write", "beyondidentity/config", "client_id=someone-else"}, 2,
			[]string{"'client_secret' is required when changing client_id"}},
		{"creds before any config", []string{"read", "bare/creds/r"}, 2,
			[]string{"the mount is not configured", "write bare/config first"}},
		{"config delete with a static role", []string{"delete", "beyondidentity/config"}, 2,
			[]string{"static roles exist", "vault delete beyondidentity/static-roles/ci"}},
		{"a ttl above the role's", []string{"read", "beyondidentity/creds/r", "ttl=2h"}, 2,
			[]string{"'ttl' of 2h (7200s) must not exceed the max_ttl", `role "r"`}},
		{"period and schedule", []string{"write", "beyondidentity/static-roles/ci", "rotation_period=2h", "rotation_schedule=0 2 * * *"}, 2,
			[]string{"'rotation_period' and 'rotation_schedule' are mutually exclusive"}},
		{"a misspelt placeholder", []string{"write", "beyondidentity/roles/x", "scopes=identities:read",
			`claims_template={"user": {{identity.entity.nmae}}}`}, 2,
			[]string{"{{identity.entity.nmae}}", "not a placeholder"}},
		{"an unknown metrics format", []string{"read", "beyondidentity/metrics", "format=yaml"}, 2,
			[]string{"'format' must be json or prometheus"}},
		{"confirm=no on a retained delete", []string{"delete", "beyondidentity/config/retained/" + retainedID, "confirm=no"}, 2,
			[]string{"'confirm' is not a parameter", "nothing was deleted"}},
		{"a window longer than a minutely schedule", []string{"write", "beyondidentity/static-roles/x", "scopes=identities:read",
			"rotation_schedule=* * * * *", "rotation_window=2h"}, 2,
			[]string{"'rotation_window' (2h) must be at most the shortest interval", "(60s)"}},
		{"@every", []string{"write", "beyondidentity/static-roles/x", "scopes=identities:read", `rotation_schedule=\@every 10s`}, 2,
			[]string{"not @every", "rotation_period=10s"}},
		{"creds of a static role", []string{"read", "beyondidentity/creds/ci"}, 2,
			[]string{`"ci" is a static role`, "beyondidentity/static-creds/ci"}},
		{"static-creds of a role of leases", []string{"read", "beyondidentity/static-creds/r"}, 2,
			[]string{`"r" is a role of leases`, "beyondidentity/creds/r"}},
		{"rotate-role of a role of leases", []string{"write", "-force", "beyondidentity/rotate-role/r"}, 2,
			[]string{`"r" is a role of leases`, "beyondidentity/creds/r"}},
		// The CLI reads a value that starts with @ from the file it names:
		// the README says to write '\@daily'.
		{"a bare @daily", []string{"write", "beyondidentity/static-roles/daily", "scopes=identities:read", "rotation_schedule=@daily"}, 1,
			[]string{"error reading file"}},
	} {
		t.Run(row.name, func(t *testing.T) {
			before := e.storedState()
			out, err := e.vault.CLI(row.args...)
			var exit *exec.ExitError
			code := 0
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			}
			if code != row.exit {
				t.Errorf("vault %s exited %d, want %d:\n%s", strings.Join(row.args, " "), code, row.exit, redactSecrets(out))
			}
			for _, words := range row.words {
				if !strings.Contains(out, words) {
					t.Errorf("vault %s: the answer lacks %q:\n%s", strings.Join(row.args, " "), words, redactSecrets(out))
				}
			}
			if after := e.storedState(); after != before {
				t.Errorf("vault %s changed what is stored or minted:\nbefore %s\nafter  %s", strings.Join(row.args, " "), before, after)
			}
		})
	}
	// A user's mistake is the operator's to fix, not an error of Vault's:
	// the existence check answers whether the object exists and never
	// fails on bad input, so Vault logs no "failed to run existence check"
	// ERROR that log-based alerting would fire on.
	if strings.Contains(e.vault.LogText(), "failed to run existence check") {
		t.Error("Vault's server log holds an existence-check error after the mistakes: a user's mistake became an ERROR of Vault's")
	}
	// @daily written as the README says makes a role that rotates at
	// midnight UTC.
	e.vault.MustCLI("write", "beyondidentity/static-roles/daily", "scopes=identities:read", `rotation_schedule=\@daily`)
	out := e.vault.MustCLI("read", "-field=next_vault_rotation", "beyondidentity/static-roles/daily")
	if !strings.HasSuffix(strings.TrimSpace(out), "T00:00:00Z") {
		t.Fatalf("next_vault_rotation %q, want a midnight", out)
	}
	e.vault.MustCLI("delete", "beyondidentity/static-roles/daily")
}

// retainedIDs lists the mount's retained credentials.
func (e *env) retainedIDs() []string {
	e.t.Helper()
	list, err := e.vault.Client.Logical().List("beyondidentity/config/retained")
	if err != nil || list == nil {
		e.t.Fatalf("listing retained credentials: %v", err)
	}
	var ids []string
	for _, key := range list.Data["keys"].([]any) {
		ids = append(ids, key.(string))
	}
	return ids
}

// storedState sums up what a mistake must leave alone: the roles and static
// roles with their settings, the config, and the tokens minted.
func (e *env) storedState() string {
	e.t.Helper()
	var parts []string
	for _, list := range []string{"beyondidentity/roles", "beyondidentity/static-roles", "bare/roles"} {
		out, _ := e.vault.CLI("list", "-format=json", list)
		parts = append(parts, strings.Join(strings.Fields(out), ""))
	}
	for _, read := range []string{"beyondidentity/roles/r", "beyondidentity/static-roles/ci", "beyondidentity/config"} {
		out, _ := e.vault.CLI("read", "-format=json", "-field=data", read)
		parts = append(parts, strings.Join(strings.Fields(out), ""))
	}
	_, bareConfig := e.vault.CLI("read", "bare/config")
	parts = append(parts, "bare config read error: "+strings.TrimSpace(errorText(bareConfig)),
		"tokens minted: "+strings.Repeat("|", e.countOps(fakebi.OpToken)))
	return strings.Join(parts, " ")
}

// errorText is an error's presence, for storedState: nil or not.
func errorText(err error) string {
	if err == nil {
		return "none"
	}
	return "some"
}
