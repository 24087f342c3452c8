// Package scripts holds the tests of the shell scripts beside them.
package scripts

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	vaultVersion = "1.21.0"
	goodVault    = "#!/bin/sh\necho 'Vault v1.21.0 (fake release)'\n"
)

// releaseZip is the archive name vault.sh asks for on this machine.
var releaseZip = fmt.Sprintf("vault_%s_%s_%s.zip", vaultVersion, runtime.GOOS, runtime.GOARCH)

// releases is a fake HashiCorp release site that records what it was asked.
type releases struct {
	mu       sync.Mutex
	files    map[string][]byte
	requests []string
}

func (r *releases) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, req.URL.Path)
	body, ok := r.files[strings.TrimPrefix(req.URL.Path, "/vault/"+vaultVersion+"/")]
	if !ok {
		http.NotFound(w, req)
		return
	}
	_, _ = w.Write(body)
}

func (r *releases) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.requests...)
}

// fixture is one run's world: a release site, an empty cache, a PATH with
// no vault on it (but for bin, where a test may put one), and no way to
// fall through to the 20-minute build from source.
type fixture struct {
	t      *testing.T
	site   *releases
	url    string
	cache  string
	bin    string
	key    string
	extra  []string
	script string
}

func newFixture(t *testing.T, files map[string][]byte) *fixture {
	t.Helper()
	site := &releases{files: files}
	server := httptest.NewServer(site)
	t.Cleanup(server.Close)
	script, err := filepath.Abs("vault.sh")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, site: site, url: server.URL, cache: t.TempDir(), bin: t.TempDir(), script: script}
}

// cached is where vault.sh installs the pinned version.
func (f *fixture) cached() string {
	return filepath.Join(f.cache, "vault-plugin-secrets-beyondidentity", "vault-v"+vaultVersion)
}

// run runs vault.sh and returns its stdout and stderr.
func (f *fixture) run() (string, string, error) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", f.script)
	cmd.Env = append(environ(),
		"PATH="+f.bin+string(os.PathListSeparator)+pathWithoutVault(f.t),
		"XDG_CACHE_HOME="+f.cache,
		"GOCACHE="+goCache(f.t), // XDG_CACHE_HOME would move Go's build cache too
		"VAULT_RELEASES_URL="+f.url,
		"VAULT_NO_SOURCE_BUILD=1",
	)
	if f.key != "" {
		cmd.Env = append(cmd.Env, "VAULT_RELEASE_KEY="+f.key)
	}
	cmd.Env = append(cmd.Env, f.extra...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// environ is the test's environment without what steers vault.sh.
func environ() []string {
	var kept []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "PATH", "XDG_CACHE_HOME", "GOCACHE", "GNUPGHOME", "VAULT_BIN", "VAULT_RELEASES_URL",
			"VAULT_RELEASE_KEY", "VAULT_NO_SOURCE_BUILD":
			continue
		}
		kept = append(kept, kv)
	}
	return kept
}

// pathWithoutVault is PATH less any folder holding a vault, with Go's first.
func pathWithoutVault(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	dirs := []string{filepath.Dir(goBin)}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(dir, "vault")); err == nil {
			continue
		}
		dirs = append(dirs, dir)
	}
	return strings.Join(dirs, string(os.PathListSeparator))
}

var goCacheOnce = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	return strings.TrimSpace(string(out)), err
})

func goCache(t *testing.T) string {
	t.Helper()
	dir, err := goCacheOnce()
	if err != nil {
		t.Fatalf("go env GOCACHE: %v", err)
	}
	return dir
}

