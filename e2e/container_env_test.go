//go:build e2e && linux

package e2e

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/dockertest"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/testutil"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// vaultUser is the user and group the containerized test runs Vault as, as
// production does: no passwd or group file names them, so the test adds
// no user to the machine. The engine's socket belongs to the group. Vault
// is also a member of the image's group (65532), as docs/release.md asks:
// under gVisor the plugin's socket stays in the plugin's own group, whatever
// the plugin's chown to Vault's group says.
var vaultUser = &syscall.Credential{Uid: 64500, Gid: 64500, Groups: []uint32{65532}}

// The two image versions: docs/release.md registers the first and upgrades
// to the second.
const (
	imageVersionA = "v0.1.0"
	imageVersionB = "v0.2.0"
)

// requireContainerTools skips the test, in one line that says how to run
// it, on a machine that cannot run a private Docker engine; under CI=true
// it fails instead.
func requireContainerTools(t *testing.T) {
	t.Helper()
	reason := dockertest.Missing()
	if reason == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI must run the containerized plugin, but %s (.ci/run installs Debian's docker.io and runsc as root)", reason)
	}
	t.Skipf("needs a private Docker engine with gVisor, but %s: run it as root with Debian's docker.io and runsc (apt-get install docker.io runsc), make e2e-container", reason)
}

// containerWorld is the containerized test's world: a private Docker
// engine, the fake Beyond Identity serving HTTPS inside the engine's
// network namespace, the two images' archives, and a Vault run as a
// non-root user that starts the plugin's containers through the engine.
type containerWorld struct {
	t       *testing.T
	engine  *dockertest.Engine
	fake    *fakebi.Server
	authURL string
	caPEM   string
	// dir holds dist/, as the release leaves it, and is where the
	// page's commands run.
	dir   string
	vault *vaulttest.Server
}

func newContainerWorld(t *testing.T) *containerWorld {
	t.Helper()
	w := &containerWorld{t: t, dir: t.TempDir()}
	w.engine = dockertest.Start(t, dockertest.Options{SocketGID: int(vaultUser.Gid)})
	w.fake = newFake(defaultScopes...)
	// Tokens live an hour past what was asked: a revoked token is told
	// from one that expired.
	w.fake.AddApplication(suiteApplication(func(app *fakebi.Application) { app.Outlive = time.Hour }, defaultScopes...))
	w.serveFake()
	w.buildImages()
	w.startVault()
	return w
}

// serveFake serves the fake over HTTPS on the engine's bridge, inside its
// network namespace: the plugin's containers reach it there, and nothing
// is sent anywhere else. The certificate names the bridge's address, and
// the plugin trusts it through the config's ca_cert.
func (w *containerWorld) serveFake() {
	w.t.Helper()
	cert, caPEM, err := testutil.SelfSignedCert(dockertest.Gateway)
	if err != nil {
		w.t.Fatal(err)
	}
	listener, err := w.engine.Listen(dockertest.Gateway + ":0")
	if err != nil {
		w.t.Fatal(err)
	}
	server := &http.Server{Handler: w.fake, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = server.ServeTLS(listener, "", "") }()
	w.t.Cleanup(func() { _ = server.Close() })
	w.authURL, w.caPEM = "https://"+listener.Addr().String(), caPEM
}

// buildImages builds both versions' image archives with make image, as an
// operator would, into dist/, and writes the SHA256SUMS lines the release
// would list for their configs.
func (w *containerWorld) buildImages() {
	w.t.Helper()
	dist := filepath.Join(w.dir, "dist")
	var sums strings.Builder
	for _, version := range []string{imageVersionA, imageVersionB} {
		cmd := exec.Command("make", "--no-print-directory", "image", "VERSION="+version, "LOAD=0")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "OUT="+dist)
		if out, err := cmd.CombinedOutput(); err != nil {
			w.t.Fatalf("make image VERSION=%s: %v\n%s", version, err, out)
		}
		config := fmt.Sprintf("%s_%s_linux_amd64.image.json", pluginName, strings.TrimPrefix(version, "v"))
		data, err := os.ReadFile(filepath.Join(dist, config))
		if err != nil {
			w.t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), config)
	}
	if err := os.WriteFile(filepath.Join(dist, "SHA256SUMS"), []byte(sums.String()), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// startVault starts a dev Vault as vaultUser, which reaches the engine
// through DOCKER_HOST and keeps the plugin's sockets in a folder of its
// own. Its folder is outside the test's (closed to other users).
func (w *containerWorld) startVault() {
	w.t.Helper()
	dir, err := os.MkdirTemp("", "bi-container-vault-")
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		w.t.Fatal(err)
	}
	tmp := filepath.Join(dir, "plugin-tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		w.t.Fatal(err)
	}
	opts := vaultOptions(vaulttest.Dev)
	opts.Plugin = vaulttest.Plugin{Name: pluginName, Version: imageVersionA}
	opts.User = vaultUser
	opts.Env = append(w.engine.Env(), "VAULT_PLUGIN_TMPDIR="+tmp)
	w.vault = vaulttest.Start(w.t, dir, opts)
	w.t.Cleanup(func() { checkVaultLog(w.t, w.vault.LogText(), []string{clientSecret}, w.fake.Tokens()) })
}

