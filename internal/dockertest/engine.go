//go:build linux

// Package dockertest runs a private Docker engine with gVisor's runsc as its
// OCI runtime, for the end-to-end test and the benchmark that run the plugin
// as a containerized plugin in a real Vault. It never touches a Docker
// engine of the machine.
//
// The engine (dockerd and the containerd, shims and sandboxes it starts)
// lives in a network and a mount namespace of its own, made when it starts
// and gone when it stops:
//   - Its data, state and socket are in a folder of its own under the
//     temporary folder, and tmpfs mounts over /run and /etc/docker hold
//     what dockerd and containerd write at fixed paths (shim sockets, the
//     engine's key), so nothing lands in the machine's.
//   - Its bridge, and every container on it, is in the engine's network
//     namespace: the machine's network gains no interface, route or
//     firewall rule, and a container reaches only what listens in that
//     namespace (see Engine.Listen). No container is ever given a route out.
//   - Its containers' cgroups are under a parent named after the engine,
//     removed when it stops.
//
// runsc runs with --host-uds=all, which HashiCorp's guide asks for (the
// plugin's socket is a host file bind-mounted into the container), and
// --network=host: gVisor then uses the network namespace Docker made for
// the container; its own network stack refuses to start here ("cannot run
// with network enabled in root network namespace").
package dockertest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strings"
)

// Gateway is the engine's bridge address inside its network namespace:
// what a container reaches a listener of Engine.Listen on. The range is
// private to the namespace, so it clashes with nothing on the machine.
const (
	Gateway = "10.213.57.1"
	bridge  = Gateway + "/24"
)

// TB is what the engine needs of a test: vaulttest.TB's methods and
// Errorf, which reports what a stopped engine left behind without stopping
// the other cleanups.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	Failed() bool
}

// Missing says what this machine lacks to run an engine, or "" when it has
// everything: root (for the namespaces and dockerd), and dockerd, docker,
// runsc and mount on PATH.
func Missing() string {
	if os.Geteuid() != 0 {
		who := "this user"
		if u, err := user.Current(); err == nil {
			who = u.Username
		}
		return fmt.Sprintf("%s is not root", who)
	}
	var missing []string
	for _, tool := range []string{"dockerd", "docker", "runsc", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return "not on PATH: " + strings.Join(missing, ", ")
	}
	return ""
}
