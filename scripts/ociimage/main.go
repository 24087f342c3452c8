// Command ociimage packs the plugin's linux binary into a container image
// archive that `docker load` takes, byte for byte the same on every machine
// for the same binary and date: scripts/image.sh (make image) and
// scripts/release.sh run it. The image has no base and one layer holding
// the binary alone; it runs as a non-root user, with no shell and no
// package manager. The plugin carries its own CA roots for when the system
// has none (golang.org/x/crypto/x509roots/fallback in its main).
//
//	ociimage -binary FILE -arch amd64|arm64 -ref NAME:TAG -created RFC3339 -out FILE [-config FILE]
//
// It prints the image ID in hex: the SHA-256 of the image's config, which
// is the ID Docker gives the loaded image and what `vault plugin register
// -sha256` takes. -config also writes that config, whose SHA-256 is the ID.
//
// Docker's own build is not used because its output differs between runs
// and machines (layer timestamps, build metadata), and a base image would
// need a registry. The archive holds both layouts Docker's `docker save`
// writes: manifest.json, which every Docker engine loads, and an OCI image
// layout (oci-layout, index.json, blobs/sha256/), which newer engines and
// other OCI tools read.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	flags := flag.NewFlagSet("ociimage", flag.ContinueOnError)
	binary := flags.String("binary", "", "the plugin's static linux binary")
	arch := flags.String("arch", "", "the binary's architecture: amd64 or arm64")
	ref := flags.String("ref", "", "the image's name and tag, NAME:TAG; Vault runs NAME:VERSION-without-its-v")
	created := flags.String("created", "", "the image's date, RFC 3339 (the release's SOURCE_DATE): every file and the config carry it")
	out := flags.String("out", "", "the image archive to write")
	configOut := flags.String("config", "", "optional: also write the image config here (its SHA-256 is the image ID)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *binary == "" || *arch == "" || *ref == "" || *created == "" || *out == "" || flags.NArg() != 0 {
		return errors.New("usage: ociimage -binary FILE -arch amd64|arm64 -ref NAME:TAG -created RFC3339 -out FILE [-config FILE]")
	}
	date, err := time.Parse(time.RFC3339, *created)
	if err != nil {
		return fmt.Errorf("-created: %w", err)
	}
	name, tag, ok := strings.Cut(*ref, ":")
	if !ok || name == "" || tag == "" {
		return fmt.Errorf("-ref %q: want NAME:TAG", *ref)
	}
	program, err := os.ReadFile(*binary)
	if err != nil {
		return err
	}
	img, err := newImage(spec{Name: name, Tag: tag, Arch: *arch, Created: date.UTC(), Binary: program})
	if err != nil {
		return err
	}
	archive, err := img.archive()
	if err != nil {
		return err
	}
	if err := writeFile(*out, archive); err != nil {
		return err
	}
	if *configOut != "" {
		if err := writeFile(*configOut, img.config.data); err != nil {
			return err
		}
	}
	fmt.Println(img.ID())
	return nil
}

// writeFile writes data to path through a temporary file beside it, so
// that an interrupted run never leaves half an archive under its name.
func writeFile(path string, data []byte) error {
	tmp := path + ".partial"
	// A release artifact: everyone may read it.
	if err := os.WriteFile(tmp, data, 0o644); err != nil { //nolint:gosec // G306: see above
		return err
	}
	return os.Rename(tmp, path)
}