// runDocs runs the shell blocks under heading in docs/release.md, as
// printed, in the world's folder, with vault and docker reaching the
// world's Vault and engine.
func (w *containerWorld) runDocs(heading string) string {
	w.t.Helper()
	path := w.t.TempDir()
	if err := os.Symlink(vaultBin, filepath.Join(path, "vault")); err != nil {
		w.t.Fatal(err)
	}
	env := vaulttest.Environ(append(w.engine.Env(),
		"PATH="+path+string(os.PathListSeparator)+os.Getenv("PATH"),
		"VAULT_ADDR="+w.vault.URL(), "VAULT_TOKEN="+w.vault.RootToken)...)
	return runShell(w.t, w.dir, env, strings.Join(docBlocks(w.t, "docs/release.md", heading, "shell"), ""))
}

func (w *containerWorld) write(path string, data map[string]any) *api.Secret {
	w.t.Helper()
	secret, err := w.vault.Client.Logical().Write(path, data)
	if err != nil {
		w.t.Fatalf("write %s: %s", path, redactSecrets(err.Error()))
	}
	return secret
}

// issue reads creds of role and checks the fake minted the token.
func (w *containerWorld) issue(role string) *api.Secret {
	w.t.Helper()
	secret, err := w.vault.Client.Logical().Read("beyondidentity/creds/" + role)
	if err != nil || secret == nil || secret.LeaseID == "" {
		w.t.Fatalf("creds/%s: %v", role, redactErr(err))
	}
	if _, ok := w.fake.TokenByValue(accessToken(secret)); !ok {
		w.t.Fatalf("creds/%s returned a token the fake never minted", role)
	}
	return secret
}

// renew renews a lease, retrying for a while: after its container is
// killed or replaced, the plugin's first answers may fail until Vault has
// started it again.
func (w *containerWorld) renew(secret *api.Secret) {
	w.t.Helper()
	var err error
	eventually(w.t, readyTimeout, "a renewal of "+secret.LeaseID, func() bool {
		_, err = w.vault.Client.Sys().Renew(secret.LeaseID, 0)
		return err == nil
	})
}

// revoke revokes a lease synchronously and checks that the fake revoked
// its token before the token's own end.
func (w *containerWorld) revoke(secret *api.Secret) {
	w.t.Helper()
	if err := w.vault.Client.Sys().RevokeWithOptions(&api.RevokeOptions{LeaseID: secret.LeaseID, Sync: true}); err != nil {
		w.t.Fatalf("revoking %s: %s", secret.LeaseID, redactErr(err))
	}
	if !w.revokedUpstream(accessToken(secret)) {
		w.t.Fatalf("the fake never saw the revocation of lease %s's token", secret.LeaseID)
	}
}

// revokedUpstream reports whether the fake revoked a token before its end.
func (w *containerWorld) revokedUpstream(value string) bool {
	token, ok := w.fake.TokenByValue(value)
	return ok && !token.RevokedAt.IsZero() && token.RevokedAt.Before(token.ExpiresAt)
}

// pluginContainer is the engine's one running container, the plugin's, as
// docker inspect shows it.
type pluginContainer struct {
	ID     string `json:"Id"`
	Image  string `json:"Image"`
	Config struct {
		User   string            `json:"User"`
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
	HostConfig struct {
		Runtime  string   `json:"Runtime"`
		Memory   int64    `json:"Memory"`
		NanoCpus int64    `json:"NanoCpus"`
		GroupAdd []string `json:"GroupAdd"`
	} `json:"HostConfig"`
}

// runningPlugin waits until exactly one container runs, other than the
// one whose ID is not (a container killed or replaced), and returns it.
func (w *containerWorld) runningPlugin(not string) pluginContainer {
	w.t.Helper()
	var found pluginContainer
	var last error
	eventually(w.t, readyTimeout, "the plugin's container", func() bool {
		out, err := w.engine.Docker("ps", "-q", "--no-trunc")
		if err != nil {
			last = err
			return false
		}
		ids := strings.Fields(out)
		if len(ids) != 1 || ids[0] == not {
			last = fmt.Errorf("running containers: %v", ids)
			return false
		}
		out, err = w.engine.Docker("inspect", ids[0])
		var all []pluginContainer
		if err == nil {
			err = json.Unmarshal([]byte(out), &all)
		}
		if err != nil || len(all) != 1 {
			last = errors.Join(err, fmt.Errorf("inspect: %d containers", len(all)))
			return false
		}
		found = all[0]
		return true
	})
	if found.ID == "" {
		w.t.Fatalf("no plugin container: %v", last)
	}
	return found
}

// imageID is the ID Docker gives an image of the plugin's version.
func (w *containerWorld) imageID(version string) string {
	w.t.Helper()
	ref := pluginName + ":" + strings.TrimPrefix(version, "v")
	return strings.TrimSpace(w.engine.MustDocker("image", "inspect", "--format", "{{ .Id }}", ref))
}
