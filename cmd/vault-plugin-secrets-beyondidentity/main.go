// Command vault-plugin-secrets-beyondidentity is the Beyond Identity secrets
// engine, run by Vault as an external, multiplexed plugin.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/plugin"
	// The container image holds the plugin alone, with no CA certificates:
	// these roots are used only where the system has none, so the plugin
	// reaches Beyond Identity over HTTPS from an image without a base.
	_ "golang.org/x/crypto/x509roots/fallback"

	beyondidentity "github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity"
)

// gcPercent lets the heap grow by 40% of the live data between
// collections, instead of Go's default doubling, unless GOGC says otherwise:
// the plugin's live data (a client, a few caches, the requests in flight)
// is about 4 MiB and Vault runs the plugin beside itself on the same
// machine. Measured with make bench-vault: at 25% collecting took a quarter
// of the plugin's CPU under a creds load; at 50% the plugin's RSS under the
// 100ms, 32-reader load passed its 32 MiB budget; 40% cost 0.3 MiB more
// than 25% and raised the creds/roles-read ratio from 0.50 to 0.53.
const gcPercent = 40

// cpuProfileEnv names a folder into which the plugin writes a CPU profile of
// its whole run, as cpu-PID.pprof, for `go tool pprof`: make bench-vault
// PROFILE=DIR sets it. A plugin inherits Vault's environment.
const cpuProfileEnv = "BEYONDIDENTITY_CPU_PROFILE"

// main serves the plugin over Vault's version 5 plugin protocol (Vault 1.12
// and later; this plugin needs 1.16), which authenticates with automatic
// mutual TLS: no TLS provider and no flags, and so none of the Vault API
// client's weight in the process.
func main() {
	// Nothing reads the plugin's heap profile, so it keeps none: the
	// sampling and its tables cost memory and a little time per request.
	runtime.MemProfileRate = 0
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if dir := os.Getenv(cpuProfileEnv); dir != "" {
		defer profileCPU(dir)()
	}
	// Vault stops the plugin by asking it to shut down, and ServeMultiplex
	// then returns: the profile is complete.
	err := plugin.ServeMultiplex(&plugin.ServeOpts{BackendFactoryFunc: beyondidentity.Factory})
	if err != nil {
		hclog.New(&hclog.LoggerOptions{}).Error("plugin shutting down", "error", err)
		os.Exit(1)
	}
}

// profileCPU starts a CPU profile into dir and returns its stop. A profile
// that cannot start is reported and skipped: the plugin serves all the same.
func profileCPU(dir string) (stop func()) {
	logger := hclog.New(&hclog.LoggerOptions{})
	file, err := os.Create(filepath.Join(dir, fmt.Sprintf("cpu-%d.pprof", os.Getpid())))
	if err == nil {
		err = pprof.StartCPUProfile(file)
	}
	if err != nil {
		logger.Error("cannot profile the plugin", "error", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = file.Close()
	}
}
