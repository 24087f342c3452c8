// Command bench-vault measures the plugin inside a real Vault: the pinned
// Vault as a dev server in memory, then as one node on integrated storage
// (Raft), each with the plugin registered and mounted against an in-process
// fake Beyond Identity answering after a configurable latency; then the dev
// server again with 100 ms upstream latency and 32 readers. A Go load
// generator drives, side by side in the same run and taking turns, creds
// reads, Vault's own child tokens (auth/token/create) and the plugin's
// round trip without upstream (a roles read); the dev server in memory
// also creds reads of a role with a claims_template, made with a userpass
// login's token (a root token has no entity to attribute to), and creds
// reads of the plain role with that same token, so that attribution's own
// cost is measured apart from Vault's policy check of a token that is not
// root. It prints rates, p50 and p99, the ratios and the plugin process's
// peak RSS.
//
// Absolute numbers depend on the machine and what else runs on it; the
// ratios, measured seconds apart on the same machine, are the result. It is
// a benchmark: it never fails on a number.
//
//	make bench-vault LATENCY=20ms READERS=16 DURATION=15s
//	make bench-vault SETUPS=dev
//	make bench-vault PROFILE=/tmp/profiles   # then go tool pprof bin/vault-plugin-secrets-beyondidentity /tmp/profiles/cpu-*.pprof
//	make bench-vault SETUPS=container        # as root, with Docker and gVisor's runsc
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// pluginName is the catalog name the plugin is registered under.
const pluginName = "vault-plugin-secrets-beyondidentity"

// flags are the benchmark's knobs.
type flags struct {
	vaultBin, pluginBin, pluginVersion string
	latency, duration, warmup          time.Duration
	readers, rounds                    int
	slowLatency                        time.Duration
	slowReaders                        int
	// setups names the setups to measure; they run in setupNames' order.
	setups []string
	// profile, when set, is a folder each setup's plugin writes a CPU
	// profile of its run into.
	profile string
}

// setupNames are the setups -setups chooses from: the dev server, the
// integrated-storage node, the slow-upstream dev server, and the dev server
// with the plugin both as a process and containerized under gVisor.
var setupNames = []string{"dev", "raft", "slow", "container"}

// defaultSetups are those measured without -setups. The container setup
// needs root, Docker and gVisor's runsc: it is asked for by name.
var defaultSetups = []string{"dev", "raft", "slow"}

func parseFlags(args []string) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("bench-vault", flag.ContinueOnError)
	fs.StringVar(&f.vaultBin, "vault", os.Getenv("VAULT_BIN"), "the vault binary (default $VAULT_BIN)")
	fs.StringVar(&f.pluginBin, "plugin", "bin/"+pluginName, "the plugin binary, built without -race")
	fs.StringVar(&f.pluginVersion, "plugin-version", "v0.1.0", "the version the plugin was built with, to register it under")
	fs.DurationVar(&f.latency, "latency", 0, "upstream latency of the dev and integrated-storage setups: every answer of the fake comes this late")
	fs.IntVar(&f.readers, "readers", 8, "concurrent readers of the dev and integrated-storage setups")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "how long each workload is measured")
	fs.DurationVar(&f.warmup, "warmup", time.Second, "load before each workload's first round, not counted")
	fs.IntVar(&f.rounds, "rounds", 6, "turns the workloads take, each of duration/rounds")
	fs.DurationVar(&f.slowLatency, "slow-latency", 100*time.Millisecond, "upstream latency of the third setup")
	fs.IntVar(&f.slowReaders, "slow-readers", 32, "concurrent readers of the third setup")
	fs.StringVar(&f.profile, "profile", "", "a folder each setup's plugin writes a CPU profile of its run into (cpu-PID.pprof), for go tool pprof")
	setups := fs.String("setups", strings.Join(defaultSetups, ","), "the setups to measure, comma-separated: dev, raft, slow, container (root, Docker and gVisor's runsc: the plugin as a process and containerized, in one Vault)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	for name := range strings.SplitSeq(*setups, ",") {
		if !slices.Contains(setupNames, name) {
			return f, fmt.Errorf("-setups: unknown setup %q: choose among %s", name, strings.Join(setupNames, ", "))
		}
		f.setups = append(f.setups, name)
	}
	switch {
	case fs.NArg() > 0:
		return f, fmt.Errorf("unexpected arguments %q", fs.Args())
	case f.vaultBin == "":
		return f, errors.New("no Vault: pass -vault or set VAULT_BIN (make bench-vault finds it with scripts/vault.sh)")
	case f.readers < 1 || f.slowReaders < 1 || f.rounds < 1:
		return f, errors.New("-readers, -slow-readers and -rounds must be at least 1")
	case f.duration <= 0 || f.warmup < 0 || f.latency < 0 || f.slowLatency < 0:
		return f, errors.New("-duration must be positive; -warmup, -latency and -slow-latency not negative")
	}
	if _, err := os.Stat(f.pluginBin); err != nil {
		return f, fmt.Errorf("-plugin: %w (make build builds it)", err)
	}
	return f, nil
}

