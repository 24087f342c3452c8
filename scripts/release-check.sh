#!/usr/bin/env bash
# make release-check: builds the release twice, into two temporary folders,
# with the same code path as make release, and fails unless both give the
# same SHA256SUMS for every platform: archives and container images.
#
# The second build reuses Go's compile cache, so what this checks is all
# that differs between runs around the compiler: version and VCS stamping,
# build paths, linking, and the archives' timestamps, owners, modes and
# order. RELEASE_CHECK_COLD=1 gives the second build an empty Go build
# cache, to check the compiler's output too (minutes more on 2 cores).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PLATFORMS=(darwin_amd64 darwin_arm64 linux_amd64 linux_arm64)
VERSION=v0.0.0-reproducible

say() { echo "release-check.sh: $*" >&2; }
die() { say "$*"; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/release-check.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# build NAME [ENV...]: make release into $work/NAME.
build() {
    local name="$1"; shift
    say "build $name: $VERSION into $work/$name"
    env "$@" DIST="$work/$name" VERSION="$VERSION" "$ROOT/scripts/release.sh" >"$work/$name.summary"
}

build first
if [[ "${RELEASE_CHECK_COLD:-}" == 1 ]]; then
    build second GOCACHE="$work/gocache"
else
    build second
fi

for platform in "${PLATFORMS[@]}"; do
    grep -q "_${platform}.tar.gz\$" "$work/first/SHA256SUMS" || die "the release has no archive for $platform"
done
# The container images (their archives and configs, whose sums are the
# image IDs) are compared with the rest.
for arch in amd64 arm64; do
    for kind in image.tar image.json; do
        grep -q "_linux_${arch}.${kind}\$" "$work/first/SHA256SUMS" || die "the release has no linux/$arch $kind"
    done
done
if ! diff -u "$work/first/SHA256SUMS" "$work/second/SHA256SUMS" >&2; then
    die "two builds of the same source differ (above): the release is not reproducible"
fi
say "reproducible: both builds give the same SHA256SUMS for ${PLATFORMS[*]}"
cat "$work/first/SHA256SUMS"
