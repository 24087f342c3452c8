package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// The image's fixed content. The user is nobody's on most systems (65532,
// distroless's nonroot): the plugin needs no root, and Vault adds the
// group of its plugin socket to the container. The entry point is where
// the Dockerfile this replaced put the binary.
const (
	imageUser  = "65532:65532"
	binaryDir  = "usr/local/bin/"
	entryPoint = "/" + binaryDir + "vault-plugin-secrets-beyondidentity"
)

// Media types of the OCI image layout.
const (
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// spec is what an image is made of: nothing else goes in.
type spec struct {
	Name, Tag, Arch string
	Created         time.Time
	Binary          []byte
}

// blob is a piece of content named by its digest.
type blob struct {
	data   []byte
	digest string // sha256:<hex>
}

func newBlob(data []byte) blob {
	sum := sha256.Sum256(data)
	return blob{data: data, digest: "sha256:" + hex.EncodeToString(sum[:])}
}

// hexDigest is the digest without its algorithm.
func (b blob) hexDigest() string { return b.digest[len("sha256:"):] }

func (b blob) descriptor(mediaType string) descriptor {
	return descriptor{MediaType: mediaType, Digest: b.digest, Size: int64(len(b.data))}
}

// image is a built image: its layer, config and OCI manifest.
type image struct {
	spec
	layer, config, manifest blob
}

// newImage builds the image's blobs. Every byte follows from the spec:
// encoding/json writes struct fields in their order and map keys sorted.
func newImage(s spec) (*image, error) {
	platform, err := platformOf(s.Arch)
	if err != nil {
		return nil, err
	}
	layer, err := layerTar(s.Binary, s.Created)
	if err != nil {
		return nil, err
	}
	img := &image{spec: s, layer: newBlob(layer)}
	config, err := json.Marshal(imageConfig{
		Created:      s.Created.Format(time.RFC3339),
		Architecture: platform.Architecture,
		Variant:      platform.Variant,
		OS:           platform.OS,
		Config: runConfig{
			User:       imageUser,
			Entrypoint: []string{entryPoint},
			WorkingDir: "/",
			Labels: map[string]string{
				"org.opencontainers.image.title":   s.Name,
				"org.opencontainers.image.version": s.Tag,
			},
		},
		RootFS:  rootFS{Type: "layers", DiffIDs: []string{img.layer.digest}},
		History: []history{{Created: s.Created.Format(time.RFC3339), CreatedBy: "scripts/ociimage: the plugin's binary at " + entryPoint}},
	})
	if err != nil {
		return nil, err
	}
	img.config = newBlob(config)
	manifest, err := json.Marshal(ociManifest{
		SchemaVersion: 2,
		MediaType:     mediaManifest,
		Config:        img.config.descriptor(mediaConfig),
		Layers:        []descriptor{img.layer.descriptor(mediaLayer)},
	})
	if err != nil {
		return nil, err
	}
	img.manifest = newBlob(manifest)
	return img, nil
}

// ID is the image ID in hex, as Docker computes it: the SHA-256 of the
// image's config.
func (img *image) ID() string { return img.config.hexDigest() }

func platformOf(arch string) (platform, error) {
	switch arch {
	case "amd64":
		return platform{Architecture: "amd64", OS: "linux"}, nil
	case "arm64":
		return platform{Architecture: "arm64", OS: "linux", Variant: "v8"}, nil
	default:
		return platform{}, fmt.Errorf("architecture %q: want amd64 or arm64", arch)
	}
}

// layerTar is the image's one layer: the directories down to the binary,
// owned by root and read-only to everyone else, all dated created.
func layerTar(binary []byte, created time.Time) ([]byte, error) {
	var entries []tarEntry
	for _, dir := range []string{"usr/", "usr/local/", binaryDir} {
		entries = append(entries, tarEntry{name: dir, mode: 0o755, dir: true})
	}
	entries = append(entries, tarEntry{name: entryPoint[1:], mode: 0o755, data: binary})
	return writeTar(entries, created)
}

// archive is the image as `docker save` writes it: the OCI image layout,
// plus manifest.json, which names the same blobs for every Docker engine.
func (img *image) archive() ([]byte, error) {
	ref := img.Name + ":" + img.Tag
	dockerManifest, err := json.Marshal([]dockerManifestEntry{{
		Config:   "blobs/sha256/" + img.config.hexDigest(),
		RepoTags: []string{ref},
		Layers:   []string{"blobs/sha256/" + img.layer.hexDigest()},
	}})
	if err != nil {
		return nil, err
	}
	platform, err := platformOf(img.Arch)
	if err != nil {
		return nil, err
	}
	manifest := img.manifest.descriptor(mediaManifest)
	manifest.Platform = &platform
	manifest.Annotations = map[string]string{
		"io.containerd.image.name":          "docker.io/library/" + ref,
		"org.opencontainers.image.ref.name": img.Tag,
	}
	index, err := json.Marshal(ociIndex{SchemaVersion: 2, MediaType: mediaIndex, Manifests: []descriptor{manifest}})
	if err != nil {
		return nil, err
	}
	entries := []tarEntry{
		{name: "blobs/", mode: 0o755, dir: true},
		{name: "blobs/sha256/", mode: 0o755, dir: true},
	}
	for _, b := range []blob{img.config, img.layer, img.manifest} {
		entries = append(entries, tarEntry{name: "blobs/sha256/" + b.hexDigest(), mode: 0o644, data: b.data})
	}
	entries = append(entries,
		tarEntry{name: "index.json", mode: 0o644, data: index},
		tarEntry{name: "manifest.json", mode: 0o644, data: dockerManifest},
		tarEntry{name: "oci-layout", mode: 0o644, data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
	)
	return writeTar(entries, img.Created)
}

// tarEntry is a file or directory of a tar.
type tarEntry struct {
	name string
	mode int64
	dir  bool
	data []byte
}

// writeTar writes entries in their order, each owned by root (0:0, no
// names), dated created, with nothing of the machine that wrote them.
func writeTar(entries []tarEntry, created time.Time) ([]byte, error) {
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: created, Format: tar.FormatUSTAR, Typeflag: tar.TypeReg, Size: int64(len(e.data))}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := w.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("%s: %w", e.name, err)
		}
		if _, err := w.Write(e.data); err != nil {
			return nil, fmt.Errorf("%s: %w", e.name, err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
