package main

import (
	"crypto/x509"
	"os"
	"os/exec"
	"testing"
)

// noSystemRootsEnv marks the copy of this test run where the system has no
// CA certificates, as in the plugin's container image.
const noSystemRootsEnv = "BEYONDIDENTITY_TEST_NO_SYSTEM_ROOTS"

// TestRootsWithoutSystemCertificates: in an image with no CA certificates
// (no base image), the plugin still verifies Beyond Identity's HTTPS with
// roots of its own. The system's roots load once per process, so the check
// runs in a copy of this test whose certificate file and folder are empty.
func TestRootsWithoutSystemCertificates(t *testing.T) {
	if os.Getenv(noSystemRootsEnv) == "1" {
		roots, err := x509.SystemCertPool()
		if err != nil || roots.Equal(x509.NewCertPool()) {
			t.Fatalf("no CA roots when the system has none (error %v): the plugin could not verify Beyond Identity's certificate", err)
		}
		return
	}
	empty := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRootsWithoutSystemCertificates$", "-test.count=1")
	cmd.Env = append(os.Environ(), noSystemRootsEnv+"=1", "SSL_CERT_FILE="+empty+"/none.pem", "SSL_CERT_DIR="+empty)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
