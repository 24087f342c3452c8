#!/usr/bin/env bash
# Shared by demo.sh and dev.sh: start a fake (or use a real) Beyond Identity,
# start a Vault dev server with the plugin in its plugin directory, register,
# mount and configure the plugin. Source it; it defines functions only.

PLUGIN=vault-plugin-secrets-beyondidentity
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${VERSION:-v0.1.0}"
BIN="$ROOT/bin"
STEP=0

# Output helpers: a numbered step, the command it runs, and its output
# indented, with long tokens and checksums shortened.
if [[ -t 1 ]]; then BOLD=$'\033[1m' DIM=$'\033[2m' PLAIN=$'\033[0m'; else BOLD="" DIM="" PLAIN=""; fi
step() { STEP=$((STEP + 1)); printf '\n%s==> %d. %s%s\n' "$BOLD" "$STEP" "$*" "$PLAIN"; }
note() { printf '    %s\n' "$*"; }
shorten() { sed -E 's/([A-Za-z0-9_-]{10})[A-Za-z0-9_.-]{30,}/\1…/g; s/^/    /'; }
# show DISPLAY CMD...: prints DISPLAY as the command, runs CMD, shows output.
show() {
    local display="$1"; shift
    printf '    %s$ %s%s\n' "$DIM" "$display" "$PLAIN"
    "$@" 2>&1 | shorten
}
# show_output DISPLAY FILE: prints DISPLAY as the command and FILE as its
# output, for a command whose raw output the script also needs.
show_output() {
    printf '    %s$ %s%s\n' "$DIM" "$1" "$PLAIN"
    shorten <"$2"
}
die() { printf '\nerror: %s\n' "$*" >&2; exit 1; }

# on_exit CLEANUP: runs the function CLEANUP once when the script ends,
# however it ends: at its end, on an error, on Ctrl-C (exit 130) or on
# SIGTERM (exit 143). From the first signal on, INT and TERM are ignored,
# so that a second one cannot end CLEANUP half done: a SIGTERM to make's
# process group reaches the script twice, once from the group's signal and
# once from make, which forwards SIGTERM to its child, and the second one
# used to run the trap's exit inside CLEANUP (while it waited for Vault to
# stop, or before its first command), leaving the work folder behind.
on_exit() {
    trap "trap '' INT TERM; $1" EXIT
    trap "trap '' INT TERM; exit 130" INT
    trap "trap '' INT TERM; exit 143" TERM
}

# FAKE_TENANT_ID is the tenant of the fake's application. make dev's banner
# exports it as BEYOND_IDENTITY_TENANT_ID, so a shell that pasted the banner
# names it; it is never a real tenant.
FAKE_TENANT_ID=tenant-demo

# real_tenant reports whether the BEYOND_IDENTITY_* variables name a real
# tenant: set, and not the fake's.
real_tenant() {
    [[ -n "${BEYOND_IDENTITY_TENANT_ID:-}" && "$BEYOND_IDENTITY_TENANT_ID" != "$FAKE_TENANT_ID" ]]
}

