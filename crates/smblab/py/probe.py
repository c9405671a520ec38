"""Can this client get in? Connects (bounded by --connect-timeout), lists the share root, and
prints one "summary" line: ok, error, elapsed_ms. Exit status 0 either way."""
import time

import smbclient

from common import Smb, base_args, emit, error_text, start_watchdog


def main():
    p = base_args(__doc__)
    a = p.parse_args()
    t0 = time.monotonic()
    st = {"type": "summary", "ok": False, "error": None, "elapsed_ms": None}

    def expire():
        st["error"] = "deadline"
        st["elapsed_ms"] = (time.monotonic() - t0) * 1000
        emit(st)

    start_watchdog(a.deadline_secs, expire)
    smb = Smb(a)
    try:
        smb.connect()
        smbclient.listdir(smb.root)
        st["ok"] = True
    except Exception as e:  # noqa: BLE001
        st["error"] = error_text(e)
    st["elapsed_ms"] = (time.monotonic() - t0) * 1000
    emit(st)


if __name__ == "__main__":
    main()
