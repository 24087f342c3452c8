#!/usr/bin/env bash
# make register: rebuild the plugin, put it in the running make dev
# environment's plugin directory, re-register it with its new checksum and
# reload it, without restarting Vault.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

state="$ROOT/.dev/env"
work_file="$(mktemp)"
trap 'rm -f "$work_file" "$work_file.rows"' EXIT
[[ -f "$state" ]] || die "no running make dev environment ($state is missing): start one with make dev"
# shellcheck disable=SC1090
source "$state"
export VAULT_ADDR VAULT_TOKEN
"$VAULT" status >/dev/null 2>&1 || die "the make dev Vault at $VAULT_ADDR does not answer"

step "Rebuild the plugin ($VERSION)"
show "make build VERSION=$VERSION" make -s -C "$ROOT" build VERSION="$VERSION"

step "Swap the binary in the plugin directory (a rename, so the running plugin is not disturbed)"
cp "$BIN/$PLUGIN" "$PLUGIN_DIR/.$PLUGIN.new"
mv "$PLUGIN_DIR/.$PLUGIN.new" "$PLUGIN_DIR/$PLUGIN"
sha="$(sha256sum "$PLUGIN_DIR/$PLUGIN" | cut -d' ' -f1)"

step "Re-register it with its new checksum and reload it"
show "vault plugin register -sha256=$sha -version=$VERSION secret $PLUGIN" \
    "$VAULT" plugin register -sha256="$sha" -version="$VERSION" secret "$PLUGIN"
show "vault plugin reload -type=secret -plugin=$PLUGIN" \
    "$VAULT" plugin reload -type=secret -plugin="$PLUGIN"
"$VAULT" read sys/mounts/beyondidentity >"$work_file" 2>&1 || true
grep -E '^running_(plugin_version|sha256)' "$work_file" >"$work_file.rows" || true
show_output "vault read sys/mounts/beyondidentity   (running version and checksum)" "$work_file.rows"
