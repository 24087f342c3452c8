#!/usr/bin/env bash
# Prints the path of the Vault binary the tests and the demo run, getting it
# first when needed. Progress goes to stderr; only the path goes to stdout.
# It tries, in this order, and says which one it uses and why:
#
#   1. VAULT_BIN=/path/to/vault, or VAULT_BIN=vault (a command on PATH)
#   2. a vault on PATH, when it is a supported version (see MIN_VERSION)
#   3. the pinned version cached in the user's cache folder by an earlier run
#   4. the pinned version from HashiCorp's release site: the SHA-256 checked
#      against the published SHA256SUMS, and that file's signature against
#      HashiCorp's key (scripts/hashicorp.asc) when gpg is installed, all
#      before anything is unpacked; then cached
#   5. the pinned version built from source (tools/vault) into the cache, for
#      offline machines: about 20 minutes on 2 cores with cold Go caches
#
# A download that fails (offline, no build for this platform) falls through
# to the next step; a download that fails verification stops here, since
# that is what an attack looks like.
#
#   VAULT_RELEASES_URL      release site (default https://releases.hashicorp.com)
#   VAULT_RELEASE_KEY       armored public key the SHA256SUMS signature must be
#                           made with (default scripts/hashicorp.asc)
#   VAULT_NO_SOURCE_BUILD=1 fail instead of building from source (step 5)
set -euo pipefail

VAULT_VERSION=v1.21.0
# The oldest Vault this project supports, for plugin versioning (the plugin
# is registered with and reports its version) and event notifications,
# generally available from 1.16.
MIN_VERSION=1.16.0
# HashiCorp's release signing key (security@hashicorp.com): the only key
# accepted in scripts/hashicorp.asc.
HASHICORP_KEY_FINGERPRINT=C874011F0AB405110D02105534365D9472D7468F

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/vault-plugin-secrets-beyondidentity"
CACHED="$CACHE_DIR/vault-$VAULT_VERSION"
RELEASES_URL="${VAULT_RELEASES_URL:-https://releases.hashicorp.com}"

say() { echo "vault.sh: $*" >&2; }
die() { say "$*"; exit 1; }

# use PATH WHY: prints the chosen binary and stops.
use() {
    say "using $1 ($2)"
    echo "$1"
    exit 0
}

# version_of BINARY: prints the x.y.z[-pre][+meta] of `BINARY version`,
# whose first line reads "Vault v1.21.0 (...)", "Vault v1.19.3+ent (...)"
# or "Vault v1.20.0-rc1 (...)"; prints nothing when it reads otherwise.
version_of() {
    "$1" version 2>/dev/null | head -n1 |
        sed -nE 's/^Vault v([0-9]+\.[0-9]+\.[0-9]+[-+.0-9A-Za-z]*).*/\1/p'
}

