#!/usr/bin/env bash
# Install what ward's Samba tests and `ward demo --smb` need, idempotently (only what is
# missing): Debian's samba, smbclient, nftables, iproute2; PyPI's smbprotocol (the Python SMB
# client the lab's scripts use); and two dedicated Unix test users, ward-smb1 and ward-smb2
# (no home, no login shell). Never touches /etc/samba/smb.conf (the lab has its own config)
# and never starts a daemon. Needs root. Safe to run repeatedly.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-smb: needs root (it installs packages and creates the test users ward-smb1, ward-smb2)" >&2
  exit 2
fi

# tool -> Debian package
declare -A NEED=(
  [smbd]=samba
  [smbstatus]=samba
  [testparm]=samba-common-bin
  [smbcontrol]=samba
  [pdbedit]=samba
  [smbclient]=smbclient
  [nft]=nftables
  [ip]=iproute2
)

missing=()
for tool in "${!NEED[@]}"; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ] && [ ! -x "/sbin/$tool" ]; then
    missing+=("${NEED[$tool]}")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  # de-duplicate
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "setup-smb: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends keeps winbind etc. out; policy-rc.d-less containers start no
  # daemon because systemd is not PID 1, which is what we want (the lab runs its own smbd).
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Python client library, for the interpreter the lab will use (python3 on PATH; the lab
# honours WARD_SMBLAB_PYTHON to pick another).
PY="${WARD_SMBLAB_PYTHON:-python3}"
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "setup-smb: installing python3 and pip" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3 python3-pip >/dev/null
  PY=python3
fi
if ! "$PY" -c 'import smbclient, smbprotocol' >/dev/null 2>&1; then
  echo "setup-smb: installing smbprotocol (PyPI) for $("$PY" -c 'import sys; print(sys.executable)')" >&2
  if ! "$PY" -m pip --version >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  # Debian's system python refuses global pip installs (PEP 668) unless told otherwise.
  "$PY" -m pip install -q smbprotocol 2>/dev/null \
    || "$PY" -m pip install -q --break-system-packages smbprotocol
fi

# Dedicated Unix users for the lab's Samba accounts. Only these two names are ever created;
# an existing user of that name is left as it is.
NOLOGIN=/usr/sbin/nologin
[ -x "$NOLOGIN" ] || NOLOGIN=/bin/false
for u in ward-smb1 ward-smb2; do
  if ! id -u "$u" >/dev/null 2>&1; then
    echo "setup-smb: creating test user $u" >&2
    useradd --system --no-create-home --home-dir /nonexistent --shell "$NOLOGIN" \
      --comment "ward Samba lab test user" "$u"
  fi
done

echo "setup-smb: ready (smbd $(/usr/sbin/smbd --version 2>/dev/null | awk '{print $2}'), smbprotocol $("$PY" -c 'import importlib.metadata as m; print(m.version("smbprotocol"))'))" >&2
