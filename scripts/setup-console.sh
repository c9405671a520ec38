#!/usr/bin/env bash
# Install what the ward-console tests need, idempotently (only what is missing):
#   * Debian's postgresql (server binaries initdb/pg_ctl under /usr/lib/postgresql/*/bin;
#     the tests start their own throw-away cluster on 127.0.0.1 in a temp dir, never the
#     system one, and stop it afterwards),
#   * Debian's chromium and chromium-driver (the web UI test drives headless Chromium
#     through chromedriver's WebDriver API),
#   * a dedicated system user `ward-pgtest` (no home, no login shell): PostgreSQL refuses to
#     run as root, so when the tests run as root they run initdb/pg_ctl as this user.
# Never starts or enables a daemon. Needs root. Safe to run repeatedly.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-console: needs root (it installs Debian packages and creates the user ward-pgtest)" >&2
  exit 2
fi

missing=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if ! command -v chromium >/dev/null 2>&1; then
  missing+=(chromium)
fi
if ! command -v chromedriver >/dev/null 2>&1; then
  missing+=(chromium-driver)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-console: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d-less containers without systemd as PID 1 start no daemon on install, and the
  # tests never use the system cluster anyway.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! id -u ward-pgtest >/dev/null 2>&1; then
  echo "setup-console: creating system user ward-pgtest" >&2
  useradd --system --no-create-home --shell /usr/sbin/nologin ward-pgtest
fi

echo "setup-console: postgresql, chromium, chromedriver and ward-pgtest present" >&2
