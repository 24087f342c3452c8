//go:build !linux

package main

import (
	"context"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// measureContainer needs Linux: Vault runs containerized plugins only there.
func (s setup) measureContainer(_ context.Context, r *runner, _ vaulttest.Options, _, _ time.Duration, _ int) measurement {
	r.Fatalf("the container setup needs Linux, Docker and gVisor's runsc")
	return measurement{}
}
