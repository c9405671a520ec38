"""Can this client get in? Connects (bounded by --connect-timeout), lists the share root, and
prints one "summary" line: ok, error, elapsed_ms, names (the root's entries) and, with
--open REL, opened (whether REL could be opened for reading). Exit status 0 either way."""
import time

import smbclient

from common import Smb, base_args, emit, error_text, start_watchdog


def main():
    p = base_args(__doc__)
    p.add_argument("--open", default="", help="also try to read this path of the share")
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
        st["names"] = sorted(smbclient.listdir(smb.root))
        st["ok"] = True
        if a.open:
            try:
                smb.read(a.open)
                st["opened"] = True
            except Exception as e:  # noqa: BLE001
                st["opened"] = False
                st["open_error"] = error_text(e)
    except Exception as e:  # noqa: BLE001
        st["error"] = error_text(e)
    st["elapsed_ms"] = (time.monotonic() - t0) * 1000
    emit(st)


if __name__ == "__main__":
    main()
