//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

const (
	terraformDoc = "docs/terraform.md"
	// providerVersion is the Vault provider's version scripts/tofu.sh
	// builds, which the page's required_providers asks for.
	providerVersion = "5.9.0"
	// childTokenTTL is the TTL, in seconds, of the token the provider
	// derives for each run, by default (its max_lease_ttl_seconds).
	childTokenTTL = 1200
)

// TestTerraformPlansClean applies the HCL of docs/terraform.md, as printed
// (but for the region, replaced by the fake's auth_url), with OpenTofu and
// HashiCorp's Vault provider against a real Vault with the plugin: the
// second plan is clean, a changed field applies and plans clean again, and
// one destroy removes everything, the static role's tokens revoked. It also
// checks what the page says Terraform users must know: the secret lands in
// the state, every plan mints a token whose lease lives until the
// provider's own token ends, and a role with a claims_template is read
// through the provider logged in with userpass.
func TestTerraformPlansClean(t *testing.T) {
	tf := newTofu(t)
	fake := newFake("identities:read", "scim:groups:read", "scim:users:read")
	url := newLoopbackServer(t, fake)
	vault := startVault(t, t.TempDir())
	t.Cleanup(func() { checkVaultLog(t, vault.LogText(), []string{clientSecret, vaultPassword}, fake.Tokens()) })
	sum, err := vaulttest.SHA256File(vault.PluginPath())
	if err != nil {
		t.Fatal(err)
	}
	vault.MustCLI("plugin", "register", "-sha256="+sum, "-version="+pluginVersion, "secret", pluginName)

	// A developer's TF_LOG would log what the provider sends, and their
	// TF_VAR_ values would change the configuration.
	tf.env = append(append(withoutPrefix("TF_", vaulttest.Environ()),
		"PATH="+toolsOnPath(t)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"VAULT_ADDR="+vault.URL(), "VAULT_TOKEN="+vault.RootToken,
		`TF_VAR_beyond_identity={"tenant_id":"`+tenantID+`","realm_id":"`+realmID+
			`","application_id":"`+applicationID+`","client_id":"`+clientID+`"}`,
		"TF_VAR_beyond_identity_client_secret="+clientSecret,
		"TF_VAR_vault_password="+vaultPassword,
	), tf.env...)
	// The login the attributed provider uses, made as the page says.
	runShell(t, tf.dir, tf.env, strings.Join(docBlocks(t, terraformDoc, "", "shell"), ""))

	hcl := strings.Join(docBlocks(t, terraformDoc, "", "hcl"), "\n")
	region := regexp.MustCompile(`(?m)^(\s*)region(\s*)= "us"$`)
	if len(region.FindAllString(hcl, -1)) != 1 {
		t.Fatalf("the page's config should write region = \"us\" exactly once")
	}
	hcl = region.ReplaceAllString(hcl, `${1}auth_url${2}= "`+url+`"`)
	tf.write(hcl)

	tf.run("init")
	tf.run("apply", "-auto-approve")
	t.Logf("the first apply minted %d tokens", len(fake.Tokens()))
	role := readData(t, vault, "beyondidentity/roles/scim-sync")
	if role["ttl"] != json.Number("86400") || role["max_ttl"] != json.Number("259200") || role["description"] != "nightly SCIM export" {
		t.Fatalf("the role as applied: %v", role)
	}
	if attributed := readData(t, vault, "beyondidentity/roles/attributed"); attributed["max_ttl"] != json.Number("0") {
		t.Fatalf("the attributed role as applied: %v", attributed)
	}
	staticID := readData(t, vault, "beyondidentity/static-roles/ci-export")["token_id"]
	staticToken := ""
	for _, token := range fake.Tokens() {
		if token.ID == staticID {
			staticToken = token.Value
		}
	}
	if staticToken == "" {
		t.Fatalf("the static role's token %v is not one the fake minted", staticID)
	}
	state, err := os.ReadFile(filepath.Join(tf.dir, "terraform.tfstate"))
	if err != nil || !strings.Contains(string(state), clientSecret) {
		t.Fatalf("the page says the client secret lands in the state; it does not (%v)", err)
	}

	minted := len(fake.Tokens())
	tf.planClean()
	ephemeral := fake.Tokens()[minted:]
	if len(ephemeral) != 2 {
		t.Fatalf("a plan minted %d tokens, want one per ephemeral read (2)", len(ephemeral))
	}
	tf.assertAttributed(vault, ephemeral)
	tf.assertLeasesEndWithProviderToken(vault, fake, ephemeral)

	// A changed field applies, and plans clean again.
	tf.edit(`description   = "nightly SCIM export"`, `description   = "nightly SCIM export, changed"`)
	tf.edit(`ttl           = 86400`, `ttl           = 43200`)
	minted = len(fake.Tokens())
	tf.run("apply", "-auto-approve")
	t.Logf("the apply of a change minted %d tokens", len(fake.Tokens())-minted)
	role = readData(t, vault, "beyondidentity/roles/scim-sync")
	if role["ttl"] != json.Number("43200") || role["description"] != "nightly SCIM export, changed" {
		t.Fatalf("the role after the change: %v", role)
	}
	tf.planClean()

	// One destroy: the static role (revoking its token), the roles, the
	// config, then the mount, which revokes the leases.
	minted = len(fake.Tokens())
	tf.run("destroy", "-auto-approve")
	t.Logf("destroy minted %d tokens", len(fake.Tokens())-minted)
	mounts, err := vault.Client.Sys().ListMounts()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mounts["beyondidentity/"]; ok {
		t.Fatal("the mount is still there after destroy")
	}
	if token, _ := fake.TokenByValue(staticToken); token.RevokedAt.IsZero() {
		t.Fatal("destroy did not revoke the static role's token")
	}
	eventually(t, 30*time.Second, "every token revoked after destroy", func() bool {
		for _, token := range fake.Tokens() {
			if fake.IsActive(token.Value) {
				return false
			}
		}
		return true
	})
}

