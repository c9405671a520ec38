#!/usr/bin/env bash
# Install what ward's tests and demo need, idempotently (only what is missing), including
# the BPF, Samba and console prerequisites (scripts/setup-{bpf,smb,console}.sh).
# Debian/Ubuntu; needs root for apt-get. Safe to run repeatedly.
set -euo pipefail

# rust-toolchain.toml pins 1.95.0: where rustup only knows that compiler as `stable`, name
# it (no download: these machines cannot fetch toolchains).
tc="${RUSTUP_HOME:-$HOME/.rustup}/toolchains"
if [ -d "$tc/stable-x86_64-unknown-linux-gnu" ] && [ ! -e "$tc/1.95.0-x86_64-unknown-linux-gnu" ] &&
  "$tc/stable-x86_64-unknown-linux-gnu/bin/rustc" --version 2>/dev/null | grep -q '^rustc 1\.95\.0 '; then
  ln -s "$tc/stable-x86_64-unknown-linux-gnu" "$tc/1.95.0-x86_64-unknown-linux-gnu"
fi

# tool -> Debian package
declare -A NEED=(
  [mkfs.ext4]=e2fsprogs
  [mkfs.xfs]=xfsprogs
  [mkfs.btrfs]=btrfs-progs
  [losetup]=mount
  [openssl]=openssl
  [gpg]=gnupg
  [gzip]=gzip
  [tar]=tar
  [git]=git
  [sqlite3]=sqlite3
  [zstd]=zstd
  [xz]=xz-utils
  [zip]=zip
  [rsync]=rsync
)

missing=()
for tool in "${!NEED[@]}"; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ] && [ ! -x "/sbin/$tool" ]; then
    missing+=("${NEED[$tool]}")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 2
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The parts with their own installers: BPF build tools (clang, libbpf), the Samba lab
# (samba, smbclient, nftables, smbprotocol, test users), the console's tests (PostgreSQL,
# Chromium). Each installs only what is missing.
here="$(dirname "$0")"
bash "$here/setup-bpf.sh"
bash "$here/setup-smb.sh"
bash "$here/setup-console.sh"

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest" >&2
  cargo install --locked cargo-nextest >/dev/null
fi