func main() {
	f, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-vault:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, f))
}

// run measures every setup, each with its own servers stopped before the
// next starts, and prints the tables. It returns the exit status.
func run(ctx context.Context, f flags) int {
	if f.profile != "" {
		// Vault passes its environment on to the plugins it starts, which
		// run in another folder.
		dir, err := filepath.Abs(f.profile)
		if err == nil {
			// The plugin only writes its file: a missing folder would cost
			// the profile, with a line in Vault's log as the only trace.
			err = os.MkdirAll(dir, 0o750)
		}
		if err == nil {
			err = os.Setenv("BEYONDIDENTITY_CPU_PROFILE", dir)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench-vault:", err)
			return 2
		}
	}
	opts := vaulttest.Options{
		VaultBin: f.vaultBin,
		Plugin:   vaulttest.Plugin{Bin: f.pluginBin, Name: pluginName, Version: f.pluginVersion},
		// Vault's default level: what a production server pays for logging.
		LogLevel: "info",
	}
	all := map[string]setup{
		"dev": {name: fmt.Sprintf("dev server, in memory, %s upstream, %d readers", f.latency, f.readers),
			storage: vaulttest.Dev, latency: f.latency, readers: f.readers, attributed: true},
		"raft": {name: fmt.Sprintf("one node, integrated storage, %s upstream, %d readers", f.latency, f.readers),
			storage: vaulttest.Raft, latency: f.latency, readers: f.readers},
		"slow": {name: fmt.Sprintf("dev server, in memory, %s upstream, %d readers", f.slowLatency, f.slowReaders),
			storage: vaulttest.Dev, latency: f.slowLatency, readers: f.slowReaders, credsOnly: true},
		"container": {name: fmt.Sprintf("dev server, process and gVisor container, HTTPS, %s upstream, %d readers", f.latency, f.readers),
			storage: vaulttest.Dev, latency: f.latency, readers: f.readers, container: true},
	}
	var setups []setup
	for _, name := range setupNames {
		if slices.Contains(f.setups, name) {
			setups = append(setups, all[name])
		}
	}
	fmt.Printf("bench-vault: %s; plugin %s; %d CPUs; %s per workload in %d rounds, after %s of warm-up\n",
		vaultVersion(f.vaultBin), f.pluginBin, runtime.NumCPU(), f.duration, f.rounds, f.warmup)
	var measured []measurement
	for _, s := range setups {
		fmt.Fprintf(os.Stderr, "bench-vault: measuring %s\n", s.name)
		r := &runner{}
		m, ok := r.do(func() { measured = append(measured, s.measure(ctx, r, opts, f.warmup, f.duration, f.rounds)) })
		if !ok {
			fmt.Fprintf(os.Stderr, "bench-vault: %s: %s\n", s.name, m)
			return 1
		}
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "bench-vault: interrupted")
			return 130
		}
	}
	printTables(os.Stdout, measured)
	if slices.Contains(f.setups, "slow") && f.slowLatency == 100*time.Millisecond && f.slowReaders == 32 {
		fmt.Println("\nThe project's targets for the 100ms, 32-reader setup with the default config: at least 290 creds/s, " +
			"p99 at most 250ms, plugin RSS at most 32 MiB.")
	}
	return 0
}

// vaultVersion is the first line of `vault version`.
func vaultVersion(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "vault version: " + err.Error()
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

// runner is the vaulttest.TB of a program: Fatalf ends the current step,
// whose cleanups then run (stopping its servers), and reports the failure.
type runner struct {
	cleanups []func()
	failed   bool
}

// fatal carries a Fatalf message out of the step.
type fatal string

func (r *runner) Helper()                         {}
func (r *runner) Cleanup(f func())                { r.cleanups = append(r.cleanups, f) }
func (r *runner) Failed() bool                    { return r.failed }
func (r *runner) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

// Errorf reports a failure and lets the step, or its cleanups, go on.
func (r *runner) Errorf(format string, args ...any) {
	r.failed = true
	fmt.Fprintf(os.Stderr, "bench-vault: "+format+"\n", args...)
}

func (r *runner) Fatalf(format string, args ...any) {
	r.failed = true
	panic(fatal(fmt.Sprintf(format, args...)))
}

// do runs step, then the cleanups it registered, last first. It returns
// the Fatalf message and false when step called Fatalf, and false when
// step or a cleanup called Errorf.
func (r *runner) do(step func()) (msg string, ok bool) {
	defer func() {
		p := recover()
		for i := len(r.cleanups) - 1; i >= 0; i-- {
			r.cleanups[i]()
		}
		r.cleanups = nil
		if p == nil {
			if r.failed {
				msg, ok = "failed (see above)", false
			}
			return
		}
		f, isFatal := p.(fatal)
		if !isFatal {
			panic(p)
		}
		msg, ok = string(f), false
	}()
	step()
	return "", true
}
