package vaulttest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
)

// serverConfig is the HCL configuration of a file or Raft server.
func serverConfig(s *Server) string {
	var b strings.Builder
	switch s.opts.Storage {
	case Raft:
		fmt.Fprintf(&b, "storage \"raft\" {\n  path    = %q\n  node_id = %q\n", filepath.Join(s.Dir, "data"), s.Name)
		for _, peer := range s.peers {
			fmt.Fprintf(&b, "  retry_join {\n    leader_api_addr = %q\n  }\n", peer)
		}
		b.WriteString("}\n")
	default:
		fmt.Fprintf(&b, "storage \"file\" {\n  path = %q\n}\n", filepath.Join(s.Dir, "data"))
	}
	fmt.Fprintf(&b, "listener \"tcp\" {\n  address     = %q\n", s.Addr)
	if s.ClusterAddr != "" {
		// A node announces cluster_addr and listens on cluster_address: on
		// one machine they must be the same port, or no node ever reaches
		// another (Vault would otherwise listen on the API port plus one).
		fmt.Fprintf(&b, "  cluster_address = %q\n", s.ClusterAddr)
	}
	b.WriteString("  tls_disable = true\n}\n")
	fmt.Fprintf(&b, "api_addr = %q\n", s.URL())
	if s.ClusterAddr != "" {
		fmt.Fprintf(&b, "cluster_addr = %q\n", "https://"+s.ClusterAddr)
	} else {
		b.WriteString("disable_clustering = true\n")
	}
	fmt.Fprintf(&b, "plugin_directory = %q\n", s.PluginDir())
	// Integrated storage asks for mlock off; the tests need no swap
	// protection either.
	b.WriteString("disable_mlock = true\n")
	fmt.Fprintf(&b, "log_level = %q\n", s.opts.LogLevel)
	if s.opts.RawStorage {
		b.WriteString("raw_storage_endpoint = true\n")
	}
	return b.String()
}

// devArgs are the flags of a dev server. -dev-plugin-init=false keeps the
// dev server from registering the plugin unversioned on its own, so that
// RegisterAndMount registers and mounts it the same way on every storage.
func devArgs(s *Server) []string {
	return []string{
		"-dev", "-dev-root-token-id=" + s.RootToken, "-dev-listen-address=" + s.Addr,
		"-dev-plugin-dir=" + s.PluginDir(), "-dev-plugin-init=false", "-dev-no-kv",
		"-log-level=" + s.opts.LogLevel,
	}
}

// randomHex is n random bytes in hex, for a dev server's root token.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