// zipOf returns a release archive holding script as "vault".
func zipOf(t *testing.T, script string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	header := &zip.FileHeader{Name: "vault", Method: zip.Deflate}
	header.SetMode(0o755)
	entry, err := w.CreateHeader(header)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := entry.Write([]byte(script)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sumOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// sumsFor is a SHA256SUMS file listing archive under this machine's name,
// beside another platform's line as HashiCorp's has.
func sumsFor(archive []byte) []byte {
	return []byte(fmt.Sprintf("%s  vault_%s_plan9_mips.zip\n%s  %s\n",
		strings.Repeat("0", 64), vaultVersion, sumOf(archive), releaseZip))
}

// tamperedVault is a "vault" that leaves marker behind if anything runs it.
func tamperedVault(marker string) string {
	return fmt.Sprintf("#!/bin/sh\ntouch '%s'\necho 'Vault v1.21.0 (tampered)'\n", marker)
}

// signer is a throwaway gpg key in a home of its own.
type signer struct {
	home string
	key  string // the armored public key, in a file
}

func hasGPG() bool {
	_, err := exec.LookPath("gpg")
	return err == nil
}

func newSigner(t *testing.T) *signer {
	t.Helper()
	// Short, since gpg-agent's socket lives in it.
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run() // best effort
		os.RemoveAll(home)
	})
	s := &signer{home: home, key: filepath.Join(home, "release-key.asc")}
	s.gpg(t, nil, "--quick-gen-key", "vault.sh test release key <test@example.invalid>", "ed25519", "sign", "1d")
	key := s.gpg(t, nil, "--armor", "--export")
	if err := os.WriteFile(s.key, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *signer) gpg(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("gpg", append([]string{"--batch", "--homedir", s.home, "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// sign returns a detached binary signature of data, like HashiCorp's .sig.
func (s *signer) sign(t *testing.T, data []byte) []byte {
	t.Helper()
	return s.gpg(t, data, "--detach-sign", "--output", "-")
}

// release is the files of a genuine release; with gpg, signed by s.
func release(t *testing.T, s *signer) map[string][]byte {
	t.Helper()
	archive := zipOf(t, goodVault)
	sums := sumsFor(archive)
	files := map[string][]byte{releaseZip: archive, "vault_" + vaultVersion + "_SHA256SUMS": sums}
	if s != nil {
		files["vault_"+vaultVersion+"_SHA256SUMS.sig"] = s.sign(t, sums)
	}
	return files
}

func TestVaultScript(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("vault.sh is a bash script")
	}
	var s *signer
	if hasGPG() {
		s = newSigner(t)
	} else {
		t.Log("gpg is not installed: the releases are served unsigned, as vault.sh then checks only the SHA-256")
	}
	newSite := func(t *testing.T, files map[string][]byte) *fixture {
		f := newFixture(t, files)
		if s != nil {
			f.key = s.key
		}
		return f
	}

	t.Run("downloads, verifies and installs the release", func(t *testing.T) {
		f := newSite(t, release(t, s))
		stdout, stderr, err := f.run()
		if err != nil {
			t.Fatalf("vault.sh failed: %v\n%s", err, stderr)
		}
		if stdout != f.cached()+"\n" {
			t.Fatalf("vault.sh printed %q, want the cached path %s\n%s", stdout, f.cached(), stderr)
		}
		assertInstalled(t, f.cached(), goodVault)
		if !strings.Contains(stderr, "SHA-256 of "+releaseZip+" matches") || !strings.Contains(stderr, "downloaded from "+f.url) {
			t.Errorf("vault.sh did not say what it checked and used:\n%s", stderr)
		}
		want := 2
		if s != nil {
			want = 3
			if !strings.Contains(stderr, "signature of vault_1.21.0_SHA256SUMS checked") {
				t.Errorf("vault.sh did not say it checked the signature:\n%s", stderr)
			}
		}
		if got := f.site.seen(); len(got) != want {
			t.Errorf("the release site saw %v, want %d requests", got, want)
		}
		assertNoLeftovers(t, f)

		// A second run finds it in the cache and downloads nothing.
		again, stderr, err := f.run()
		if err != nil || again != stdout || !strings.Contains(stderr, "cached by an earlier run") {
			t.Fatalf("second run: %v %q\n%s", err, again, stderr)
		}
		if got := f.site.seen(); len(got) != want {
			t.Errorf("the second run downloaded again: %v", got)
		}
	})

	t.Run("refuses a tampered archive and never runs it", func(t *testing.T) {
		marker := filepath.Join(t.TempDir(), "tampered-vault-ran")
		files := release(t, s)
		genuine := files[releaseZip]
		tampered := zipOf(t, tamperedVault(marker))
		files[releaseZip] = tampered
		f := newSite(t, files)

		stdout, stderr, err := f.run()
		if err == nil || stdout != "" {
			t.Fatalf("vault.sh accepted a tampered archive: %v %q\n%s", err, stdout, stderr)
		}
		for _, want := range []string{"REFUSED", releaseZip, "expected SHA-256 " + sumOf(genuine), "got " + sumOf(tampered), "nothing was installed"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("the refusal does not say %q:\n%s", want, stderr)
			}
		}
		assertRefused(t, f, marker)
	})

	t.Run("refuses a bad signature", func(t *testing.T) {
		if s == nil {
			t.Skip("gpg is not installed, so vault.sh checks no signature")
		}
		other := newSigner(t)
		tests := map[string]func(files map[string][]byte, sums []byte){
			// An attacker who swaps the archive and its SHA256SUMS line but
			// keeps the genuine signature, of the genuine SHA256SUMS.
			"of other content": func(files map[string][]byte, sums []byte) {},
			// Or who signs the swapped SHA256SUMS with a key of their own.
			"by another key": func(files map[string][]byte, sums []byte) {
				files["vault_"+vaultVersion+"_SHA256SUMS.sig"] = other.sign(t, sums)
			},
		}
		for name, tamper := range tests {
			t.Run(name, func(t *testing.T) {
				marker := filepath.Join(t.TempDir(), "tampered-vault-ran")
				files := release(t, s)
				archive := zipOf(t, tamperedVault(marker))
				sums := sumsFor(archive)
				files[releaseZip], files["vault_"+vaultVersion+"_SHA256SUMS"] = archive, sums
				tamper(files, sums)
				f := newSite(t, files)

				stdout, stderr, err := f.run()
				if err == nil || stdout != "" {
					t.Fatalf("vault.sh accepted a bad signature: %v %q\n%s", err, stdout, stderr)
				}
				if !strings.Contains(stderr, "REFUSED: vault_1.21.0_SHA256SUMS.sig is not a good signature") {
					t.Errorf("the refusal does not name the signature:\n%s", stderr)
				}
				assertRefused(t, f, marker)
			})
		}
	})

	t.Run("refuses the release key file when it is not HashiCorp's", func(t *testing.T) {
		if s == nil {
			t.Skip("gpg is not installed, so vault.sh checks no signature")
		}
		f := newSite(t, release(t, s))
		// The committed key's place, for a script copy whose key file is
		// the test's: vault.sh checks the fingerprint of its own key file.
		root := t.TempDir()
		copyFile(t, "vault.sh", filepath.Join(root, "scripts", "vault.sh"))
		copyFile(t, s.key, filepath.Join(root, "scripts", "hashicorp.asc"))
		f.key, f.script = "", filepath.Join(root, "scripts", "vault.sh")
		stdout, stderr, err := f.run()
		if err == nil || stdout != "" || !strings.Contains(stderr, "is not HashiCorp's release key C874011F0AB405110D02105534365D9472D7468F") {
			t.Fatalf("vault.sh accepted a key file that is not HashiCorp's: %v %q\n%s", err, stdout, stderr)
		}
		if _, err := os.Stat(f.cached()); err == nil {
			t.Fatal("something was installed")
		}
	})

	t.Run("the committed key is HashiCorp's release key", func(t *testing.T) {
		if s == nil {
			t.Skip("gpg is not installed")
		}
		home := t.TempDir()
		out, err := exec.Command("gpg", "--batch", "--homedir", home, "--with-colons", "--import-options", "show-only",
			"--import", "hashicorp.asc").Output()
		if err != nil {
			t.Fatalf("gpg cannot read scripts/hashicorp.asc: %v", err)
		}
		text := string(out)
		if !strings.Contains(text, "\nfpr:::::::::C874011F0AB405110D02105534365D9472D7468F:") ||
			!strings.Contains(text, "HashiCorp Security (hashicorp.com/security) <security@hashicorp.com>") {
			t.Fatalf("scripts/hashicorp.asc is not HashiCorp's release key:\n%s", text)
		}
	})

	t.Run("uses a supported vault on PATH without downloading", func(t *testing.T) {
		for _, version := range []string{"v1.21.0", "v1.16.0", "v1.16.0+ent", "v1.17.0-rc1", "v1.100.2", "v2.0.0"} {
			t.Run(version, func(t *testing.T) {
				f := newSite(t, release(t, s))
				onPath := fakeVault(t, f.bin, version)
				stdout, stderr, err := f.run()
				if err != nil || stdout != onPath+"\n" {
					t.Fatalf("vault.sh: %v %q, want %s\n%s", err, stdout, onPath, stderr)
				}
				if !strings.Contains(stderr, "on PATH; 1.16.0 or later is supported") {
					t.Errorf("vault.sh did not say why it used it:\n%s", stderr)
				}
				if got := f.site.seen(); len(got) != 0 {
					t.Errorf("vault.sh downloaded %v although a supported vault is on PATH", got)
				}
			})
		}
	})

	t.Run("skips an unsupported vault on PATH", func(t *testing.T) {
		for version, why := range map[string]string{
			"v1.15.6":     "is older than 1.16.0",
			"v1.9.10":     "is older than 1.16.0",
			"v1.16.0-rc1": "is older than 1.16.0",
			"v0.99.0+ent": "is older than 1.16.0",
			"":            "did not print a version",
		} {
			t.Run(version, func(t *testing.T) {
				f := newSite(t, release(t, s))
				onPath := fakeVault(t, f.bin, version)
				stdout, stderr, err := f.run()
				if err != nil || stdout != f.cached()+"\n" {
					t.Fatalf("vault.sh: %v %q, want the downloaded %s\n%s", err, stdout, f.cached(), stderr)
				}
				if !strings.Contains(stderr, "skipping "+onPath+" on PATH") || !strings.Contains(stderr, why) {
					t.Errorf("vault.sh did not say it skipped %s because it %s:\n%s", onPath, why, stderr)
				}
			})
		}
	})

	t.Run("VAULT_BIN comes first, whatever its version", func(t *testing.T) {
		f := newSite(t, release(t, s))
		old := fakeVault(t, f.bin, "v1.10.0")
		f.extra = []string{"VAULT_BIN=vault"}
		stdout, stderr, err := f.run()
		if err != nil || stdout != old+"\n" || !strings.Contains(stderr, "(VAULT_BIN;") {
			t.Fatalf("vault.sh: %v %q, want %s\n%s", err, stdout, old, stderr)
		}
		if got := f.site.seen(); len(got) != 0 {
			t.Errorf("vault.sh downloaded %v although VAULT_BIN is set", got)
		}
	})

	t.Run("offline, falls through to the build from source", func(t *testing.T) {
		f := newSite(t, release(t, s))
		f.url = closedURL(t)
		stdout, stderr, err := f.run()
		if err == nil || stdout != "" {
			t.Fatalf("vault.sh: %v %q\n%s", err, stdout, stderr)
		}
		for _, want := range []string{"could not download Vault v1.21.0 from " + f.url, "VAULT_NO_SOURCE_BUILD=1 forbids building it from source"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("vault.sh did not say %q:\n%s", want, stderr)
			}
		}
		assertNoLeftovers(t, f)
	})
}

// fakeVault puts a vault printing version (nothing when empty) in dir.
func fakeVault(t *testing.T, dir, version string) string {
	t.Helper()
	path := filepath.Join(dir, "vault")
	script := "#!/bin/sh\necho 'Vault " + version + " (0123456789abcdef), built 2025-10-01T00:00:00Z'\n"
	if version == "" {
		script = "#!/bin/sh\necho 'not a vault'\n"
	}
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// closedURL is the address of a port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	listener.Close()
	return "http://" + addr
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

func assertInstalled(t *testing.T, path, want string) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("nothing installed at %s: %v", path, err)
	}
	if info.Mode().Perm()&0o111 == 0 {
		t.Errorf("%s is not executable: %s", path, info.Mode())
	}
	if got, _ := os.ReadFile(path); string(got) != want {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
}

// assertRefused checks a refusal installed nothing, left nothing behind and
// never ran the tampered binary.
func assertRefused(t *testing.T, f *fixture, marker string) {
	t.Helper()
	if _, err := os.Stat(f.cached()); err == nil {
		t.Error("the refused binary was installed")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the tampered binary was run")
	}
	assertNoLeftovers(t, f)
}

// assertNoLeftovers checks the cache folder holds nothing but the binary.
func assertNoLeftovers(t *testing.T, f *fixture) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Dir(f.cached()))
	for _, entry := range entries {
		if entry.Name() != filepath.Base(f.cached()) {
			t.Errorf("vault.sh left %s in the cache folder", entry.Name())
		}
	}
}
