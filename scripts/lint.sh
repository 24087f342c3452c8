#!/usr/bin/env bash
# make lint: runs golangci-lint, pinned in tools/golangci-lint, with
# .golangci.yml (which says why each linter is on), over every package,
# the end-to-end suite included.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/tool.sh"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
linter="$(cached_tool golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint)"
echo "lint.sh: $("$linter" version --short 2>/dev/null || echo golangci-lint) over ./..." >&2
cd "$ROOT"
"$linter" run ./...
