// Command vaultfetch does the steps of scripts/vault.sh that a fresh machine
// may have no tool for. It is built from this repository with the Go
// toolchain, the one tool every machine that builds the plugin has: unzip
// and python3 are not installed everywhere, and curl or wget not always.
//
//	vaultfetch get [-connect-timeout 3s] [-timeout 15m] URL FILE
//	vaultfetch unzip ZIP NAME FILE
//	vaultfetch sha256 FILE
//
// get downloads URL into FILE and fails on any status but 200. unzip writes
// the one regular file called NAME at the top of ZIP into FILE (created, so
// never overwritten), checking its CRC-32 as it goes; anything else in the
// archive is left alone. sha256 prints the file's SHA-256 in hex.
//
// It verifies nothing on its own: vault.sh checks the archive's SHA-256 (and
// signature) before it asks for the binary to be unpacked.
package main

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// maxBinarySize bounds what unzip writes: Vault's binary is about 500 MB.
const maxBinarySize = 2 << 30

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "vaultfetch:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: vaultfetch get|unzip|sha256 and their arguments")
	}
	switch args[0] {
	case "get":
		return runGet(args[1:])
	case "unzip":
		if len(args) != 4 {
			return errors.New("usage: vaultfetch unzip ZIP NAME FILE")
		}
		return extractFile(args[1], args[2], args[3])
	case "sha256":
		if len(args) != 2 {
			return errors.New("usage: vaultfetch sha256 FILE")
		}
		sum, err := fileSHA256(args[1])
		if err != nil {
			return err
		}
		fmt.Println(sum)
		return nil
	default:
		return fmt.Errorf("unknown command %q: want get, unzip or sha256", args[0])
	}
}

func runGet(args []string) error {
	flags := flag.NewFlagSet("get", flag.ContinueOnError)
	connect := flags.Duration("connect-timeout", 3*time.Second, "bound on resolving and connecting, so an offline machine fails fast")
	total := flags.Duration("timeout", 15*time.Minute, "bound on the whole download")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() != 2 {
		return errors.New("usage: vaultfetch get [-connect-timeout D] [-timeout D] URL FILE")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *total)
	defer cancel()
	return download(ctx, newClient(*connect), flags.Arg(0), flags.Arg(1))
}

// newClient returns a client whose connection steps are each bounded by
// connect, while the body may take as long as the caller's context allows.
func newClient(connect time.Duration) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = (&net.Dialer{Timeout: connect}).DialContext
	transport.TLSHandshakeTimeout = connect
	transport.ResponseHeaderTimeout = 30 * time.Second
	return &http.Client{Transport: transport}
}

// download writes the body of a 200 answer to url into path.
func download(ctx context.Context, client *http.Client, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, resp.Body)
	if closeErr := out.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// extractFile writes the regular file called name at the top of the zip
// archive into path, which must not exist yet.
func extractFile(archive, name, path string) error {
	r, err := zip.OpenReader(archive)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, f := range r.File {
		if f.Name != name {
			continue
		}
		if !f.Mode().IsRegular() {
			return fmt.Errorf("%s: %s is not a regular file (%s)", archive, name, f.Mode())
		}
		return writeEntry(f, path)
	}
	return fmt.Errorf("%s holds no file called %s", archive, name)
}

func writeEntry(f *zip.File, path string) error {
	in, err := f.Open()
	if err != nil {
		return err
	}
	defer in.Close()
	// The entry is the Vault binary: it must be executable by its owner.
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o700) //nolint:gosec // see above
	if err != nil {
		return err
	}
	// Reading to the end makes archive/zip check the entry's CRC-32.
	n, err := io.Copy(out, io.LimitReader(in, maxBinarySize+1))
	if err == nil && n > maxBinarySize {
		err = fmt.Errorf("%s is larger than %d bytes", f.Name, maxBinarySize)
	}
	if closeErr := out.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
