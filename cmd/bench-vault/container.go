//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/dockertest"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/testutil"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// The container setup's second mount and catalog entry: the same plugin,
// run by Vault in a container under gVisor. A catalog name of its own lets
// both entries carry the version the binary reports.
const (
	containerMount  = "beyondidentity-oci"
	containerPlugin = pluginName + "-oci"
)

// benchVaultUser runs the container setup's Vault, as production does
// (non-root), in the image's group as docs/release.md asks; the engine's
// socket belongs to its own group.
var benchVaultUser = &syscall.Credential{Uid: 64501, Gid: 64501, Groups: []uint32{65532}}

// measureContainer measures, in one dev Vault run as a non-root user, the
// same plugin binary as a process (mount beyondidentity) and packed into
// the plugin's image, run in a private Docker engine under gVisor's runsc
// (mount beyondidentity-oci), against one fake over HTTPS in both cases: on
// loopback for the process, on the engine's bridge for the container. The
// workloads take turns: creds and roles-read, on each mount.
func (s setup) measureContainer(ctx context.Context, r *runner, opts vaulttest.Options, warmup, d time.Duration, rounds int) measurement {
	if reason := dockertest.Missing(); reason != "" {
		r.Fatalf("the container setup runs a private Docker engine with gVisor, but %s: run it as root with Debian's docker.io and runsc", reason)
	}
	engine := dockertest.Start(r, dockertest.Options{SocketGID: int(benchVaultUser.Gid)})
	fake := s.newFake()
	cert, caPEM, err := testutil.SelfSignedCert("127.0.0.1", dockertest.Gateway)
	if err != nil {
		r.Fatalf("%v", err)
	}
	onLoopback, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.Fatalf("%v", err)
	}
	onBridge, err := engine.Listen(dockertest.Gateway + ":0")
	if err != nil {
		r.Fatalf("%v", err)
	}
	urls := map[string]string{mount: serveTLS(r, fake, onLoopback, cert), containerMount: serveTLS(r, fake, onBridge, cert)}
	imageID := loadImage(r, engine, opts.Plugin)

	dir, err := os.MkdirTemp("", "bench-vault-")
	if err != nil {
		r.Fatalf("%v", err)
	}
	r.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { //nolint:gosec // G302: Vault, run as another user, enters it
		r.Fatalf("%v", err)
	}
	tmp := filepath.Join(dir, "plugin-tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		r.Fatalf("%v", err)
	}
	opts.Storage, opts.User = vaulttest.Dev, benchVaultUser
	opts.Env = append(engine.Env(), "VAULT_PLUGIN_TMPDIR="+tmp)
	vault := vaulttest.Start(r, dir, opts)
	vault.RegisterAndMount(mount)
	vault.MustCLI("plugin", "register", "-sha256="+imageID, "-oci_image="+pluginName, "-version="+opts.Plugin.Version, "secret", containerPlugin)
	vault.MustCLI("secrets", "enable", "-path="+containerMount, "-max-lease-ttl=2160h", containerPlugin)
	client := loadClient(r, vault, s.readers)
	for _, path := range []string{mount, containerMount} {
		write(r, client, path+"/config", map[string]any{"tenant_id": tenantID, "realm_id": realmID, "application_id": applicationID,
			"client_id": clientID, "client_secret": clientSecret, "auth_url": urls[path], "ca_cert": caPEM})
		write(r, client, path+"/roles/"+role, map[string]any{"scopes": "identities:read", "ttl": "1h"})
	}

	m := measurement{setup: s}
	processCreds, processRoles := s.workloads(client)[0], s.workloads(client)[2]
	workloads := []workload{
		processCreds, {"creds-container", readCredsAt(client, containerMount, role)},
		processRoles, {"roles-read-container", readRoleAt(client, containerMount, role)},
	}
	m.takeTurns(ctx, fake, workloads, vault.PluginPath(), warmup, d, rounds)
	return m
}

// serveTLS serves handler over HTTPS on l until the run's step ends, and
// returns its URL.
func serveTLS(r *runner, handler http.Handler, l net.Listener, cert tls.Certificate) string {
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	go func() { _ = server.ServeTLS(l, "", "") }()
	r.Cleanup(func() { _ = server.Close() })
	return "https://" + l.Addr().String()
}

// loadImage packs the benchmark's plugin binary, the very one the process
// mount runs, into the plugin's image (as make image does), loads it into
// the engine, and returns its ID.
func loadImage(r *runner, engine *dockertest.Engine, plugin vaulttest.Plugin) string {
	archive := filepath.Join(engine.Dir, "image.tar")
	ref := pluginName + ":" + strings.TrimPrefix(plugin.Version, "v")
	cmd := exec.Command("go", "run", "./scripts/ociimage", "-binary", plugin.Bin, "-arch", runtime.GOARCH,
		"-ref", ref, "-created", "2000-01-01T00:00:00Z", "-out", archive)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		r.Fatalf("packing the image: %v", err)
	}
	engine.MustDocker("load", "-i", archive)
	return strings.TrimSpace(string(out))
}
