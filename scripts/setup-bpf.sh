#!/usr/bin/env bash
# Install what ward-bpf (crates/bpf) needs to build and test, idempotently (only what is
# missing). Debian/Ubuntu; needs root for apt-get. Safe to run repeatedly.
#   build: clang (compiles connect.bpf.c for the BPF target), linux-libc-dev (uapi headers),
#          libbpf-dev (bpf_helpers.h), and for the vendored libbpf that libbpf-sys builds:
#          make, a C compiler, pkg-config, libelf-dev, zlib1g-dev
#   tests: bpftool (checks nothing stays attached), iproute2 (ip netns), bash
set -euo pipefail

have_cmd() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
have_file() { [ -e "$1" ]; }
have_pc() { have_cmd pkg-config && pkg-config --exists "$1" 2>/dev/null; }

missing=()
have_cmd clang || missing+=(clang)
have_cmd make || missing+=(make)
have_cmd cc || missing+=(gcc)
have_cmd pkg-config || missing+=(pkg-config)
have_cmd bpftool || missing+=(bpftool)
have_cmd ip || missing+=(iproute2)
have_file /usr/include/linux/bpf.h || missing+=(linux-libc-dev)
have_file /usr/include/bpf/bpf_helpers.h || missing+=(libbpf-dev)
{ have_pc libelf || have_file /usr/include/libelf.h; } || missing+=(libelf-dev)
{ have_pc zlib || have_file /usr/include/zlib.h; } || missing+=(zlib1g-dev)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-bpf: missing packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 2
fi
echo "setup-bpf: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
