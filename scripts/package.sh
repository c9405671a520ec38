#!/usr/bin/env bash
# Build ward's Debian package: release binary, man pages and shell completions (generated
# by the binary itself from its clap definition: `ward __generate DIR`), then `cargo deb`.
#
# usage: scripts/package.sh [--check] [--no-build]
#   --check     after building, check the package (CI): its file list and conffiles,
#               `systemd-analyze verify` of its unit, the extracted binary (--version,
#               check-config of the shipped config), man page, bash completion, and a
#               real dpkg install/reinstall/remove/purge into a scratch root
#   --no-build  reuse target/release/ward (must be current)
# Output: target/debian/ward_VERSION-1_ARCH.deb (path printed last) and the debug
# symbols, target/debian/ward-dbgsym_VERSION-1_ARCH.ddeb.
# Exit: 0 success, 1 a step failed (the message says which and what to do), 2 usage.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

check=0
build=1
for a in "$@"; do
    case "$a" in
        --check) check=1 ;;
        --no-build) build=0 ;;
        -h | --help)
            sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "package.sh: unknown argument '$a' (see --help)" >&2
            exit 2
            ;;
    esac
done

say() { echo "package: $*" >&2; }
fail() {
    echo "package: FAILED: $*" >&2
    exit 1
}

target_dir=$(cargo metadata --no-deps --format-version 1 |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
ward="$target_dir/release/ward"
gen="$repo/target/package" # the assets in [package.metadata.deb] name this path

if [ "$build" = 1 ]; then
    say "cargo build --release -p ward"
    cargo build --release -p ward || fail "the release build failed (see above)"
fi
[ -x "$ward" ] || fail "$ward does not exist: run without --no-build"

version=$("$ward" --version) || fail "'ward --version' failed"
say "built: $version"

rm -rf "$gen"
mkdir -p "$gen"
if ! "$ward" __generate "$gen" 2>"$gen/generate.err"; then
    cat "$gen/generate.err" >&2
    fail "'ward __generate DIR' failed: the ward binary must provide this hidden subcommand \
(writes DIR/man/*.1 with clap_mangen and DIR/completions/{ward.bash,_ward,ward.fish} with \
clap_complete; see packaging/README.md)"
fi
for f in man/ward.1 completions/ward.bash completions/_ward completions/ward.fish; do
    [ -s "$gen/$f" ] || fail "'ward __generate' did not write $f"
done
gzip -9n "$gen"/man/*.1

if ! cargo deb --version >/dev/null 2>&1; then
    say "installing cargo-deb (cargo install --locked cargo-deb)"
    cargo install --locked cargo-deb || fail "cannot install cargo-deb"
fi
# The binary is stripped into the package; its debug info (line tables, for backtraces)
# goes to ward-dbgsym_*.ddeb beside it. --check builds with lighter compression (--fast).
fast=()
[ "$check" = 1 ] && fast=(--fast)
say "cargo deb --no-build --dbgsym ${fast[*]}"
deb_out=$(cargo deb --no-build -p ward --dbgsym "${fast[@]}" --output "$target_dir/debian/" \
    2>"$gen/deb.err") || {
    cat "$gen/deb.err" >&2
    fail "cargo deb failed (see above)"
}
deb=$(grep '\.deb$' <<<"$deb_out" | tail -1)
[ -f "$deb" ] || fail "cargo deb did not say where the package is (got '$deb_out')"

if [ "$check" = 1 ]; then
    say "checking $deb"
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT

    # 1. The file list.
    dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|' >"$scratch/files"
    for f in /usr/bin/ward /etc/ward/ward.toml /usr/share/doc/ward/examples/ward.toml \
        /etc/logrotate.d/ward /usr/lib/systemd/system-generators/ward-generator \
        /usr/share/man/man1/ward.1.gz \
        /usr/share/bash-completion/completions/ward /usr/share/zsh/vendor-completions/_ward \
        /usr/share/fish/vendor_completions.d/ward.fish; do
        grep -qx "$f" "$scratch/files" || fail "$f is missing from the package"
    done
    unit=$(grep -E '^/(usr/)?lib/systemd/system/ward\.service$' "$scratch/files") ||
        fail "the systemd unit is missing from the package"
    # 2. Conffiles: an upgrade must keep the admin's config.
    dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles >"$scratch/conffiles" 2>/dev/null ||
        fail "the package has no conffiles"
    for f in /etc/ward/ward.toml /etc/logrotate.d/ward; do
        grep -qx "$f" "$scratch/conffiles" || fail "$f is not a conffile"
    done

    # 3. Extract and run what was packaged.
    root="$scratch/root"
    mkdir -p "$root"
    dpkg-deb -x "$deb" "$root"
    got=$("$root/usr/bin/ward" --version) || fail "the packaged binary does not run"
    [ "$got" = "$version" ] || fail "packaged binary says '$got', built one says '$version'"
    out=$("$root/usr/bin/ward" check-config "$root/etc/ward/ward.toml" 2>&1) ||
        fail "the shipped /etc/ward/ward.toml does not pass 'ward check-config': $out"
    if command -v man >/dev/null; then
        MANWIDTH=80 man -l "$root/usr/share/man/man1/ward.1.gz" 2>&1 >/dev/null | grep . &&
            fail "the man page has rendering warnings (above)"
    fi
    bash -c "source '$root/usr/share/bash-completion/completions/ward' && complete -p ward" \
        >/dev/null || fail "the bash completion does not load"
    if grep -q '__watchdog\|__generate' "$root/usr/share/bash-completion/completions/ward"; then
        say "WARNING: the completions offer hidden subcommands (__watchdog, __generate): \
generate them from a command without the hidden subcommands (see packaging/README.md)"
    fi

    # 3b. The systemd generator: the protected paths of a config become ReadWritePaths=
    #     in a drop-in, which the unit check below then includes.
    if "$root/usr/bin/ward" __systemd-generator --help >/dev/null 2>&1; then
        gcfg="$scratch/gen.toml"
        printf 'paths = ["/srv/share", "/data/Scans 2024"]\n' >"$gcfg"
        chmod 600 "$gcfg"
        gdir="$root/etc/systemd/system"
        mkdir -p "$gdir"
        "$root/usr/bin/ward" __systemd-generator --config "$gcfg" "$gdir" "$gdir" "$gdir" ||
            fail "ward __systemd-generator failed"
        grep -qx 'ReadWritePaths="-/data/Scans 2024"' "$gdir/ward.service.d/50-ward-paths.conf" ||
            fail "the generator did not write the protected paths into ward.service.d"
    else
        say "WARNING: ward has no __systemd-generator subcommand: paths outside the unit's \
ReadWritePaths will not be restorable under systemd (see packaging/README.md)"
    fi

    # 4. The unit, against the packaged binary (systemd need not be running). Host units
    #    are copied in for its dependencies (local-fs.target ...). Any output is a finding.
    mkdir -p "$root/usr/lib/systemd"
    cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/" 2>/dev/null || true
    [ "$unit" = /usr/lib/systemd/system/ward.service ] ||
        cp "$root$unit" "$root/usr/lib/systemd/system/ward.service"
    verify=$(systemd-analyze verify --man=no --root="$root" \
        /usr/lib/systemd/system/ward.service 2>&1) ||
        fail "systemd-analyze verify: $verify"
    [ -z "$verify" ] || fail "systemd-analyze verify: $verify"
    # 5. A real dpkg install into a scratch root (maintainer scripts run outside a chroot
    #    with DPKG_ROOT set, so deb-systemd-helper records its state there, not on this
    #    host); an admin's edit of the conffile survives a reinstall; remove keeps the
    #    conffile, purge removes it.
    if [ "$(id -u)" -ne 0 ]; then
        say "check passed (dpkg install test skipped: it needs root)"
        echo "$deb"
        exit 0
    fi
    inst="$scratch/inst"
    mkdir -p "$inst/var/lib/dpkg/info" "$inst/var/lib/dpkg/updates"
    touch "$inst/var/lib/dpkg/status" "$inst/var/lib/dpkg/available"
    dpkg_r() { dpkg --root="$inst" --force-script-chrootless --force-depends --log=/dev/null "$@"; }
    dpkg_r -i "$deb" >"$scratch/dpkg.log" 2>&1 || fail "dpkg -i into a scratch root: $(cat "$scratch/dpkg.log")"
    dpkg_r -s ward 2>/dev/null | grep -q '^Status: install ok installed' ||
        fail "dpkg does not list ward as installed in the scratch root"
    "$inst/usr/bin/ward" check-config "$inst/etc/ward/ward.toml" >/dev/null 2>&1 ||
        fail "the installed ward rejects the installed /etc/ward/ward.toml"
    echo "# edited by the admin" >>"$inst/etc/ward/ward.toml"
    dpkg_r -i "$deb" >"$scratch/dpkg.log" 2>&1 || fail "reinstall: $(cat "$scratch/dpkg.log")"
    tail -1 "$inst/etc/ward/ward.toml" | grep -q 'edited by the admin' ||
        fail "a reinstall overwrote the admin's /etc/ward/ward.toml"
    dpkg_r -r ward >"$scratch/dpkg.log" 2>&1 || fail "dpkg -r: $(cat "$scratch/dpkg.log")"
    [ ! -e "$inst/usr/bin/ward" ] && [ -f "$inst/etc/ward/ward.toml" ] ||
        fail "dpkg -r should remove the binary and keep the config"
    dpkg_r -P ward >"$scratch/dpkg.log" 2>&1 || fail "dpkg -P: $(cat "$scratch/dpkg.log")"
    [ ! -e "$inst/etc/ward/ward.toml" ] || fail "dpkg -P should remove /etc/ward/ward.toml"
    say "check passed: files, conffiles, --version, check-config, man page, completions, unit, dpkg -i/-r/-P in a scratch root"
fi
echo "$deb"
