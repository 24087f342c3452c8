//go:build tools

// Package tools pins GoReleaser, which make release runs to cross-compile,
// archive and checksum the plugin (see .goreleaser.yaml). A module of its
// own keeps GoReleaser's few hundred dependencies out of the plugin's
// go.mod. scripts/release.sh builds it once into the user's cache:
// go build github.com/goreleaser/goreleaser/v2
package tools

import _ "github.com/goreleaser/goreleaser/v2"
