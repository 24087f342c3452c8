#!/usr/bin/env bash
# Prints the path of the Vault binary the tests and the demo run, building it
# first when needed. Progress goes to stderr; only the path goes to stdout.
#
#   VAULT_BIN=/path/to/vault   use that binary
#   VAULT_BIN=vault            use the vault found on PATH
#   (unset)                    build the pinned version into the user's cache
#                              once, from tools/vault, and reuse it after that
set -euo pipefail

VAULT_VERSION=v1.21.0
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/vault-plugin-secrets-beyondidentity"
CACHED="$CACHE_DIR/vault-$VAULT_VERSION"

say() { echo "vault.sh: $*" >&2; }

if [[ -n "${VAULT_BIN:-}" ]]; then
    if [[ "$VAULT_BIN" != */* ]]; then
        found="$(command -v "$VAULT_BIN" || true)"
        [[ -n "$found" ]] || { say "VAULT_BIN=$VAULT_BIN is not on PATH"; exit 1; }
        VAULT_BIN="$found"
    fi
    [[ -x "$VAULT_BIN" ]] || { say "VAULT_BIN=$VAULT_BIN is not an executable file"; exit 1; }
    say "using $VAULT_BIN ($("$VAULT_BIN" version | head -n1))"
    echo "$VAULT_BIN"
    exit 0
fi

if [[ -x "$CACHED" ]]; then
    echo "$CACHED"
    exit 0
fi

mkdir -p "$CACHE_DIR"
partial="$(mktemp "$CACHE_DIR/.vault-$VAULT_VERSION.XXXXXX")"
trap 'rm -f "$partial"' EXIT

cd "$ROOT/tools/vault"
say "building Vault $VAULT_VERSION once into $CACHED"
say "step 1/2: downloading its modules from the Go module proxy"
go mod download
say "step 2/2: compiling (several minutes on a cold Go build cache; later builds reuse it)"
# go build -v names each package as it compiles: count them as progress.
go build -v -trimpath -ldflags='-s -w' -o "$partial" github.com/hashicorp/vault 2>&1 |
    awk '{ n++; if (n % 100 == 0) { printf "vault.sh:   %d packages compiled\n", n > "/dev/stderr" } }
         /^#|\.go:[0-9]+/ { print > "/dev/stderr" }'
[[ -s "$partial" ]] || { say "the build produced no binary"; exit 1; }
chmod 0755 "$partial"
mv "$partial" "$CACHED"
trap - EXIT
say "built $("$CACHED" version | head -n1)"
echo "$CACHED"
