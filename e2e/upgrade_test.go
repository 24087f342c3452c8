//go:build e2e

package e2e

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// previousRelease is the commit of the release an upgrade starts from, and
// the versions the test gives it and the current tree.
const (
	previousRelease = "f1e1954"
	previousVersion = "v0.1.0"
	upgradeVersion  = "v0.2.0"
	upgradeDoc      = "docs/upgrade.md"
)

// TestUpgradeKeepsLiveState walks one Vault through the install and
// upgrade story as the pages print it: the README's install of the
// previous release, run in that release's source tree from the
// repository's history; then docs/upgrade.md's upgrade to the current
// tree, roll back, roll forward and removal of the previous version.
// Before the upgrade: leases, a static role, and a revocation Beyond
// Identity refused. After: the pending revocation completes once Beyond
// Identity is back, the leases renew and revoke, and the static role
// serves the same token, rotates, and revokes every token when deleted.
func TestUpgradeKeepsLiveState(t *testing.T) {
	previous := previousReleaseSource(t)
	work := t.TempDir() // the operator's folder: the new release in bin/
	if err := os.Mkdir(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := buildPluginFrom(repoRoot, filepath.Join(work, "bin", pluginName), upgradeVersion); err != nil {
		t.Fatalf("building the current tree: %v", err)
	}

	fake := newFake(defaultScopes...)
	e := &env{t: t, fake: fake, url: newLoopbackServer(t, fake)}
	t.Cleanup(e.assertVaultLogClean)
	opts := vaultOptions(vaulttest.File)
	opts.Plugin = vaulttest.Plugin{Name: pluginName} // an empty plugin directory: the README installs it
	e.vault = vaulttest.Start(t, t.TempDir(), opts)
	install := strings.Join(docBlocks(t, "README.md", "## Install it in your Vault", "shell"), "")
	if out := e.upgradeShell(previous)(install); !strings.Contains(out, previousVersion) {
		t.Fatalf("the README's install should show the version it registered, %s:\n%s", previousVersion, redactSecrets(out))
	}
	e.assertRunning(previousVersion)
	// Installed as the upgrade installs the next version: under a file name
	// of its own, which an upgrade leaves in place for the roll back.
	versioned := pluginName + "-" + previousVersion
	command := strings.TrimSpace(e.vault.MustCLI("plugin", "info", "-field=command", "-version="+previousVersion, "secret", pluginName))
	if _, err := os.Stat(filepath.Join(e.vault.PluginDir(), versioned)); err != nil || command != versioned {
		t.Fatalf("the README's install registered %q (%v); want the file %s", command, err, versioned)
	}
	e.configure()
	e.tokensOutliveTheirLeases() // a token dead at the end was revoked, not expired

	// The live state of the previous release.
	e.write("beyondidentity/roles/r", map[string]any{"scopes": "identities:read", "ttl": "1h", "max_ttl": "2h"})
	renewed, revoked, refused := e.issue("r"), e.issue("r"), e.issue("r")
	e.write("beyondidentity/static-roles/ci", map[string]any{"scopes": "identities:read", "rotation_period": "1h", "grace_period": "10m"})
	first, _ := e.staticCreds("ci")
	e.fake.SetFault(fakebi.OpRevoke, fakebi.Fault{Status: 503, Body: `{"code":"service_unavailable","message":"maintenance"}`})
	if _, err := e.vault.CLI("lease", "revoke", "-sync", refused.LeaseID); err == nil {
		t.Fatal("the revocation succeeded while Beyond Identity refused it")
	}
	if pending := e.pendingRevocations(); len(pending) != 1 {
		t.Fatalf("revocations/ lists %v before the upgrade, want the refused one", pending)
	}
	e.assertRunning(previousVersion)

	shell := e.upgradeShell(work)
	upgrade := strings.Join(docBlocks(t, upgradeDoc, "## Upgrade a mount", "shell"), "")
	if out := shell(upgrade); !strings.HasSuffix(strings.TrimSpace(out), upgradeVersion) {
		t.Fatalf("the upgrade's last command should print %s:\n%s", upgradeVersion, redactSecrets(out))
	}
	e.assertRunning(upgradeVersion)
	if runtime.GOOS == "linux" {
		// The page's reason to rename: a running plugin's file cannot be
		// opened for writing, so a copy over it fails.
		running := filepath.Join(e.vault.PluginDir(), pluginName+"-"+upgradeVersion)
		f, err := os.OpenFile(running, os.O_WRONLY, 0)
		if err == nil {
			f.Close()
		}
		if !errors.Is(err, syscall.ETXTBSY) {
			t.Fatalf("opening the running plugin for writing: %v, want text file busy", err)
		}
	}

	// The refused revocation is still pending, and completes once Beyond
	// Identity is back; Vault's own retry of the lease then succeeds.
	if pending := e.pendingRevocations(); len(pending) != 1 {
		t.Fatalf("revocations/ lists %v after the upgrade, want the refused one kept", pending)
	}
	e.fake.ClearFaults()
	recovered := time.Now()
	eventually(t, 2*time.Minute, "the pending revocation completed by the new version", func() bool {
		return len(e.pendingRevocations()) == 0 && e.revokedNotExpired(accessToken(refused))
	})
	t.Logf("the new version completed the pending revocation %s after Beyond Identity recovered", time.Since(recovered).Round(time.Second))
	if out, err := e.vault.CLI("lease", "revoke", "-sync", refused.LeaseID); err != nil {
		t.Fatalf("revoking the refused lease after its token was revoked: %v %s", err, redactSecrets(out))
	}

	// The leases of the previous release renew and revoke.
	mints := e.countOps(fakebi.OpToken)
	renewal, err := e.vault.Client.Sys().Renew(renewed.LeaseID, 3600)
	if err != nil || renewal.LeaseDuration <= 0 {
		t.Fatalf("renewing a lease of the previous release: %v, %v", renewal, err)
	}
	for _, lease := range []string{renewed.LeaseID, revoked.LeaseID} {
		e.vault.MustCLI("lease", "revoke", "-sync", lease)
	}
	if !e.revokedNotExpired(accessToken(renewed)) || !e.revokedNotExpired(accessToken(revoked)) {
		t.Fatal("a lease of the previous release was revoked in Vault but its token still works")
	}

	// The static role serves the token of the previous release, and rotates.
	if current, _ := e.staticCreds("ci"); current != first {
		t.Fatal("the static role serves another token after the upgrade")
	}
	e.write("beyondidentity/rotate-role/ci", nil)
	second, _ := e.staticCreds("ci")
	if second == first || !e.fake.IsActive(first) {
		t.Fatal("rotate-role after the upgrade: want a new token, and the old one in its grace")
	}
	if got := e.countOps(fakebi.OpToken); got != mints+1 {
		t.Fatalf("%d mints after the upgrade, want the rotation's only", got-mints)
	}

	// Roll back, then forward again, as the page says.
	vars := docBlocks(t, upgradeDoc, "## Upgrade a mount", "shell")[0]
	if out := shell(vars + strings.Join(docBlocks(t, upgradeDoc, "## Roll back", "shell"), "")); !strings.HasSuffix(strings.TrimSpace(out), previousVersion) {
		t.Fatalf("the roll back's last command should print %s:\n%s", previousVersion, redactSecrets(out))
	}
	e.assertRunning(previousVersion)
	if current, _ := e.staticCreds("ci"); current != second {
		t.Fatal("the rolled back version serves another token")
	}
	e.issue("r")
	shell(upgrade)
	e.assertRunning(upgradeVersion)

	// Deleting the static role revokes every token it minted.
	e.vault.MustCLI("delete", "beyondidentity/static-roles/ci")
	for i, token := range []string{first, second} {
		if !e.revokedNotExpired(token) {
			t.Fatalf("token %d of the static role still works after the role was deleted", i+1)
		}
	}

	// The previous version goes; the mount does not need it.
	removal := vars + strings.Join(docBlocks(t, upgradeDoc, "## Remove the previous version", "shell"), "")
	if out := shell(removal); !strings.Contains(out, "no mount runs "+previousVersion) {
		t.Fatalf("the check before the removal should find no mount on %s:\n%s", previousVersion, redactSecrets(out))
	}
	if _, err := os.Stat(filepath.Join(e.vault.PluginDir(), pluginName+"-"+previousVersion)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the previous release's binary is still in the plugin directory: %v", err)
	}
	if out, err := e.vault.CLI("plugin", "info", "-version="+previousVersion, "secret", pluginName); err == nil {
		t.Fatalf("the previous version is still in the catalog:\n%s", out)
	}
	e.vault.MustCLI("plugin", "reload", "-type=secret", "-plugin="+pluginName)
	e.assertRunning(upgradeVersion)
	e.issue("r")
}

// assertRunning checks the version the mount runs, as Vault reports it.
func (e *env) assertRunning(version string) {
	e.t.Helper()
	mount := e.read("sys/mounts/beyondidentity")
	if got := mount.Data["running_plugin_version"]; got != version {
		e.t.Fatalf("the mount runs %v, want %s", got, version)
	}
}

// upgradeShell returns a runner of the install and upgrade commands in the
// operator's folder work, against the test's Vault and its plugin
// directory, with the suite's Vault as vault.
func (e *env) upgradeShell(work string) func(script string) string {
	env := vaulttest.Environ(
		"PATH="+toolsOnPath(e.t)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"VAULT_ADDR="+e.vault.URL(), "VAULT_TOKEN="+e.vault.RootToken,
		"VAULT_PLUGIN_DIR="+e.vault.PluginDir(),
	)
	return func(script string) string {
		e.t.Helper()
		return runShell(e.t, work, env, script)
	}
}

// previousReleaseSource extracts the source tree of the previous release
// from the repository's history into a folder of its own, and returns it.
// A clone without that commit (a shallow one) skips the test, except under
// CI=true, where CI's full clone must have it: there it fails.
func previousReleaseSource(t *testing.T) string {
	t.Helper()
	if err := exec.Command("git", "-C", repoRoot, "cat-file", "-e", previousRelease+"^{commit}").Run(); err != nil {
		const why = "the previous release, commit " + previousRelease + ", is not in this clone's history " +
			"(a shallow clone? run git fetch --unshallow); the upgrade test builds it from there"
		if os.Getenv("CI") == "true" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	src := t.TempDir()
	archive := exec.Command("git", "-C", repoRoot, "archive", "--format=tar", previousRelease)
	stdout, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	archive.Stderr = os.Stderr
	if err := archive.Start(); err != nil {
		t.Fatal(err)
	}
	extractErr := untar(stdout, src)
	if err := archive.Wait(); err != nil || extractErr != nil {
		t.Fatalf("extracting %s: git archive: %v; extraction: %v", previousRelease, err, extractErr)
	}
	return src
}

// untar writes the regular files and folders of a tar stream under dir.
func untar(r io.Reader, dir string) error {
	archive := tar.NewReader(r)
	for {
		header, err := archive.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		path := filepath.Join(dir, filepath.FromSlash(header.Name))
		if !strings.HasPrefix(path, filepath.Clean(dir)+string(os.PathSeparator)) {
			return errors.New("the archive names a path outside its folder: " + header.Name)
		}
		switch header.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := writeFile(path, archive, os.FileMode(header.Mode)&0o755|0o600); err != nil {
				return err
			}
		}
	}
}

func writeFile(path string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
