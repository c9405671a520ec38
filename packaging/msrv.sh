#!/usr/bin/env bash
# The real MSRV of the workspace, found with the one toolchain we have (no old compilers
# can be downloaded here), from three floors:
#   1. dependencies: the highest `rust-version` declared by any crate in the resolved
#      graph (normal and build dependencies of everything, dev-dependencies of our crates);
#   2. our code: clippy's `incompatible_msrv` lint, run with that version as MSRV, names
#      every standard-library item used that is newer (it prints "stable since X");
#   3. Cargo.lock format: version 4 needs cargo 1.78.
# Language features newer than the result are not detected by the lint (edition 2021
# limits them; let-chains, for example, need edition 2024).
#
# usage: packaging/msrv.sh           print the MSRV and how it was found
#        packaging/msrv.sh --check   also fail (exit 1) if Cargo.toml's rust-version differs
set -euo pipefail
cd "$(dirname "$0")/.."

meta=$(mktemp)
trap 'rm -f "$meta"' EXIT
cargo metadata --format-version 1 --filter-platform x86_64-unknown-linux-gnu >"$meta"

deps=$(python3 - "$meta" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
ws = set(m["workspace_members"])
pk = {p["id"]: p for p in m["packages"]}
seen, stack = set(), list(ws)
while stack:
    i = stack.pop()
    if i in seen:
        continue
    seen.add(i)
    for d in nodes[i]["deps"]:
        kinds = [k["kind"] for k in d["dep_kinds"]]
        if i in ws or any(k != "dev" for k in kinds):
            stack.append(d["pkg"])
def key(v):
    return tuple(int(x) for x in (v or "0").split("."))
best = max((pk[i] for i in seen if i not in ws), key=lambda p: key(p.get("rust_version")))
v = ".".join((best.get("rust_version") or "0").split(".")[:2])
print(v, best["name"], best["version"])
EOF
)
read -r dep_msrv dep_name dep_version <<<"$deps"
echo "dependencies: $dep_msrv ($dep_name $dep_version declares it)"

conf=$(mktemp -d)
trap 'rm -f "$meta"; rm -rf "$conf"' EXIT
echo "msrv = \"$dep_msrv.0\"" >"$conf/clippy.toml"
echo "code: clippy incompatible_msrv with MSRV $dep_msrv (checks the whole workspace)..." >&2
lint=$(CLIPPY_CONF_DIR="$conf" cargo clippy --workspace --all-targets --message-format short \
    -- -A clippy::all -W clippy::incompatible_msrv 2>&1 || true)
if grep -q '^error' <<<"$lint"; then
    grep '^error' <<<"$lint" >&2
    echo "msrv: the workspace does not build; fix that first" >&2
    exit 2
fi
code=$(grep -o 'stable since `[0-9.]*`' <<<"$lint" | grep -o '[0-9][0-9.]*' | sort -V | tail -1 || true)
if [ -n "$code" ]; then
    code=$(cut -d. -f1-2 <<<"$code")
    echo "code: $code, at:"
    grep "stable since \`$code" <<<"$lint" | cut -d: -f1-3 | sed 's/^/  /'
else
    echo "code: nothing newer than $dep_msrv"
fi

msrv=$(printf '%s\n' 1.78 "$dep_msrv" ${code:+"$code"} | sort -V | tail -1)
echo "MSRV: $msrv"
if [ "${1:-}" = "--check" ]; then
    declared=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -1)
    if [ "$declared" != "$msrv" ]; then
        echo "Cargo.toml says rust-version = \"$declared\": set it to \"$msrv\"" >&2
        exit 1
    fi
fi
