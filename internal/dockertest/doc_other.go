//go:build !linux

// Package dockertest runs a private Docker engine with gVisor's runsc; it
// needs Linux (network and mount namespaces), and is empty elsewhere.
package dockertest
