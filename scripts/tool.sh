# Shared by the scripts that run a tool pinned in a tools module of its own
# (tools/<name>/go.mod, never the plugin's): source it, then call
# cached_tool. It defines functions only.

# cached_tool NAME PACKAGE: prints the path of the tool built from PACKAGE
# in tools/NAME at the version its go.mod pins, building it once into the
# user's cache (a minute or a few on a cold Go cache) and reusing it after.
cached_tool() {
    local name="$1" package="$2" root module version cache binary partial
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    module="$root/tools/$name"
    version="$(awk -v pkg="${package%%/cmd/*}" '$1 == pkg || $2 == pkg { print ($1 == "require" ? $3 : $2); exit }' "$module/go.mod")"
    [[ -n "$version" ]] || { echo "tool.sh: tools/$name/go.mod does not pin ${package%%/cmd/*}" >&2; return 1; }
    cache="${XDG_CACHE_HOME:-$HOME/.cache}/vault-plugin-secrets-beyondidentity"
    binary="$cache/$name-$version"
    if [[ ! -x "$binary" ]]; then
        # Called inside $(...), where set -e does not hold: every step
        # checks itself, and an interrupted build leaves no partial file.
        mkdir -p "$cache" || return 1
        partial="$(mktemp "$cache/.$name-$version.XXXXXX")" || return 1
        trap 'rm -f "$partial"' INT TERM
        echo "tool.sh: building $name $version once into $binary" >&2
        if ! (cd "$module" && go mod download && go build -trimpath -o "$partial" "$package") >&2 ||
            ! chmod 0755 "$partial" || ! mv "$partial" "$binary"; then
            rm -f "$partial"
            trap - INT TERM
            return 1
        fi
        trap - INT TERM
    fi
    echo "$binary"
}