// vaultPassword is the userpass password of the page's attributed
// provider: not a secret, but kept out of output like one.
const vaultPassword = "terraform-e2e-password-Never-Printed"

// tofu runs OpenTofu in a folder of its own, with the Vault provider
// installed from a filesystem mirror: nothing is fetched from a registry.
type tofu struct {
	t        *testing.T
	bin, dir string
	env      []string
}

// newTofu finds OpenTofu and the provider (TOFU_BIN and
// TOFU_VAULT_PROVIDER_BIN, as make e2e sets them, or else scripts/tofu.sh,
// which builds them once into the cache) and prepares a folder and a CLI
// configuration that installs the provider from a mirror holding it alone.
func newTofu(t *testing.T) *tofu {
	t.Helper()
	bin := toolPath(t, "TOFU_BIN")
	provider := toolPath(t, "TOFU_VAULT_PROVIDER_BIN", "vault-provider")
	root := t.TempDir()
	mirror := filepath.Join(root, "mirror")
	platform := runtime.GOOS + "_" + runtime.GOARCH
	pkg := filepath.Join(mirror, "registry.opentofu.org", "hashicorp", "vault", providerVersion, platform)
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(provider, filepath.Join(pkg, "terraform-provider-vault_v"+providerVersion)); err != nil {
		t.Fatal(err)
	}
	cliConfig := filepath.Join(root, "tofurc")
	config := fmt.Sprintf("provider_installation {\n  filesystem_mirror {\n    path    = %q\n    include = [\"registry.opentofu.org/hashicorp/vault\"]\n  }\n}\n", mirror)
	if err := os.WriteFile(cliConfig, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "config")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return &tofu{t: t, bin: bin, dir: dir, env: []string{
		"TF_CLI_CONFIG_FILE=" + cliConfig, "TF_IN_AUTOMATION=1", "TF_INPUT=0", "CHECKPOINT_DISABLE=1",
		"TF_DATA_DIR=" + filepath.Join(root, "data"), "HOME=" + root,
	}}
}

