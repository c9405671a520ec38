"""An honest SMB client: every --interval seconds writes a handover note, reads it back and
verifies it, for --seconds. Counts failed operations (the target is 0): an exception, a
mismatch, or an operation slower than --op-timeout. Lines: "start", "failure", "summary"
(ops, failed, max_latency_ms)."""
import os
import socket
import threading
import time

from common import Smb, base_args, emit, error_text, now_ns, start_watchdog


def main():
    p = base_args(__doc__)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--dir", default="", help="directory of the share for the notes")
    p.add_argument("--notes", type=int, default=1, help="rotate over this many note files")
    p.add_argument("--op-timeout", type=float, default=5.0)
    a = p.parse_args()
    tag = "%s-%d" % (socket.gethostname(), os.getpid())
    d = a.dir.strip("/") or ("honest-" + tag)
    smb = Smb(a)
    st = {"type": "summary", "ops": 0, "failed": 0, "max_latency_ms": 0.0, "dir": d}
    busy = {"since": None}

    def expire():
        emit(dict(st, deadline_hit=True))

    start_watchdog(a.deadline_secs, expire)

    def op_watch():
        while True:
            time.sleep(0.05)
            s = busy["since"]
            if s is not None and time.monotonic() - s > a.op_timeout:
                st["failed"] += 1
                emit({"type": "failure", "error": "operation hung > %.1fs" % a.op_timeout,
                      "t_ns": now_ns()})
                expire()
                os._exit(1)

    threading.Thread(target=op_watch, daemon=True).start()

    smb.connect()
    import smbclient
    try:
        smbclient.makedirs(smb.path(d), exist_ok=True)
    except Exception as e:  # noqa: BLE001
        st["failed"] += 1
        emit({"type": "failure", "op": "mkdir", "error": error_text(e), "t_ns": now_ns()})
    emit({"type": "start", "t_ns": now_ns(), "dir": d})
    end = time.monotonic() + a.seconds
    i = 0
    while time.monotonic() < end:
        i += 1
        rel = "%s/handover-%d.txt" % (d, i % max(a.notes, 1))
        text = ("Handover note %d from %s at %s.\nBed 4: obs stable, next review 14:00.\n"
                "Bed 7: bloods sent, chase results.\n" % (i, tag, time.ctime())).encode()
        t0 = time.monotonic()
        busy["since"] = t0
        try:
            smb.write(rel, text)
            st["ops"] += 1
            back = smb.read(rel)
            st["ops"] += 1
            if back != text:
                raise ValueError("read back %d bytes, not what was written" % len(back))
        except Exception as e:  # noqa: BLE001
            st["failed"] += 1
            emit({"type": "failure", "op": i, "error": error_text(e), "t_ns": now_ns()})
            try:
                smb.reconnect()
            except Exception:  # noqa: BLE001
                pass
        busy["since"] = None
        st["max_latency_ms"] = max(st["max_latency_ms"], (time.monotonic() - t0) * 1000)
        left = a.interval - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)
    emit(st)


if __name__ == "__main__":
    main()
