#!/usr/bin/env bash
# make demo: the main job end to end. Builds the plugin, starts a fake
# Beyond Identity (or uses a real tenant when BEYOND_IDENTITY_TENANT_ID and
# friends are set) and a Vault dev server, registers, mounts and configures
# the plugin, reads a token, renders it with Vault Agent, revokes the
# leases and shows that Beyond Identity saw the revocation, then stops
# everything it started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/beyondidentity-demo.XXXXXX")"
cleanup() {
    stop_all "$work"
    rm -rf "$work"
}
on_exit cleanup

step "Build the plugin ($VERSION), the fake Beyond Identity server and bi-introspect"
show "make build VERSION=$VERSION" make -s -C "$ROOT" build VERSION="$VERSION"

step "Find a Vault server (scripts/vault.sh says which and why: VAULT_BIN, PATH, cache, release site or a build)"
VAULT="$("$ROOT/scripts/vault.sh")"
show "vault version" "$VAULT" version

choose_beyond_identity "$work"

step "Start a Vault dev server with the plugin in its plugin directory"
start_vault "$work" "$(free_port 18200)"
note "VAULT_ADDR=$VAULT_ADDR (dev mode, root token 'root', log in $work/vault.log)"

register_and_mount "$work"
configure "$work"

step "Read a token: a Vault lease that is a Beyond Identity access token"
"$VAULT" read beyondidentity/creds/demo >"$work/creds.txt"
show_output "vault read beyondidentity/creds/demo" "$work/creds.txt"
awk '$1 == "access_token" { print $2 }' "$work/creds.txt" >"$work/tokens"
[[ -s "$work/tokens" ]] || die "the creds response held no token"

step "Render it with Vault Agent, using a token that may read only creds/demo"
printf 'path "beyondidentity/creds/demo" {\n  capabilities = ["read"]\n}\n' >"$work/policy.hcl"
show "vault policy write beyondidentity-demo policy.hcl" "$VAULT" policy write beyondidentity-demo "$work/policy.hcl"
"$VAULT" token create -policy=beyondidentity-demo -ttl=1h -field=token >"$work/agent-token"
cat >"$work/agent.hcl" <<HCL
vault { address = "$VAULT_ADDR" }
exit_after_auth = true
auto_auth {
  method "token_file" {
    config = { token_file_path = "$work/agent-token" }
  }
}
template {
  contents    = "{{ with secret \"beyondidentity/creds/demo\" }}{{ .Data.access_token }}{{ end }}"
  destination = "$work/beyondidentity-token"
  perms       = "0600"
}
HCL
note "template: {{ with secret \"beyondidentity/creds/demo\" }}{{ .Data.access_token }}{{ end }}"
printf '    %s$ vault agent -config=agent.hcl   (exit_after_auth: render once, then exit)%s\n' "$DIM" "$PLAIN"
if ! env -u VAULT_TOKEN -u VAULT_ADDR "$VAULT" agent -config="$work/agent.hcl" -log-level=warn >"$work/agent.log" 2>&1 ||
    [[ ! -s "$work/beyondidentity-token" ]]; then
    shorten <"$work/agent.log"
    die "Vault Agent rendered nothing"
fi
{ cat "$work/beyondidentity-token"; echo; } >"$work/rendered.txt"
show_output "cat beyondidentity-token" "$work/rendered.txt"
cat "$work/rendered.txt" >>"$work/tokens"

introspect() {
    local target=(-region "$BI_REGION")
    [[ -z "$BI_AUTH_URL" ]] || target=(-auth-url "$BI_AUTH_URL")
    BEYOND_IDENTITY_CLIENT_SECRET="$BI_CLIENT_SECRET" "$BIN/bi-introspect" -tenant-id "$BI_TENANT_ID" \
        -realm-id "$BI_REALM_ID" -application-id "$BI_APPLICATION_ID" -client-id "$BI_CLIENT_ID" \
        "${target[@]}" <"$work/tokens"
}
step "Ask Beyond Identity about both tokens (RFC 7662 introspection)"
show "bi-introspect < tokens" introspect

step "Revoke the role's leases: the plugin revokes each token at Beyond Identity"
show "vault lease revoke -sync -prefix beyondidentity/creds/demo" "$VAULT" lease revoke -sync -prefix beyondidentity/creds/demo
show "bi-introspect < tokens" introspect
if ! real_tenant; then
    note "what the fake Beyond Identity saw (the first revoke is the config's 60-second test token):"
    show "grep op=revoke fake.log" grep 'op=revoke' "$work/fake.log"
fi

step "Done: stopping Vault$(real_tenant || echo ' and the fake Beyond Identity')"
