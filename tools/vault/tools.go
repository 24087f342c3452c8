//go:build tools

// Package tools pins the Vault server the end-to-end tests and the demo run
// against. Vault's main module cannot be installed with `go install` (its
// go.mod has replace directives), so it is built from this separate module,
// which keeps Vault (BUSL-licensed, and huge) out of the plugin's go.mod.
// scripts/vault.sh builds it: go build github.com/hashicorp/vault
package tools

import _ "github.com/hashicorp/vault"
