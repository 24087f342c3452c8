package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var testDate = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// build runs the command as make image does and returns the archive's
// bytes and the printed ID.
func build(t *testing.T, arch string, binary []byte) ([]byte, string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "plugin")
	if err := os.WriteFile(bin, binary, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "image.tar")
	stdout := os.Stdout
	r, w, _ := os.Pipe()
	os.Stdout = w
	err := run([]string{"-binary", bin, "-arch", arch, "-ref", "plugin:1.2.3", "-created", testDate.Format(time.RFC3339), "-out", out, "-config", out + ".json"})
	w.Close()
	os.Stdout = stdout
	printed, _ := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	config, err := os.ReadFile(out + ".json")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(string(printed))
	if sum := sha256.Sum256(config); hex.EncodeToString(sum[:]) != id {
		t.Fatalf("printed ID %s is not the SHA-256 of the written config", id)
	}
	return data, id
}

// readTar maps each entry of a tar to its header and content.
func readTar(t *testing.T, data []byte) (map[string]*tar.Header, map[string][]byte, []string) {
	t.Helper()
	headers, contents := map[string]*tar.Header{}, map[string][]byte{}
	var order []string
	r := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			return headers, contents, order
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		headers[h.Name], contents[h.Name] = h, body
		order = append(order, h.Name)
	}
}

// TestSameInputSameImage: the archive, and so the ID, depends on the
// binary, the reference and the date only.
func TestSameInputSameImage(t *testing.T) {
	first, id1 := build(t, "amd64", []byte("binary"))
	second, id2 := build(t, "amd64", []byte("binary"))
	if !bytes.Equal(first, second) || id1 != id2 {
		t.Fatal("two builds of the same binary differ")
	}
	if _, other := build(t, "amd64", []byte("another binary")); other == id1 {
		t.Fatal("another binary gives the same image ID")
	}
	if _, arm := build(t, "arm64", []byte("binary")); arm == id1 {
		t.Fatal("arm64 gives the amd64 image's ID")
	}
}

// TestArchiveIsWhatDockerLoads: manifest.json names the config (named by
// its digest, which is the ID) and a layer whose digest is the config's
// diff_id; the layer holds the binary alone, executable, owned by root;
// the config runs it as a non-root user.
func TestArchiveIsWhatDockerLoads(t *testing.T) {
	data, id := build(t, "arm64", []byte("the plugin"))
	headers, files, _ := readTar(t, data)
	for name, h := range headers {
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(testDate) {
			t.Errorf("%s: owner %d:%d %q:%q, date %s; want 0:0, no names, %s", name, h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime, testDate)
		}
	}
	var manifest []dockerManifestEntry
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json: %v, %s", err, files["manifest.json"])
	}
	entry := manifest[0]
	if entry.Config != "blobs/sha256/"+id || len(entry.RepoTags) != 1 || entry.RepoTags[0] != "plugin:1.2.3" || len(entry.Layers) != 1 {
		t.Fatalf("manifest.json: %+v", entry)
	}
	var config imageConfig
	if err := json.Unmarshal(files[entry.Config], &config); err != nil {
		t.Fatal(err)
	}
	layer := files[entry.Layers[0]]
	sum := sha256.Sum256(layer)
	if len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != "sha256:"+hex.EncodeToString(sum[:]) || entry.Layers[0] != "blobs/sha256/"+hex.EncodeToString(sum[:]) {
		t.Fatalf("the layer's digest is not the config's diff_id: %+v", config.RootFS)
	}
	if config.Config.User != imageUser || strings.HasPrefix(config.Config.User, "0") || config.Architecture != "arm64" || config.Variant != "v8" || config.OS != "linux" {
		t.Fatalf("config: %+v", config)
	}
	layerHeaders, layerFiles, order := readTar(t, layer)
	if strings.Join(order, " ") != "usr/ usr/local/ usr/local/bin/ usr/local/bin/vault-plugin-secrets-beyondidentity" {
		t.Fatalf("the layer holds %v: want the binary and its folders alone (no shell, no package manager)", order)
	}
	bin := "usr/local/bin/vault-plugin-secrets-beyondidentity"
	if string(layerFiles[bin]) != "the plugin" || layerHeaders[bin].Mode != 0o755 || "/"+bin != config.Config.Entrypoint[0] {
		t.Fatalf("the binary: mode %o, entry point %v", layerHeaders[bin].Mode, config.Config.Entrypoint)
	}
	var index ociIndex
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v", err)
	}
	var manifestOCI ociManifest
	if err := json.Unmarshal(files["blobs/sha256/"+strings.TrimPrefix(index.Manifests[0].Digest, "sha256:")], &manifestOCI); err != nil {
		t.Fatal(err)
	}
	if manifestOCI.Config.Digest != "sha256:"+id {
		t.Fatalf("the OCI manifest names config %s, not the image's", manifestOCI.Config.Digest)
	}
}

func TestRefusesBadInput(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "plugin")
	if err := os.WriteFile(bin, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"-binary", bin, "-out", filepath.Join(t.TempDir(), "out.tar")}
	for name, extra := range map[string][]string{
		"arch":    {"-arch", "386", "-ref", "p:1", "-created", "2025-01-01T00:00:00Z"},
		"ref":     {"-arch", "amd64", "-ref", "p", "-created", "2025-01-01T00:00:00Z"},
		"created": {"-arch", "amd64", "-ref", "p:1", "-created", "yesterday"},
		"missing": {"-arch", "amd64"},
	} {
		if err := run(append(slices.Clone(base), extra...)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
