package main

import (
	"archive/zip"
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// entry is one member of a test archive.
type entry struct {
	name string
	mode os.FileMode
	body string
}

func writeZip(t *testing.T, entries ...entry) string {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		header := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		header.SetMode(e.mode)
		f, err := w.CreateHeader(header)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "archive.zip")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExtractFile(t *testing.T) {
	tests := map[string]struct {
		entries []entry
		wantErr string
	}{
		"the named file among others": {
			entries: []entry{{"LICENSE.txt", 0o644, "license"}, {"vault", 0o755, "binary"}},
		},
		"missing": {
			entries: []entry{{"LICENSE.txt", 0o644, "license"}},
			wantErr: "holds no file called vault",
		},
		"in a folder only": {
			entries: []entry{{"bin/vault", 0o755, "binary"}},
			wantErr: "holds no file called vault",
		},
		"a symlink": {
			entries: []entry{{"vault", os.ModeSymlink | 0o777, "/bin/sh"}},
			wantErr: "is not a regular file",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			archive := writeZip(t, tc.entries...)
			out := filepath.Join(t.TempDir(), "vault")
			err := extractFile(archive, "vault", out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("extractFile = %v, want an error containing %q", err, tc.wantErr)
				}
				if _, statErr := os.Stat(out); statErr == nil {
					t.Fatal("a refused extraction left a file behind")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(out); string(got) != "binary" {
				t.Fatalf("extracted %q, want %q", got, "binary")
			}
		})
	}
}

func TestExtractFileNeverOverwrites(t *testing.T) {
	archive := writeZip(t, entry{"vault", 0o755, "binary"})
	out := filepath.Join(t.TempDir(), "vault")
	if err := os.WriteFile(out, []byte("already here"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := extractFile(archive, "vault", out); err == nil {
		t.Fatal("extractFile overwrote an existing file")
	}
	if got, _ := os.ReadFile(out); string(got) != "already here" {
		t.Fatalf("the existing file now holds %q", got)
	}
}

func TestExtractFileRejectsCorruptEntry(t *testing.T) {
	archive := writeZip(t, entry{"vault", 0o755, strings.Repeat("vault binary ", 100)})
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte of the stored CRC-32 in the central directory, so the data
	// no longer matches it.
	central := bytes.Index(data, []byte("PK\x01\x02"))
	data[central+16] ^= 0xff
	if err := os.WriteFile(archive, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "vault")
	if err := extractFile(archive, "vault", out); err == nil {
		t.Fatal("extractFile accepted an entry whose CRC-32 does not match")
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a corrupt entry left a file behind")
	}
}

func TestDownload(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/present" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("contents"))
	}))
	defer server.Close()
	client := newClient(time.Second)
	dir := t.TempDir()

	path := filepath.Join(dir, "present")
	if err := download(context.Background(), client, server.URL+"/present", path); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "contents" {
		t.Fatalf("downloaded %q", got)
	}

	err := download(context.Background(), client, server.URL+"/absent", filepath.Join(dir, "absent"))
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("a 404 should fail naming the status, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "absent")); err == nil {
		t.Fatal("a failed download left a file behind")
	}
}

func TestDownloadFailsWhenNothingListens(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	listener.Close()
	err = download(context.Background(), newClient(time.Second), "http://"+addr+"/x", filepath.Join(t.TempDir(), "x"))
	if err == nil {
		t.Fatal("a download from a closed port succeeded")
	}
}

func TestFileSHA256(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := fileSHA256(path)
	const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if err != nil || got != want {
		t.Fatalf("fileSHA256 = %q, %v; want %q", got, err, want)
	}
}
