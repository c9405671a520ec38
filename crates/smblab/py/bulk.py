"""Honest bulk work over SMB that must not look like ransomware.

--mode copy-in:     copy a local folder (--src, or generated text/CSV files) into --dir
--mode zip-folder:  read every file under --dir and write --dir.zip (deflate) beside it
--mode delete-old:  delete files under --dir whose mtime is older than --older-than-secs
--mode office-save: for each file under --dir, Word's save: write ~WRL0001.tmp with the edited
                    content, rename the original to ~WRL0002.tmp, rename the new one over the
                    original name, delete ~WRL0002.tmp (--style simple: temp + replace)
Lines: "done" per file, "failure", "summary" (files, failed)."""
import io
import os
import time
import zipfile

import smbclient

from common import Smb, base_args, emit, error_text, now_ns, start_watchdog


def generated(n):
    for i in range(n):
        if i % 2:
            body = "".join("%d,ward %d,%s,%d\n" % (j, i, "ABCDEF"[j % 6], j * 7) for j in range(80))
            yield "rota-%03d.csv" % i, ("id,name,shift,hours\n" + body).encode()
        else:
            body = ("Dear colleague,\nPatient %d was seen today. Plan: review in clinic.\n" % i) * 20
            yield "letter-%03d.txt" % i, body.encode()


def edit(data):
    if data[:2] == b"PK":
        try:
            src = zipfile.ZipFile(io.BytesIO(data))
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
                for item in src.infolist():
                    body = src.read(item.filename)
                    if item.filename.endswith("document.xml"):
                        body = body.replace(b"</w:body>", b"<w:p>edited</w:p></w:body>")
                    z.writestr(item, body)
            return out.getvalue()
        except zipfile.BadZipFile:
            pass
    return data + b"\nEdited %s.\n" % time.ctime().encode()


def main():
    p = base_args(__doc__)
    p.add_argument("--mode", required=True,
                   choices=["copy-in", "zip-folder", "delete-old", "office-save"])
    p.add_argument("--dir", default="bulk")
    p.add_argument("--src", default="")
    p.add_argument("--count", type=int, default=40)
    p.add_argument("--older-than-secs", type=float, default=0.0)
    p.add_argument("--style", choices=["word", "simple"], default="word")
    a = p.parse_args()
    smb = Smb(a)
    st = {"type": "summary", "mode": a.mode, "files": 0, "failed": 0}
    start_watchdog(a.deadline_secs, lambda: emit(dict(st, deadline_hit=True)))
    smb.connect()
    d = a.dir.strip("/")

    def under():
        return [f for f in smb.walk_files() if f.startswith(d + "/")]

    def step(rel, fn):
        try:
            fn()
            st["files"] += 1
            emit({"type": "done", "path": rel, "t_ns": now_ns()})
        except Exception as e:  # noqa: BLE001
            st["failed"] += 1
            emit({"type": "failure", "path": rel, "error": error_text(e), "t_ns": now_ns()})

    if a.mode == "copy-in":
        smbclient.makedirs(smb.path(d), exist_ok=True)
        if a.src:
            items = []
            for root, _dirs, files in os.walk(a.src):
                for f in files:
                    full = os.path.join(root, f)
                    items.append((os.path.relpath(full, a.src), full))
            for rel, full in sorted(items):
                def copy(rel=rel, full=full):
                    sub = os.path.dirname(rel)
                    if sub:
                        smbclient.makedirs(smb.path(d + "/" + sub), exist_ok=True)
                    with open(full, "rb") as f:
                        smb.write(d + "/" + rel, f.read())
                step(rel, copy)
        else:
            for name, body in generated(a.count):
                step(name, lambda name=name, body=body: smb.write(d + "/" + name, body))
    elif a.mode == "zip-folder":
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for rel in under():
                step(rel, lambda rel=rel: z.writestr(rel[len(d) + 1:], smb.read(rel)))
        step(d + ".zip", lambda: smb.write(d + ".zip", out.getvalue()))
    elif a.mode == "delete-old":
        cutoff = time.time() - a.older_than_secs
        for rel in under():
            if smbclient.stat(smb.path(rel)).st_mtime <= cutoff:
                step(rel, lambda rel=rel: smbclient.remove(smb.path(rel)))
    else:
        for rel in under():
            base = os.path.basename(rel)
            if base.startswith("~"):
                continue
            parent = os.path.dirname(rel)

            def save(rel=rel, parent=parent):
                new = edit(smb.read(rel))
                t1 = parent + "/~WRL0001.tmp"
                smb.write(t1, new)
                if a.style == "simple":
                    smbclient.replace(smb.path(t1), smb.path(rel))
                    return
                t2 = parent + "/~WRL0002.tmp"
                smbclient.rename(smb.path(rel), smb.path(t2))
                smbclient.rename(smb.path(t1), smb.path(rel))
                smbclient.remove(smb.path(t2))
            step(rel, save)
    emit(st)


if __name__ == "__main__":
    main()
