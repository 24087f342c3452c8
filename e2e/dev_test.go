//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/testutil"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// TestMakeDevCleansUpOnSIGTERM stops make dev with SIGTERM to its process
// group, as a supervisor or a closed terminal does, several times: each
// time the temporary folder, which holds client-secret, and .dev/env are
// gone, as after Ctrl-C. make forwards SIGTERM to the script after the
// group's own, so the script sees two, one of them during its cleanup.
func TestMakeDevCleansUpOnSIGTERM(t *testing.T) {
	state := filepath.Join(repoRoot, ".dev", "env")
	if _, err := os.Stat(state); err == nil {
		t.Skip("a make dev environment is already running in this clone")
	}
	const rounds = 5
	for round := 1; round <= rounds; round++ {
		tmp := t.TempDir()
		output := &testutil.SyncBuffer{}
		cmd := exec.Command("make", "dev")
		cmd.Dir = repoRoot
		cmd.Env = withoutPrefix("BEYOND_IDENTITY_", vaulttest.Environ("VAULT_BIN="+vaultBin, "TMPDIR="+tmp))
		cmd.Stdout, cmd.Stderr = output, output
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(exited)
		}()
		stopGroup := func(signal syscall.Signal) { _ = syscall.Kill(-cmd.Process.Pid, signal) }
		t.Cleanup(func() {
			select {
			case <-exited:
			default: // a failed round: stop what it left running
				stopGroup(syscall.SIGKILL)
				<-exited
			}
		})
		eventually(t, 5*time.Minute, "make dev to be ready", func() bool { return strings.Contains(output.String(), "Ready.") })
		secrets, _ := filepath.Glob(filepath.Join(tmp, "beyondidentity-dev.*", "client-secret"))
		if _, err := os.Stat(state); err != nil || len(secrets) != 1 {
			t.Fatalf("round %d: make dev is ready without its client-secret file (%v) or .dev/env (%v)", round, secrets, err)
		}
		stopGroup(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(readyTimeout):
			t.Fatalf("round %d: make dev did not stop on SIGTERM:\n%s", round, redactTokens(output.String()))
		}
		left, _ := filepath.Glob(filepath.Join(tmp, "beyondidentity-dev.*"))
		_, stateErr := os.Stat(state)
		if len(left) > 0 || stateErr == nil || !strings.Contains(output.String(), "stopped.") {
			t.Fatalf("round %d of %d: after SIGTERM make dev left its folder %v, or .dev/env (left: %v), or did not say stopped:\n%s",
				round, rounds, left, stateErr == nil, redactTokens(output.String()))
		}
	}
}
