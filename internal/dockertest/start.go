//go:build linux

package dockertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// readyTimeout bounds the wait for the engine to answer and to stop.
const readyTimeout = 60 * time.Second

// Options describe the engine to run.
type Options struct {
	// SocketGID is the group that owns the engine's socket (mode 0660), so
	// that a Vault run as a non-root user of that group can use it.
	SocketGID int
}

// Engine is one running private Docker engine.
type Engine struct {
	t TB
	// Dir holds everything of the engine on disk; it is removed on Stop.
	Dir string
	// Host is the engine's address for DOCKER_HOST.
	Host string

	cmd          *exec.Cmd
	exited       chan struct{}
	cgroupParent string
	stopped      bool
}

// Start runs a private engine and stops it when t cleans up, failing t
// (with Errorf) if the engine left anything behind.
func Start(t TB, opts Options) *Engine {
	t.Helper()
	if reason := Missing(); reason != "" {
		t.Fatalf("cannot run a Docker engine: %s", reason)
	}
	// A short folder: the engine's unix sockets live in it, and a socket's
	// path may not pass 107 bytes.
	dir, err := os.MkdirTemp("", "bi-docker-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	// Vault, run as another user, reaches the socket in it.
	if err := os.Chmod(dir, 0o711); err != nil { //nolint:gosec // G302: see above
		t.Fatalf("%v", err)
	}
	e := &Engine{t: t, Dir: dir, Host: "unix://" + filepath.Join(dir, "docker.sock"), cgroupParent: filepath.Base(dir)}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("stopping the Docker engine: %v", err)
		}
	})
	e.start(opts)
	return e
}

// daemonConfig is the engine's daemon.json.
func (e *Engine) daemonConfig(opts Options) ([]byte, error) {
	runsc, err := exec.LookPath("runsc")
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(map[string]any{
		"data-root": filepath.Join(e.Dir, "data"),
		"exec-root": filepath.Join(e.Dir, "exec"),
		"pidfile":   filepath.Join(e.Dir, "dockerd.pid"),
		"hosts":     []string{e.Host},
		"group":     strconv.Itoa(opts.SocketGID),
		"runtimes": map[string]any{
			"runsc": map[string]any{"path": runsc, "runtimeArgs": []string{"--host-uds=all", "--network=host"}},
		},
		// Anything the engine runs, runs under gVisor; Vault names runsc
		// itself, unless a plugin runtime says otherwise.
		"default-runtime": "runsc",
		"bip":             bridge,
		// The namespace is the firewall: no rule, no NAT, no proxy.
		"iptables":       false,
		"ip6tables":      false,
		"ip-masq":        false,
		"ip-forward":     false,
		"userland-proxy": false,
		"cgroup-parent":  e.cgroupParent,
		"log-level":      "warn",
	}, "", "  ")
}

// start runs dockerd in its namespaces and waits until it answers.
func (e *Engine) start(opts Options) {
	e.t.Helper()
	config, err := e.daemonConfig(opts)
	if err != nil {
		e.t.Fatalf("%v", err)
	}
	configPath := filepath.Join(e.Dir, "daemon.json")
	if err := os.WriteFile(configPath, config, 0o600); err != nil {
		e.t.Fatalf("%v", err)
	}
	log, err := os.Create(e.logPath())
	if err != nil {
		e.t.Fatalf("%v", err)
	}
	defer log.Close()
	// Go makes the new mount namespace's mounts private before bash runs,
	// so the tmpfs mounts, and every mount the engine makes, stay in it.
	script := `mount -n -t tmpfs -o mode=0755 bi-docker-run /run &&
mount -n -t tmpfs -o mode=0755 bi-docker-etc /etc/docker &&
exec dockerd --config-file "$1"`
	e.cmd = exec.Command("bash", "-c", script, "dockerd", configPath)
	e.cmd.Stdout, e.cmd.Stderr = log, log
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWNET}
	if err := e.cmd.Start(); err != nil {
		e.t.Fatalf("starting dockerd: %v", err)
	}
	e.exited = make(chan struct{})
	go func() {
		_ = e.cmd.Wait()
		close(e.exited)
	}()
	deadline := time.Now().Add(readyTimeout)
	for !e.answers() {
		select {
		case <-e.exited:
			e.t.Fatalf("dockerd exited at start; its log:\n%s", e.LogTail())
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("dockerd did not answer within %s; its log:\n%s", readyTimeout, e.LogTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *Engine) logPath() string { return filepath.Join(e.Dir, "dockerd.log") }

// answers reports whether the engine's API answers a ping.
func (e *Engine) answers() bool {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", strings.TrimPrefix(e.Host, "unix://"))
		},
	}}
	resp, err := client.Get("http://docker/_ping")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// LogTail is the end of dockerd's log, for failure messages.
func (e *Engine) LogTail() string {
	data, _ := os.ReadFile(e.logPath())
	if len(data) > 4000 {
		data = append([]byte("..."), data[len(data)-4000:]...)
	}
	return string(data)
}

// Env is the environment a docker client (the CLI, or Vault's container
// runner, which reads DOCKER_HOST) needs to reach this engine and no other.
func (e *Engine) Env() []string {
	return []string{"DOCKER_HOST=" + e.Host, "DOCKER_CONFIG=" + filepath.Join(e.Dir, "client")}
}

// Docker runs the docker CLI against the engine and returns its output.
func (e *Engine) Docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), e.Env()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// MustDocker runs the docker CLI and fails when it fails.
func (e *Engine) MustDocker(args ...string) string {
	e.t.Helper()
	out, err := e.Docker(args...)
	if err != nil {
		e.t.Fatalf("%v", err)
	}
	return out
}
