#!/usr/bin/env bash
# make dev: the demo's environment (fake or real Beyond Identity, Vault dev
# server, plugin registered, mounted and configured, role "demo") left
# running for hands-on use until Ctrl-C. make register swaps in a rebuilt
# plugin without restarting Vault.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/beyondidentity-dev.XXXXXX")"
state="$ROOT/.dev/env"
cleanup() {
    stop_all "$work"
    rm -rf "$work"
    rm -f "$state"
    echo "stopped."
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Build the plugin ($VERSION) and the fake Beyond Identity server"
show "make build VERSION=$VERSION" make -s -C "$ROOT" build VERSION="$VERSION"
VAULT="$("$ROOT/scripts/vault.sh")"

choose_beyond_identity "$work"

step "Start a Vault dev server with the plugin in its plugin directory"
start_vault "$work" "$(free_port 8200)"
note "Vault's log: $work/vault.log"
register_and_mount "$work"
configure "$work"

mkdir -p "$(dirname "$state")"
cat >"$state" <<ENV
VAULT_ADDR=$VAULT_ADDR
VAULT_TOKEN=$VAULT_TOKEN
VAULT=$VAULT
PLUGIN_DIR=$work/plugins
ENV

# The PATH line only when the vault command would be another binary (or
# none): with Vault already on PATH it is noise.
path_line=""
if [ "$(command -v vault 2>/dev/null || true)" != "$VAULT" ]; then
    path_line="    export PATH=\"$(dirname "$VAULT"):\$PATH\"   # the Vault binary this environment runs is named $(basename "$VAULT")
"
fi

cat <<MSG

${BOLD}Ready.${PLAIN} In another shell:

    export VAULT_ADDR=$VAULT_ADDR VAULT_TOKEN=$VAULT_TOKEN
${path_line}    $(basename "$VAULT") read beyondidentity/creds/demo

After changing the code: make register (rebuilds, re-registers and reloads the plugin).
Press Ctrl-C here to stop everything.
MSG
wait "$VAULT_PID"
