#!/usr/bin/env bash
# Prints the path of OpenTofu, or of HashiCorp's Vault provider for it, that
# the end-to-end suite's Terraform test runs, building it first when needed.
# Progress goes to stderr; only the path goes to stdout.
#
#   scripts/tofu.sh                  OpenTofu's tofu (tools/opentofu)
#   scripts/tofu.sh vault-provider   terraform-provider-vault (tools/terraform-provider-vault)
#
# Each is built once, from the Go module proxy alone, into the user's cache
# folder beside the Vault that scripts/vault.sh builds, named by its release
# version, and never rebuilt while it is there. The tools module pins the
# version (go.mod) and the checksum of its source (go.sum); the build runs
# inside the downloaded module, with its own go.mod and go.sum, as its
# release does: `go install` refuses OpenTofu's replace directives, and a
# build from the tools module would drop them. About 10 minutes for both on
# 2 cores with cold Go caches; seconds once cached.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/vault-plugin-secrets-beyondidentity"

say() { echo "tofu.sh: $*" >&2; }
die() { say "$*"; exit 1; }

# What to build: the tools module, the Go module it pins, the release
# version the module's version/VERSION must read, the package, and the
# linker flags of the project's own release build.
case "${1:-tofu}" in
    tofu)
        NAME=tofu TOOLS=opentofu MODULE=github.com/opentofu/opentofu RELEASE=1.12.6 PACKAGE=./cmd/tofu
        LDFLAGS="-s -w -X github.com/opentofu/opentofu/version.dev=no"
        ;;
    vault-provider)
        NAME=terraform-provider-vault TOOLS=terraform-provider-vault MODULE=github.com/hashicorp/terraform-provider-vault
        RELEASE=5.9.0 PACKAGE=. LDFLAGS="-s -w"
        ;;
    *) die "usage: scripts/tofu.sh [tofu|vault-provider]" ;;
esac
CACHED="$CACHE_DIR/$NAME-v$RELEASE"

if [[ -x "$CACHED" ]]; then
    say "using $CACHED (built by an earlier run)"
    echo "$CACHED"
    exit 0
fi

mkdir -p "$CACHE_DIR"
# In the cache folder, so that the final rename stays on one file system and
# no other run ever sees half a binary.
partial="$(mktemp "$CACHE_DIR/.$NAME-v$RELEASE.XXXXXX")"
trap 'rm -f "$partial"' EXIT

cd "$ROOT/tools/$TOOLS"
grep -q "^require $MODULE " go.mod || die "tools/$TOOLS/go.mod does not pin $MODULE (was go mod tidy run there?)"
say "building $NAME v$RELEASE once into $CACHED"
say "step 1/3: downloading $MODULE, checked against tools/$TOOLS/go.sum"
go mod download "$MODULE"
dir="$(go list -m -f '{{.Dir}}' "$MODULE")"
[[ -d "$dir" ]] || die "go list gave no folder for $MODULE"
version="$(tr -d '[:space:]' <"$dir/version/VERSION")"
[[ "$version" == "$RELEASE" ]] || die "$MODULE as pinned is version $version, not $RELEASE"

# Its own go.mod and go.sum decide every dependency; nothing outside the
# module (a go.work, GOFLAGS such as -race) may change the build.
cd "$dir"
export GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0
say "step 2/3: downloading the modules it needs from the Go module proxy"
go list -deps "$PACKAGE" >/dev/null
say "step 3/3: compiling (several minutes on a cold Go build cache; later builds reuse it)"
# go build -v names each package as it compiles: count them as progress.
# An import path has no space; anything else (an error) is shown as is.
go build -v -trimpath -ldflags="$LDFLAGS" -o "$partial" "$PACKAGE" 2>&1 |
    awk -v name="$NAME" '/ |^#/ { print > "/dev/stderr"; next }
         { n++; if (n % 100 == 0) { printf "tofu.sh:   %s: %d packages compiled\n", name, n > "/dev/stderr" } }'
[[ -s "$partial" ]] || die "the build produced no binary"
chmod 0755 "$partial"
mv "$partial" "$CACHED"
say "built $CACHED"
echo "$CACHED"
