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
  [smbpasswd]=samba-common-bin
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
  # The lab runs its own smbd; a system smbd started by the package's init script would hold
  # *:445 and keep the lab from binding its veth addresses. A temporary policy-rc.d (the
  # standard Debian way) tells maintainer scripts not to start daemons; one that already
  # exists is left alone.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  # --no-install-recommends keeps winbind etc. out.
  status=0
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
  if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  if [ "$status" != 0 ]; then
    echo "setup-smb: apt-get install ${missing[*]} failed ($status)" >&2
    exit "$status"
  fi
fi

# A system smbd listening on every address would keep the lab from binding port 445 on its
# own addresses. Say so (it is not ours to stop).
if command -v ss >/dev/null 2>&1 && ss -Hltn 'sport = :445' 2>/dev/null | grep -qE '(\*|0\.0\.0\.0|\[::\]):445'; then
  echo "setup-smb: warning: something listens on *:445 (a system smbd?); the Samba lab needs port 445 on its own veth addresses" >&2
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
