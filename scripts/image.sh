#!/usr/bin/env bash
# make image VERSION=vX.Y.Z [ARCH=amd64|arm64]: builds the plugin's
# container image vault-plugin-secrets-beyondidentity:X.Y.Z for linux/ARCH,
# reproducibly, with no registry and no base image, and loads it into the
# Docker engine that DOCKER_HOST (or Docker's default) names.
#
# The binary is built exactly as make release builds it (static, -trimpath,
# no VCS stamp, the same flags as .goreleaser.yaml), and packed by
# scripts/ociimage with every date set to the last commit's time: two
# builds of one commit with the same Go version give the same image ID, on
# any machine, and the same ID as the image archive of make release.
#
#   VERSION=vX.Y.Z        the version to stamp (required form: v + semver)
#   ARCH=amd64|arm64      the image's architecture (default amd64)
#   OUT=dir               where the archive and config go (default bin/)
#   LOAD=0                write the archive only; do not docker load it
#   SOURCE_DATE_EPOCH=n   the image's date (default: the last commit's)
#
# Into OUT go vault-plugin-secrets-beyondidentity_X.Y.Z_linux_ARCH.image.tar
# (what docker load takes) and .image.json (the image config, whose SHA-256
# is the image ID). Progress goes to stderr; stdout gets the image ID, and
# the register line after it.
set -euo pipefail

PLUGIN=vault-plugin-secrets-beyondidentity
MODULE=github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${VERSION:-}"
ARCH="${ARCH:-amd64}"
OUT="${OUT:-$ROOT/bin}"
LOAD="${LOAD:-1}"

say() { echo "image.sh: $*" >&2; }
die() { say "$*"; exit 1; }

[[ "$VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] ||
    die "VERSION=$VERSION is not v followed by a semantic version, e.g. make image VERSION=v1.2.3"
[[ "$ARCH" == amd64 || "$ARCH" == arm64 ]] || die "ARCH=$ARCH: want amd64 or arm64"
if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
    SOURCE_DATE_EPOCH="$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)"
fi
created="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null ||
    date -u -r "$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
tag="${VERSION#v}"
name="${PLUGIN}_${tag}_linux_${ARCH}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT"

say "building $PLUGIN $VERSION for linux/$ARCH as make release does"
(cd "$ROOT" && CGO_ENABLED=0 GOOS=linux GOARCH="$ARCH" GOAMD64=v1 go build -trimpath -buildvcs=false \
    -ldflags "-s -w -X $MODULE.Version=$VERSION" -o "$work/$PLUGIN" "./cmd/$PLUGIN") >&2
(cd "$ROOT" && go build -o "$work/ociimage" ./scripts/ociimage) >&2
say "packing $PLUGIN:$tag (dated $created) into $OUT/$name.image.tar"
id="$("$work/ociimage" -binary "$work/$PLUGIN" -arch "$ARCH" -ref "$PLUGIN:$tag" -created "$created" \
    -out "$OUT/$name.image.tar" -config "$OUT/$name.image.json")"

if [[ "$LOAD" != 0 ]]; then
    say "loading it into Docker (${DOCKER_HOST:-Docker's default engine})"
    docker load -i "$OUT/$name.image.tar" >&2
    loaded="$(docker image inspect --format '{{ .Id }}' "$PLUGIN:$tag")"
    [[ "$loaded" == "sha256:$id" ]] || die "Docker gives $PLUGIN:$tag the ID $loaded, not sha256:$id"
fi
echo "$id"
echo "vault plugin register -sha256=$id -oci_image=$PLUGIN -version=$VERSION secret $PLUGIN"