// toolPath is the path in the environment variable, or the one
// scripts/tofu.sh prints for args.
func toolPath(t *testing.T, variable string, args ...string) string {
	t.Helper()
	if path := os.Getenv(variable); path != "" {
		return path
	}
	script := exec.Command(filepath.Join(repoRoot, "scripts", "tofu.sh"), args...)
	script.Stderr = os.Stderr
	out, err := script.Output()
	if err != nil {
		t.Fatalf("%s is not set, and scripts/tofu.sh %s failed: %v", variable, strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// write makes hcl the configuration.
func (tf *tofu) write(hcl string) {
	tf.t.Helper()
	if err := os.WriteFile(filepath.Join(tf.dir, "main.tf"), []byte(hcl), 0o600); err != nil {
		tf.t.Fatal(err)
	}
}

// edit replaces one occurrence of old in the configuration by new.
func (tf *tofu) edit(old, new string) {
	tf.t.Helper()
	path := filepath.Join(tf.dir, "main.tf")
	data, err := os.ReadFile(path)
	if err != nil {
		tf.t.Fatal(err)
	}
	if strings.Count(string(data), old) != 1 {
		tf.t.Fatalf("the configuration should hold %q exactly once", old)
	}
	tf.write(strings.Replace(string(data), old, new, 1))
}

// run runs a tofu command without input, failing the test when it fails,
// and returns its output.
func (tf *tofu) run(args ...string) string {
	tf.t.Helper()
	out, err := tf.exec(args...)
	if err != nil {
		tf.t.Fatalf("tofu %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// exec runs a tofu command without input and returns its output, scrubbed
// of secrets, and its error. The output must never show a secret.
func (tf *tofu) exec(args ...string) (string, error) {
	tf.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tf.bin, append(args[:1:1], append([]string{"-no-color"}, args[1:]...)...)...)
	cmd.Dir, cmd.Env = tf.dir, tf.env
	out, err := cmd.CombinedOutput()
	text := string(out)
	if strings.Contains(text, clientSecret) || strings.Contains(text, vaultPassword) {
		tf.t.Errorf("tofu %s printed a secret", args[0])
	}
	if jwtShaped.MatchString(text) {
		tf.t.Errorf("tofu %s printed something shaped like a token", args[0])
	}
	return strings.ReplaceAll(redactSecrets(text), vaultPassword, "[password]"), err
}

// planClean checks that a plan finds nothing to change: exit status 0 of
// -detailed-exitcode (2 would mean changes).
func (tf *tofu) planClean() {
	tf.t.Helper()
	out, err := tf.exec("plan", "-detailed-exitcode")
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 2 {
		tf.t.Fatalf("the plan after apply is not clean:\n%s", out)
	}
	if err != nil {
		tf.t.Fatalf("tofu plan: %v\n%s", err, out)
	}
}

// assertAttributed checks that one of the plan's tokens was read through
// the userpass login, and names its entity in bi_custom.
func (tf *tofu) assertAttributed(vault *vaulttest.Server, tokens []fakebi.Token) {
	tf.t.Helper()
	for _, token := range tokens {
		entityID, _ := token.CustomClaims["vault_entity"].(string)
		if entityID == "" {
			continue
		}
		entity := readData(tf.t, vault, "identity/entity/id/"+entityID)
		aliases, _ := entity["aliases"].([]any)
		if len(aliases) != 1 || aliases[0].(map[string]any)["name"] != "terraform" {
			tf.t.Fatalf("the attributed token names entity %s, whose aliases are %v: want the userpass login terraform", entityID, aliases)
		}
		return
	}
	tf.t.Fatal("no token of the plan carries a vault_entity claim")
}

// assertLeasesEndWithProviderToken checks what the page says of the
// ephemeral reads' leases: they outlive the run; each run's requests go
// through a child token of childTokenTTL seconds, not renewable; and
// revoking those tokens, as their expiry would, revokes the leases' tokens
// at Beyond Identity.
func (tf *tofu) assertLeasesEndWithProviderToken(vault *vaulttest.Server, fake *fakebi.Server, tokens []fakebi.Token) {
	tf.t.Helper()
	for _, token := range tokens {
		if !fake.IsActive(token.Value) {
			tf.t.Fatalf("token %s of the plan died with the run; the page says its lease outlives it", token.ID)
		}
	}
	list, err := vault.Client.Logical().List("auth/token/accessors")
	if err != nil || list == nil {
		tf.t.Fatalf("listing token accessors: %v", err)
	}
	children := 0
	keys, _ := list.Data["keys"].([]any)
	for _, key := range keys {
		info, err := vault.Client.Auth().Token().LookupAccessor(fmt.Sprint(key))
		if err != nil || info.Data["display_name"] != "token-terraform" {
			continue
		}
		children++
		if info.Data["creation_ttl"] != json.Number(fmt.Sprint(childTokenTTL)) ||
			info.Data["explicit_max_ttl"] != json.Number(fmt.Sprint(childTokenTTL)) || info.Data["renewable"] != false {
			tf.t.Fatalf("the provider's child token: creation_ttl %v, explicit_max_ttl %v, renewable %v; want %d, %d, false",
				info.Data["creation_ttl"], info.Data["explicit_max_ttl"], info.Data["renewable"], childTokenTTL, childTokenTTL)
		}
		if err := vault.Client.Auth().Token().RevokeAccessor(fmt.Sprint(key)); err != nil {
			tf.t.Fatalf("revoking the provider's child token: %v", err)
		}
	}
	if children == 0 {
		tf.t.Fatal("found no child token of the provider (display name token-terraform)")
	}
	eventually(tf.t, 30*time.Second, "the ephemeral reads' tokens revoked with the provider's tokens", func() bool {
		for _, token := range tokens {
			if fake.IsActive(token.Value) {
				return false
			}
		}
		return true
	})
}

// readData reads a path with the root token and returns its data.
func readData(t *testing.T, vault *vaulttest.Server, path string) map[string]any {
	t.Helper()
	secret, err := vault.Client.Logical().Read(path)
	if err != nil || secret == nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return secret.Data
}
