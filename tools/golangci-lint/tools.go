//go:build tools

// Package tools pins golangci-lint, which make lint runs, in a module of its
// own so that none of its dependencies reach the plugin's go.mod.
package tools

import _ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
