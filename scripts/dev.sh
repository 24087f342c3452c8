#!/usr/bin/env bash
# make dev: the demo's environment (fake or real Beyond Identity, Vault dev
# server, plugin registered, mounted and configured, role "demo") left
# running for hands-on use until Ctrl-C. make register swaps in a rebuilt
# plugin without restarting Vault.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/beyondidentity-dev.XXXXXX")"
state="$ROOT/.dev/env"
# The client secret and the environment file go first: nothing waits
# before they are gone.
cleanup() {
    rm -f "$state" "$work/client-secret"
    stop_all "$work"
    rm -rf "$work"
    echo "stopped."
}
on_exit cleanup

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

# The README's commands run as printed in a shell that pastes the export
# lines below: "vault" and "bi-introspect" on PATH (the cached Vault is named
# by its version), and the BEYOND_IDENTITY_* variables the README's config
# command and bi-introspect read, naming the fake (or the real tenant) this
# environment uses. The secret stays in its file: the banner names the file.
devbin="$ROOT/.dev/bin"
mkdir -p "$devbin"
ln -sfn "$(command -v "$VAULT")" "$devbin/vault"
ln -sfn "$BIN/bi-introspect" "$devbin/bi-introspect"
if [[ -n "$BI_AUTH_URL" ]]; then
    auth_comment="$(real_tenant && echo "your deployment's auth host" || echo "the fake Beyond Identity")"
else
    auth_comment="empty: the region's host"
fi
region_line=""
[[ -z "$BI_REGION" ]] || region_line="    export BEYOND_IDENTITY_REGION=$BI_REGION
"

cat <<MSG

${BOLD}Ready.${PLAIN} In another shell, paste these lines; the README's commands then work as printed there:

    export VAULT_ADDR=$VAULT_ADDR VAULT_TOKEN=$VAULT_TOKEN
    export PATH="$devbin:\$PATH"   # vault ($("$VAULT" version | sed -E 's/^Vault (v[^ ,]+).*/\1/')) and bi-introspect
    export BEYOND_IDENTITY_TENANT_ID=$BI_TENANT_ID BEYOND_IDENTITY_REALM_ID=$BI_REALM_ID
    export BEYOND_IDENTITY_APPLICATION_ID=$BI_APPLICATION_ID BEYOND_IDENTITY_CLIENT_ID=$BI_CLIENT_ID
${region_line}    export BEYOND_IDENTITY_AUTH_URL=$BI_AUTH_URL   # $auth_comment
    export BEYOND_IDENTITY_CLIENT_SECRET="\$(cat '$work/client-secret')"
    export VAULT_PLUGIN_DIR=$work/plugins

Then, for example:

    vault read beyondidentity/creds/demo

After changing the code: make register (rebuilds, re-registers and reloads the plugin).
Press Ctrl-C here to stop everything.
MSG
wait "$VAULT_PID"
