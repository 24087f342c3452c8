#!/usr/bin/env bash
# make release VERSION=vX.Y.Z: builds the release artifacts with the pinned
# GoReleaser (.goreleaser.yaml), locally, publishing nothing: a static,
# version-stamped plugin binary for linux and darwin on amd64 and arm64, one
# vault-plugin-secrets-beyondidentity_X.Y.Z_<os>_<arch>.tar.gz each and a
# SHA256SUMS, in dist/. Beside each linux archive goes the plugin's container
# image, packed from the binary in that archive by scripts/ociimage, as an
# archive docker load takes (..._linux_<arch>.image.tar) and its config
# (.image.json, whose SHA-256 is the image ID); SHA256SUMS lists them too.
# Then it prints, per platform, the archive's SHA-256 and the `vault plugin
# register` line (for the binary installed under the file name of its
# version), whose -sha256 is that of the binary inside the archive (what
# Vault checks), not of the archive; and per image, its ID and its register
# line.
#
#   VERSION=vX.Y.Z        the version to stamp (required form: v + semver)
#   DIST=dir              build into dir instead of dist/
#   SOURCE_DATE_EPOCH=n   timestamp of every file (default: the last commit's)
#
# Progress goes to stderr, the summary to stdout.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/tool.sh"

PLUGIN=vault-plugin-secrets-beyondidentity
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${VERSION:-}"
DIST="${DIST:-$ROOT/dist}"

say() { echo "release.sh: $*" >&2; }
die() { say "$*"; exit 1; }

check_version() {
    [[ "$VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] ||
        die "VERSION=$VERSION is not v followed by a semantic version, e.g. make release VERSION=v1.2.3"
}

# check_dist: GoReleaser empties the folder it builds into (--clean), so
# refuse one that holds anything but an earlier release.
check_dist() {
    [[ -d "$DIST" && -n "$(ls -A "$DIST")" && ! -f "$DIST/SHA256SUMS" && ! -f "$DIST/artifacts.json" ]] &&
        die "DIST=$DIST is not empty and holds no earlier release: refusing to delete what is in it"
    return 0
}

# source_date: the time every file in the release carries, from the last
# commit unless SOURCE_DATE_EPOCH says otherwise, so that two builds of one
# commit are byte for byte the same.
source_date() {
    if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
        SOURCE_DATE_EPOCH="$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)"
    fi
    # GNU date, then BSD date.
    SOURCE_DATE="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null ||
        date -u -r "$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
    export SOURCE_DATE_EPOCH SOURCE_DATE
}

# config: .goreleaser.yaml, or a copy building into DIST.
config() {
    if [[ "$DIST" == "$ROOT/dist" ]]; then
        echo "$ROOT/.goreleaser.yaml"
        return
    fi
    local copy="$WORK/goreleaser.yaml"
    sed "s|^dist: dist\$|dist: $DIST|" "$ROOT/.goreleaser.yaml" >"$copy"
    grep -qx "dist: $DIST" "$copy" || die "cannot set dist: in a copy of .goreleaser.yaml"
    echo "$copy"
}

# sha256 [ARGS...]: sha256sum, or shasum where that is missing (macOS).
sha256() {
    if command -v sha256sum >/dev/null; then sha256sum "$@"; else shasum -a 256 "$@"; fi
}

# images: packs the binary of each linux archive into a container image
# beside it, dated like every other file, and lists the image's archive
# and config in SHA256SUMS, which stays sorted by name as GoReleaser wrote it.
images() {
    local arch base
    (cd "$ROOT" && go build -o "$WORK/ociimage" ./scripts/ociimage) >&2
    for arch in amd64 arm64; do
        base="${PLUGIN}_${VERSION#v}_linux_${arch}"
        mkdir -p "$WORK/$arch"
        tar -xzf "$DIST/$base.tar.gz" -C "$WORK/$arch" "$PLUGIN"
        say "packing the container image $PLUGIN:${VERSION#v} for linux/$arch"
        "$WORK/ociimage" -binary "$WORK/$arch/$PLUGIN" -arch "$arch" -ref "$PLUGIN:${VERSION#v}" \
            -created "$SOURCE_DATE" -out "$DIST/$base.image.tar" -config "$DIST/$base.image.json" >/dev/null
    done
    (cd "$DIST" && { cat SHA256SUMS; sha256 ./*.image.tar ./*.image.json | sed 's|  \./|  |'; } |
        LC_ALL=C sort -k2 >"$WORK/SHA256SUMS" && mv "$WORK/SHA256SUMS" SHA256SUMS)
}

# summary: per archive in SHA256SUMS, its SHA-256 and that of the binary
# inside, and the register line that goes with it; per image, its ID.
summary() {
    local sum name platform binary
    printf 'Release %s in %s\n' "$VERSION" "$DIST"
    printf 'Check it with: (cd %s && sha256sum -c SHA256SUMS)\n' "$DIST"
    while read -r sum name; do
        if [[ "$name" == *.image.json ]]; then
            platform="${name#"${PLUGIN}_${VERSION#v}_"}"
            platform="${platform%.image.json}"
            printf '\n%s container image %s:%s\n' "${platform/_//}" "$PLUGIN" "${VERSION#v}"
            printf '  archive %s  (docker load -i it)\n' "${name%.json}.tar"
            printf '  image ID %s  (the sha256 of %s)\n' "$sum" "$name"
            printf '  vault plugin register -sha256=%s -oci_image=%s -version=%s secret %s\n' "$sum" "$PLUGIN" "$VERSION" "$PLUGIN"
            continue
        fi
        [[ "$name" == *.tar.gz ]] || continue
        platform="${name#"${PLUGIN}_${VERSION#v}_"}"
        platform="${platform%.tar.gz}"
        binary="$(tar -xzOf "$DIST/$name" "$PLUGIN" | sha256 | cut -d' ' -f1)"
        printf '\n%s\n' "${platform/_//}"
        printf '  archive %s\n          sha256 %s  (listed in SHA256SUMS)\n' "$name" "$sum"
        printf '  binary  %s, unpacked from it\n          sha256 %s  (what Vault checks)\n' "$PLUGIN" "$binary"
        printf '  vault plugin register -sha256=%s -version=%s -command=%s-%s secret %s\n' "$binary" "$VERSION" "$PLUGIN" "$VERSION" "$PLUGIN"
    done <"$DIST/SHA256SUMS"
}

check_version
case "$DIST" in /*) ;; *) DIST="$PWD/$DIST" ;; esac
check_dist
GORELEASER="$(cached_tool goreleaser github.com/goreleaser/goreleaser/v2)"
source_date
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
CONFIG="$(config)"
say "building $VERSION with $("$GORELEASER" --version 2>/dev/null | awk '/GitVersion/ { print "GoReleaser " $2 }') into $DIST (files dated $SOURCE_DATE)"
(cd "$ROOT" && VERSION="$VERSION" "$GORELEASER" release --snapshot --clean --config "$CONFIG") >&2
images
(cd "$DIST" && sha256 -c SHA256SUMS >/dev/null) || die "the archives in $DIST do not match its SHA256SUMS"
summary
