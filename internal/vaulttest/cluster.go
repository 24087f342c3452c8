package vaulttest

import (
	"fmt"
	"path/filepath"
	"time"
)

// Cluster is a Vault HA cluster on integrated storage: nodes on loopback,
// each with its own API and cluster port, its own Raft folder and its own
// plugin directory.
type Cluster struct {
	t     TB
	Nodes []*Server
}

// StartCluster runs size Raft nodes in folders under dir and forms the
// cluster the documented way: every node lists the others in retry_join,
// the first is initialised and unsealed, then each other node is unsealed
// with the same key, which makes it join. It returns once every node is a
// Raft voter, so that the cluster survives the loss of any one node.
func StartCluster(t TB, dir string, size int, opts Options) *Cluster {
	t.Helper()
	opts.Storage = Raft
	c := &Cluster{t: t}
	for i := range size {
		name := fmt.Sprintf("node%d", i+1)
		c.Nodes = append(c.Nodes, newServer(t, filepath.Join(dir, name), name, opts))
	}
	for _, node := range c.Nodes {
		for _, peer := range c.Nodes {
			if peer != node {
				node.peers = append(node.peers, peer.URL())
			}
		}
		node.start()
	}
	first := c.Nodes[0]
	first.initialize()
	first.Unseal()
	first.waitActive()
	// Autopilot lets a new node vote once it has been healthy this long
	// (10s by default): a cluster of fresh nodes needs no such caution.
	if _, err := first.Client.Logical().Write("sys/storage/raft/autopilot/configuration",
		map[string]any{"server_stabilization_time": "2s"}); err != nil {
		t.Fatalf("configuring autopilot: %v", err)
	}
	for _, node := range c.Nodes[1:] {
		node.RootToken, node.UnsealKey = first.RootToken, first.UnsealKey
		node.Client.SetToken(first.RootToken)
		// retry_join fetches the leader's challenge every few seconds; only
		// then does the node count as initialised and take the key.
		node.waitFor("the join to begin", ReadyTimeout, func() bool {
			status, err := node.Client.Sys().SealStatus()
			return err == nil && status.Initialized
		})
		node.Unseal()
	}
	c.waitVoters(first, size)
	first.enableAudit()
	for _, node := range c.Nodes[1:] {
		node.auditDir = first.Dir
	}
	return c
}

// waitVoters waits until the Raft configuration, as the active node sees
// it, holds n voters. Vault's autopilot lets a new node vote only after it
// has been healthy for a while; before that, losing the leader would leave
// no majority to elect another.
func (c *Cluster) waitVoters(active *Server, n int) {
	c.t.Helper()
	active.waitFor(fmt.Sprintf("%d Raft voters", n), ReadyTimeout, func() bool {
		secret, err := active.Client.Logical().Read("sys/storage/raft/configuration")
		if err != nil || secret == nil {
			return false
		}
		config, _ := secret.Data["config"].(map[string]any)
		servers, _ := config["servers"].([]any)
		voters := 0
		for _, server := range servers {
			if s, _ := server.(map[string]any); s["voter"] == true {
				voters++
			}
		}
		return voters == n
	})
}

// Active waits up to timeout until one running node answers as the active
// node, and returns it.
func (c *Cluster) Active(timeout time.Duration) *Server {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, node := range c.Running() {
			if node.IsActive() {
				return node
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no active node after %s", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Standbys returns the running nodes other than active.
func (c *Cluster) Standbys(active *Server) []*Server {
	var standbys []*Server
	for _, node := range c.Running() {
		if node != active {
			standbys = append(standbys, node)
		}
	}
	return standbys
}

// Running returns the nodes whose process is alive.
func (c *Cluster) Running() []*Server {
	var running []*Server
	for _, node := range c.Nodes {
		if node.Running() {
			running = append(running, node)
		}
	}
	return running
}

// LogText is every node's log, one after the other, each under its name.
func (c *Cluster) LogText() string {
	var text string
	for _, node := range c.Nodes {
		text += "==> " + node.Name + " <==\n" + node.LogText()
	}
	return text
}