# require_tenant_vars fails unless every variable a real tenant needs is set.
require_tenant_vars() {
    local missing=() name
    for name in TENANT_ID REALM_ID APPLICATION_ID CLIENT_ID CLIENT_SECRET; do
        [[ -n "$(printenv "BEYOND_IDENTITY_$name" || true)" ]] || missing+=("BEYOND_IDENTITY_$name")
    done
    ((${#missing[@]} == 0)) || die "BEYOND_IDENTITY_TENANT_ID is set, so a real tenant is used, but ${missing[*]} is not"
}

# free_port prints a loopback port nothing listens on, from $1 upwards.
free_port() {
    local port
    for ((port = $1; port < $1 + 100; port++)); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    die "no free port in $1..$(($1 + 99))"
}

# wait_for WHAT CMD...: polls CMD for up to 30 seconds.
wait_for() {
    local what="$1" i; shift
    for ((i = 0; i < 300; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "timed out waiting for $what"
}

# start_fake WORKDIR: runs the fake Beyond Identity on a free port, with an
# application whose ids are BI_*. The demo secret is not a secret.
start_fake() {
    local work="$1"
    BI_TENANT_ID="$FAKE_TENANT_ID" BI_REALM_ID=realm-demo BI_APPLICATION_ID=app-demo BI_CLIENT_ID=client-demo
    BI_CLIENT_SECRET="fake-bi-demo-secret-not-a-secret" BI_REGION="" BI_SCOPES="identities:read,groups:read"
    FAKE_BI_CLIENT_SECRET="$BI_CLIENT_SECRET" "$BIN/fake-beyondidentity" -listen 127.0.0.1:0 \
        -tenant-id "$BI_TENANT_ID" -realm-id "$BI_REALM_ID" -application-id "$BI_APPLICATION_ID" \
        -client-id "$BI_CLIENT_ID" -ready-file "$work/fake.url" >"$work/fake.out" 2>"$work/fake.log" &
    FAKE_PID=$!
    wait_for "the fake Beyond Identity" test -s "$work/fake.url"
    BI_AUTH_URL="$(cat "$work/fake.url")"
}

# use_real_tenant sets BI_* from the BEYOND_IDENTITY_* variables;
# BEYOND_IDENTITY_AUTH_URL, when set, names a private deployment's auth host.
use_real_tenant() {
    require_tenant_vars
    BI_AUTH_URL="${BEYOND_IDENTITY_AUTH_URL:-}" BI_TENANT_ID="$BEYOND_IDENTITY_TENANT_ID" BI_REALM_ID="$BEYOND_IDENTITY_REALM_ID"
    BI_APPLICATION_ID="$BEYOND_IDENTITY_APPLICATION_ID" BI_CLIENT_ID="$BEYOND_IDENTITY_CLIENT_ID"
    BI_CLIENT_SECRET="$BEYOND_IDENTITY_CLIENT_SECRET" BI_REGION="${BEYOND_IDENTITY_REGION:-us}"
    BI_SCOPES="${BEYOND_IDENTITY_SCOPES:-identities:read}"
}

# choose_beyond_identity WORKDIR: uses the real tenant the BEYOND_IDENTITY_*
# variables name, or else starts the fake, and says which.
choose_beyond_identity() {
    local work="$1"
    if real_tenant; then
        use_real_tenant
        step "Use the real Beyond Identity tenant $BI_TENANT_ID (region $BI_REGION)"
    else
        step "Start the fake Beyond Identity server (set BEYOND_IDENTITY_* to use a real tenant)"
        start_fake "$work"
        note "$(cat "$work/fake.out"); its log: $work/fake.log"
    fi
}

# start_vault WORKDIR PORT: runs a Vault dev server whose plugin directory
# holds the freshly built plugin, and exports VAULT_ADDR and VAULT_TOKEN.
start_vault() {
    local work="$1" port="$2"
    mkdir -p "$work/plugins"
    cp "$BIN/$PLUGIN" "$work/plugins/$PLUGIN"
    printf 'plugin_directory = "%s"\n' "$work/plugins" >"$work/vault.hcl"
    export VAULT_ADDR="http://127.0.0.1:$port" VAULT_TOKEN=root
    unset VAULT_NAMESPACE VAULT_FORMAT
    "$VAULT" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$port" \
        -config="$work/vault.hcl" >"$work/vault.log" 2>&1 &
    VAULT_PID=$!
    wait_for "the Vault server" "$VAULT" status
}

# register_and_mount WORKDIR: registers the plugin with its checksum and
# version and mounts it at beyondidentity/ with a ceiling that fits 90-day
# tokens.
register_and_mount() {
    local work="$1" sha
    sha="$(sha256sum "$work/plugins/$PLUGIN" | cut -d' ' -f1)"
    step "Register the plugin with its checksum and version"
    show "vault plugin register -sha256=$sha -version=$VERSION secret $PLUGIN" \
        "$VAULT" plugin register -sha256="$sha" -version="$VERSION" secret "$PLUGIN"
    show "vault plugin info -version=$VERSION secret $PLUGIN" \
        "$VAULT" plugin info -version="$VERSION" secret "$PLUGIN"
    step "Mount it at beyondidentity/, with a lease ceiling that fits 90-day tokens"
    show "vault secrets enable -path=beyondidentity -max-lease-ttl=2160h $PLUGIN" \
        "$VAULT" secrets enable -path=beyondidentity -max-lease-ttl=2160h "$PLUGIN"
}

# configure WORKDIR: writes config (the secret through a file, so it is in
# no process list) and an example role.
configure() {
    local work="$1" target=(region="$BI_REGION")
    [[ -z "$BI_AUTH_URL" ]] || target=(auth_url="$BI_AUTH_URL")
    (umask 077 && printf '%s' "$BI_CLIENT_SECRET" >"$work/client-secret")
    step "Store the application's client credentials (write-only secret, checked with a test token)"
    show "vault write beyondidentity/config tenant_id=$BI_TENANT_ID realm_id=$BI_REALM_ID application_id=$BI_APPLICATION_ID client_id=$BI_CLIENT_ID client_secret=@client-secret ${target[*]}" \
        "$VAULT" write beyondidentity/config tenant_id="$BI_TENANT_ID" realm_id="$BI_REALM_ID" \
        application_id="$BI_APPLICATION_ID" client_id="$BI_CLIENT_ID" client_secret=@"$work/client-secret" "${target[@]}"
    show "vault read beyondidentity/config" "$VAULT" read beyondidentity/config
    step "Define a role: the scopes and lifetime of its tokens"
    show "vault write beyondidentity/roles/demo scopes=$BI_SCOPES ttl=1h" \
        "$VAULT" write beyondidentity/roles/demo scopes="$BI_SCOPES" ttl=1h
}

# stop_all WORKDIR stops what start_fake and start_vault started, and
# copies their logs into LOG_DIR when it is set (WORKDIR goes away next).
stop_all() {
    local work="$1"
    [[ -z "${VAULT_PID:-}" ]] || { kill "$VAULT_PID" 2>/dev/null || true; wait "$VAULT_PID" 2>/dev/null || true; }
    [[ -z "${FAKE_PID:-}" ]] || { kill "$FAKE_PID" 2>/dev/null || true; wait "$FAKE_PID" 2>/dev/null || true; }
    VAULT_PID="" FAKE_PID=""
    if [[ -n "${LOG_DIR:-}" ]]; then
        cp "$work"/*.log "$LOG_DIR"/ 2>/dev/null || true
    fi
}