# supported VERSION: whether VERSION is MIN_VERSION or later. A pre-release
# comes before its release (1.16.0-rc1 < 1.16.0); build metadata such as
# +ent does not count.
supported() {
    local version="${1%%+*}" core pre major minor patch min_major min_minor min_patch
    core="${version%%-*}"
    pre=""
    [[ "$version" == *-* ]] && pre=yes
    IFS=. read -r major minor patch <<<"$core"
    IFS=. read -r min_major min_minor min_patch <<<"$MIN_VERSION"
    ((10#$major != 10#$min_major)) && { ((10#$major > 10#$min_major)); return; }
    ((10#$minor != 10#$min_minor)) && { ((10#$minor > 10#$min_minor)); return; }
    ((10#$patch != 10#$min_patch)) && { ((10#$patch > 10#$min_patch)); return; }
    [[ -z "$pre" ]]
}

# Step 1: VAULT_BIN, as given.
from_vault_bin() {
    [[ -n "${VAULT_BIN:-}" ]] || return 0
    local bin="$VAULT_BIN"
    if [[ "$bin" != */* ]]; then
        bin="$(command -v "$bin" || true)"
        [[ -n "$bin" ]] || die "VAULT_BIN=$VAULT_BIN is not on PATH"
    fi
    [[ -x "$bin" ]] || die "VAULT_BIN=$VAULT_BIN is not an executable file"
    use "$bin" "VAULT_BIN; $("$bin" version | head -n1)"
}

# Step 2: a vault on PATH, unless it is too old or says no version.
from_path() {
    local bin version
    bin="$(command -v vault || true)"
    [[ -n "$bin" ]] || return 0
    version="$(version_of "$bin")"
    if [[ -z "$version" ]]; then
        say "skipping $bin on PATH: 'vault version' did not print a version"
    elif supported "$version"; then
        use "$bin" "Vault v$version on PATH; $MIN_VERSION or later is supported"
    else
        say "skipping $bin on PATH: Vault v$version is older than $MIN_VERSION, the oldest this plugin supports"
    fi
}

# Step 3: what an earlier run downloaded or built.
from_cache() {
    [[ -x "$CACHED" ]] || return 0
    use "$CACHED" "Vault $VAULT_VERSION cached by an earlier run"
}

# platform: prints HashiCorp's name for this machine, e.g. linux_amd64.
platform() {
    local os arch
    os="$(uname -s | tr '[:upper:]' '[:lower:]')"
    case "$(uname -m)" in
        x86_64 | amd64) arch=amd64 ;;
        aarch64 | arm64) arch=arm64 ;;
        armv*) arch=arm ;;
        i?86) arch=386 ;;
        *) arch="$(uname -m)" ;;
    esac
    echo "${os}_${arch}"
}

# helper ARGS...: runs scripts/vaultfetch, built once per run, for the steps
# a fresh machine may have no tool for (unzip, sometimes curl and wget).
helper() {
    if [[ ! -x "$WORK/vaultfetch" ]]; then
        (cd "$ROOT" && go build -o "$WORK/vaultfetch" ./scripts/vaultfetch) >&2
    fi
    "$WORK/vaultfetch" "$@"
}

# fetch URL FILE: downloads with a short connect timeout, so an offline
# machine falls through in seconds, and no overall one, since the archive is
# about 150 MB; a stalled transfer is given up after 30 seconds.
fetch() {
    if command -v curl >/dev/null; then
        curl -fsSL --connect-timeout 3 --speed-limit 1024 --speed-time 30 -o "$2" "$1"
    elif command -v wget >/dev/null; then
        wget -q --connect-timeout=3 --read-timeout=30 --tries=1 -O "$2" "$1"
    else
        helper get -connect-timeout 3s "$1" "$2"
    fi
}

sha256_of() {
    if command -v sha256sum >/dev/null; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null; then
        shasum -a 256 "$1" | cut -d' ' -f1
    else
        helper sha256 "$1"
    fi
}

# verify_signature SIG FILE: checks SIG is a good signature of FILE by the
# release key, with a keyring that holds that key alone. No import and no
# gpg-agent: the key file is only converted into a keyring, so the user's
# own keys and settings play no part.
verify_signature() {
    local sig="$1" file="$2" key="${VAULT_RELEASE_KEY:-$ROOT/scripts/hashicorp.asc}" home="$WORK/gnupg"
    local gpg=(gpg --batch --no-autostart --homedir "$home" --no-default-keyring --keyring "$home/release.gpg")
    [[ -r "$key" ]] || die "cannot read the release key $key"
    mkdir -m 700 "$home"
    gpg --batch --homedir "$home" --dearmor --output "$home/release.gpg" "$key" 2>"$WORK/gpg.log" ||
        { cat "$WORK/gpg.log" >&2; die "cannot read the release key $key"; }
    # The committed key must be HashiCorp's: a swapped key file would make
    # the check below prove nothing.
    if [[ -z "${VAULT_RELEASE_KEY:-}" ]] &&
        ! "${gpg[@]}" --with-colons --list-keys 2>/dev/null | grep -q "^fpr:::::::::$HASHICORP_KEY_FINGERPRINT:"; then
        die "REFUSED: $key is not HashiCorp's release key $HASHICORP_KEY_FINGERPRINT; nothing was installed"
    fi
    if ! "${gpg[@]}" --trust-model always --status-fd 3 --verify "$sig" "$file" \
        3>"$WORK/gpg.status" 2>"$WORK/gpg.log" ||
        ! grep -q '^\[GNUPG:\] VALIDSIG ' "$WORK/gpg.status"; then
        cat "$WORK/gpg.log" >&2
        die "REFUSED: $(basename "$sig") is not a good signature of $(basename "$file") by the key in $key; nothing was installed"
    fi
    say "signature of $(basename "$file") checked with $key"
}

# Step 4: HashiCorp's official release archive, verified before it is
# unpacked, installed into the cache with a rename so that no other run ever
# sees half a binary.
from_release() {
    local version="${VAULT_VERSION#v}" zip sums base expected actual
    zip="vault_${version}_$(platform).zip"
    sums="vault_${version}_SHA256SUMS"
    base="$RELEASES_URL/vault/$version"
    mkdir -p "$CACHE_DIR"
    # In the cache folder, so that the final rename stays on one file system.
    WORK="$(mktemp -d "$CACHE_DIR/.download.XXXXXX")"
    trap 'rm -rf "$WORK"' EXIT

    say "downloading $base/$zip"
    if ! fetch "$base/$sums" "$WORK/$sums" || ! fetch "$base/$zip" "$WORK/$zip"; then
        say "could not download Vault $VAULT_VERSION from $RELEASES_URL (offline, or no build for $(platform))"
        rm -rf "$WORK"
        return 0
    fi
    if command -v gpg >/dev/null; then
        fetch "$base/$sums.sig" "$WORK/$sums.sig" || die "REFUSED: could not download $base/$sums.sig to check $sums; nothing was installed"
        verify_signature "$WORK/$sums.sig" "$WORK/$sums"
    else
        say "gpg is not installed: checking the SHA-256 only, not HashiCorp's signature of $sums"
    fi

    expected="$(awk -v name="$zip" '$2 == name { print $1 }' "$WORK/$sums")"
    [[ -n "$expected" ]] || die "REFUSED: $sums has no line for $zip; nothing was installed"
    actual="$(sha256_of "$WORK/$zip")"
    if [[ "$actual" != "$expected" ]]; then
        die "REFUSED: $zip does not match $sums: expected SHA-256 $expected, got $actual; nothing was installed"
    fi
    say "SHA-256 of $zip matches $sums"

    helper unzip "$WORK/$zip" vault "$WORK/vault"
    chmod 0755 "$WORK/vault"
    mv -f "$WORK/vault" "$CACHED"
    use "$CACHED" "downloaded from $RELEASES_URL and verified; $("$CACHED" version | head -n1)"
}

# Step 5: build from the pinned tools module, for machines without network
# access to the release site.
from_source() {
    if [[ "${VAULT_NO_SOURCE_BUILD:-}" == 1 ]]; then
        die "no Vault found, and VAULT_NO_SOURCE_BUILD=1 forbids building it from source"
    fi
    mkdir -p "$CACHE_DIR"
    local partial
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
    [[ -s "$partial" ]] || die "the build produced no binary"
    chmod 0755 "$partial"
    mv "$partial" "$CACHED"
    use "$CACHED" "built from source; $("$CACHED" version | head -n1)"
}

from_vault_bin
from_path
from_cache
from_release
from_source
