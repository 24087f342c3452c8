package vaulttest

import (
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// The servers themselves run in the end-to-end suite (make e2e); these
// tests cover what can be checked without a Vault.

func TestRaftConfigListensWhereItAnnounces(t *testing.T) {
	s := &Server{Name: "node2", Dir: "/tmp/n2", Addr: "127.0.0.1:20010", ClusterAddr: "127.0.0.1:20011",
		peers: []string{"http://127.0.0.1:20000", "http://127.0.0.1:20020"},
		opts:  Options{Storage: Raft, LogLevel: "info", Plugin: Plugin{Name: "p"}}}
	config := serverConfig(s)
	for _, want := range []string{
		`storage "raft"`, `node_id = "node2"`,
		`leader_api_addr = "http://127.0.0.1:20000"`, `leader_api_addr = "http://127.0.0.1:20020"`,
		`cluster_address = "127.0.0.1:20011"`, `cluster_addr = "https://127.0.0.1:20011"`,
		`api_addr = "http://127.0.0.1:20010"`, `plugin_directory = "/tmp/n2/plugins"`, `log_level = "info"`,
	} {
		if !strings.Contains(config, want) {
			t.Errorf("the config lacks %s:\n%s", want, config)
		}
	}
	if strings.Contains(config, "disable_clustering") || strings.Contains(config, "raw_storage_endpoint") {
		t.Errorf("a Raft node must cluster, and sys/raw stays off unless asked:\n%s", config)
	}
}

func TestFileConfigHasNoCluster(t *testing.T) {
	s := &Server{Name: "node1", Dir: "/tmp/f", Addr: "127.0.0.1:20030", opts: Options{Storage: File, RawStorage: true}}
	config := serverConfig(s)
	for _, want := range []string{`storage "file"`, "disable_clustering = true", "raw_storage_endpoint = true"} {
		if !strings.Contains(config, want) {
			t.Errorf("the config lacks %s:\n%s", want, config)
		}
	}
	if strings.Contains(config, "cluster_addr") || strings.Contains(config, "retry_join") {
		t.Errorf("a file server has no cluster:\n%s", config)
	}
}

func TestDevArgsKeepThePluginUnregistered(t *testing.T) {
	s := &Server{Dir: "/tmp/d", Addr: "127.0.0.1:20040", RootToken: "tok", opts: Options{Storage: Dev, LogLevel: "warn"}}
	args := devArgs(s)
	for _, want := range []string{"-dev", "-dev-root-token-id=tok", "-dev-listen-address=127.0.0.1:20040",
		"-dev-plugin-dir=/tmp/d/plugins", "-dev-plugin-init=false", "-log-level=warn"} {
		if !slices.Contains(args, want) {
			t.Errorf("dev args %v lack %s", args, want)
		}
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tvault\nVmPeak:\t  900 kB\nVmRSS:\t   24576 kB\nThreads:\t12\n"
	if rss, err := parseVMRSS(strings.NewReader(status)); err != nil || rss != 24576*1024 {
		t.Fatalf("parseVMRSS = %d, %v; want %d", rss, err, 24576*1024)
	}
	if _, err := parseVMRSS(strings.NewReader("Name:\tkthreadd\n")); err == nil {
		t.Fatal("a status without VmRSS must fail")
	}
}

// TestPIDsOfFindsThisProcess finds the test binary by its executable, and
// reads its RSS, from the real process table.
func TestPIDsOfFindsThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the process table is read from /proc")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if pids := PIDsOf(exe); !slices.Contains(pids, os.Getpid()) {
		t.Fatalf("PIDsOf(%s) = %v, want it to hold %d", exe, pids, os.Getpid())
	}
	if pids := PIDsOf(exe + ".absent"); len(pids) != 0 {
		t.Fatalf("PIDsOf a missing file = %v", pids)
	}
	if rss, err := RSS(os.Getpid()); err != nil || rss < 1<<20 {
		t.Fatalf("RSS of this process = %d, %v", rss, err)
	}
}
