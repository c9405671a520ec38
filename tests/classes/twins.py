#!/usr/bin/env python3
"""Benign twins of issue 10's attack classes, against a ward-sim scratch directory only.

usage: twins.py prep-random|prep-blocks ROOT        (before ward starts: extra pre-existing
                                                     files, already random)
       twins.py VARIANT ROOT RESULT.json            (the workload; see VARIANTS)

A workload verifies its own outputs (every compressed file decompresses to what it
replaced, every archive lists what it took) and exits non-zero when one is wrong; it
writes the SHA-256 of its outputs to RESULT.json so the test can check, after ward had
time to react, that nothing was frozen, reverted or quarantined.
"""

import base64
import bz2
import csv
import gzip
import io
import json
import lzma
import os
import random
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    EXTRA,
    inside,
    overwrite,
    png_build,
    png_chunks,
    read,
    scratch,
    victims,
    write_result,
)

HERE = os.path.abspath(__file__)


def sh(cmd, root):
    subprocess.run(["sh", "-c", cmd], cwd=root, check=True)


def under(root, top, exts=None):
    return [p for p in victims(root, exts) if p.startswith(os.path.join(root, top) + os.sep)]


def check(cond, what):
    if not cond:
        sys.exit(f"verification failed: {what}")


# --- preparation (before ward starts) --------------------------------------------------------


def prep(root, names):
    os.makedirs(os.path.join(root, os.path.dirname(names[0][0])), exist_ok=True)
    for rel, size in names:
        p = inside(root, os.path.join(root, rel))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(os.urandom(size))
    with open(os.path.join(root, EXTRA), "w") as f:
        json.dump({"files": [rel for rel, _ in names]}, f)


def prep_random(root):
    """Key material and already-compressed/encrypted blobs spread over the departments."""
    names = [(f"keys/service_{i:02}.key", 32 + 97 * i) for i in range(8)]
    names += [(f"keys/tls_{i:02}.bin", 1024 * (i + 1)) for i in range(4)]
    names += [(f"referrals/2024/attachment_{i}.bin", 20000 + 3000 * i) for i in range(3)]
    names += [(f"finance/vault_{i}.dat", 9000 * (i + 1)) for i in range(3)]
    prep(root, names)


def prep_blocks(root):
    """A VM disk image and a database store that hold random data already."""
    prep(root, [("vm/disk0.img", 4 << 20), ("db/store.bin", 1 << 20), ("db/index.bin", 256 << 10)])


# --- 1. pipelines ---------------------------------------------------------------------------


def pipelines(root, out):
    produced = []
    sh("tar c referrals | gzip > referrals.tgz && rm -rf referrals", root)
    sh("tar czf rota.tgz rota && rm -rf rota", root)
    for t in ("referrals.tgz", "rota.tgz"):
        n = len(subprocess.run(["tar", "tzf", t], cwd=root, capture_output=True, check=True).stdout.splitlines())
        check(n > 3, f"{t} lists {n} entries")
        produced.append(os.path.join(root, t))
    sh("find logs finance -type f ! -name '*.gz' -print0 | xargs -0 -P4 -n1 gzip", root)
    sh(
        "find clinic-letters exports meetings -type f -print0 | "
        "xargs -0 -P4 -n1 sh -c 'gzip -c \"$1\" > \"$1.gz\" && rm -f -- \"$1\"' _",
        root,
    )
    # reader -> compressor -> deleter, the exact shape of the python attack
    py = sys.executable
    r = subprocess.Popen([py, HERE, "role-reader", root], stdout=subprocess.PIPE)
    c = subprocess.Popen([py, HERE, "role-compressor", root], stdin=r.stdout, stdout=subprocess.PIPE)
    d = subprocess.Popen([py, HERE, "role-deleter", root], stdin=c.stdout)
    r.stdout.close()
    c.stdout.close()
    check([p.wait() for p in (r, c, d)] == [0, 0, 0], "reader/compressor/deleter failed")
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(".gz"):
                p = os.path.join(dirpath, f)
                gzip.decompress(read(p))
                produced.append(p)
    check(len(produced) > 20, f"only {len(produced)} outputs")
    write_result(out, root, produced)


def role_reader(root):
    o = sys.stdout.buffer
    for p in under(root, "imaging") + under(root, "scans") + under(root, "apps"):
        data, name = read(p), p.encode()
        o.write(struct.pack("<II", len(name), len(data)) + name + data)
        o.flush()


def role_compressor(root):
    i, o = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = i.read(8)
        if len(head) < 8:
            return
        n, m = struct.unpack("<II", head)
        path = inside(root, i.read(n).decode())
        with open(path + ".gz", "wb") as f:
            f.write(gzip.compress(i.read(m)))
        o.write(path.encode() + b"\n")
        o.flush()


def role_deleter(root):
    for line in sys.stdin.buffer:
        os.unlink(inside(root, line.decode().rstrip("\n")))


# --- 2. armour of random data, text rewrites ----------------------------------------------


def armour(root, out):
    produced = []
    keys = victims(root, ["key", "bin", "dat"])
    check(len(keys) >= 10, "prep-random missing")
    for i, p in enumerate(keys):
        d = read(p)
        if i % 2 == 0:
            with open(p + ".hex", "w") as f:
                f.write(d.hex())
            produced.append(p + ".hex")
            with open(p + ".b32", "wb") as f:
                f.write(base64.b32encode(d))
            produced.append(p + ".b32")
        else:
            b = base64.encodebytes(d)
            overwrite(p, b"-----BEGIN PRIVATE KEY-----\n" + b + b"-----END PRIVATE KEY-----\n")
            produced.append(p)
    notes = victims(root, ["md", "txt"])
    sh("sed -i 's/patient/Patient/g; s/ward/Ward/g' " + " ".join(f"'{n}'" for n in notes), root)
    produced += notes
    for p in victims(root, ["csv"]):
        rows = list(csv.reader(io.StringIO(read(p).decode())))
        buf = io.StringIO()
        csv.writer(buf, delimiter=";", quoting=csv.QUOTE_ALL).writerows(rows)
        overwrite(p, buf.getvalue().encode())
        produced.append(p)
    write_result(out, root, produced)


# --- 3. legitimate edits of known formats ---------------------------------------------------


def rezip(path, edit):
    """Rewrite a zip in place with python's zipfile, passing each member through edit."""
    with zipfile.ZipFile(path) as z:
        members = [(i, z.read(i)) for i in z.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in members:
            z.writestr(info.filename, edit(info.filename, data))
    overwrite(path, buf.getvalue())
    zipfile.ZipFile(path).testzip()


def png_recompress(path, level, merge):
    chunks = png_chunks(read(path))
    check(chunks is not None, f"{path} is not PNG")
    raw = zlib.decompress(b"".join(b for t, b in chunks if t == b"IDAT"))
    z = zlib.compress(raw, level)
    idat = [z] if merge else [z[i : i + 8192] for i in range(0, len(z), 8192)]
    new, done = [], False
    for t, b in chunks:
        if t == b"IDAT":
            if not done:
                new += [(b"IDAT", part) for part in idat]
                done = True
        else:
            new.append((t, b))
    overwrite(path, png_build(new))
    got = png_chunks(read(path))
    check(zlib.decompress(b"".join(b for t, b in got if t == b"IDAT")) == raw, f"{path} pixels")


def edits(root, out):
    produced = []

    def amend(name, data):
        if name.endswith(".xml"):
            return data.replace(b"patient", b"service user").replace(b"</w:body>", b"<w:p><w:r><w:t>Amended.</w:t></w:r></w:p></w:body>")
        return data

    for p in victims(root, ["docx", "xlsx"]):
        rezip(p, amend)
        produced.append(p)
    for p in victims(root, ["png"]):
        png_recompress(p, 9, False)
        produced.append(p)
    for p in victims(root, ["csv"]):
        rows = list(csv.reader(io.StringIO(read(p).decode())))
        buf = io.StringIO()
        w = csv.writer(buf)
        for i, r in enumerate(rows):
            w.writerow(r + (["checked"] if i == 0 else ["yes"]))
        overwrite(p, buf.getvalue().encode())
        produced.append(p)
    for p in victims(root, ["txt", "md"]):
        with open(p, "a") as f:
            f.write("\nAddendum: reviewed at the MDT, no change to the plan.\n")
        produced.append(p)
    for p in victims(root, ["pdf"]):
        d = read(p)
        xref = d.rfind(b"startxref")
        prev = int(re.search(rb"startxref\s+(\d+)", d[xref:]).group(1))
        obj = b"\n99 0 obj\n<< /Title (Amended discharge summary) >>\nendobj\n"
        off = len(d) + 1
        upd = obj + b"xref\n99 1\n%010d 00000 n \ntrailer\n<< /Size 100 /Prev %d /Info 99 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (off, prev, len(d) + len(obj))
        with open(p, "ab") as f:
            f.write(upd)
        produced.append(p)
    write_result(out, root, produced)


# --- 4. block updates of random data, appends -----------------------------------------------


def blocks(root, out):
    rnd = random.Random(4)
    images = victims(root, ["img", "bin"])
    check(len(images) == 3, "prep-blocks missing")
    for _ in range(300):
        p = rnd.choice(images)
        size = os.path.getsize(p)
        with open(p, "r+b") as f:
            f.seek(rnd.randrange(0, size // 4096) * 4096)
            f.write(os.urandom(4096))
    logs = victims(root, ["log"])
    for i in range(20):
        for p in logs:
            with open(p, "a") as f:
                f.write(f"2024-06-01T10:{i:02}:00Z INFO job {i} finished in {rnd.randrange(90)} ms\n")
    for p in victims(root, ["sqlite"]):
        db = sqlite3.connect(p)
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        for t in tables:
            cols = [r[1] for r in db.execute(f"pragma table_info('{t}')")]
            rows = db.execute(f"select * from '{t}' limit 50").fetchall()
            q = ",".join("?" * len(cols))
            db.executemany(f"insert into '{t}' values ({q})", [tuple(None if c == 0 else v for c, v in enumerate(r)) for r in rows])
        db.commit()
        db.close()
    write_result(out, root, images + logs)


# --- 5. legitimate recompression -----------------------------------------------------------


def repack(root, out):
    produced = []
    zips = victims(root, ["docx", "xlsx", "zip"])
    for i, p in enumerate(zips):
        before = {}
        with zipfile.ZipFile(p) as z:
            before = {n: z.read(n) for n in z.namelist()}
        if i % 2 == 0:
            with tempfile.TemporaryDirectory() as t:
                subprocess.run(["unzip", "-q", p, "-d", t], check=True)
                subprocess.run(["zip", "-9", "-X", "-D", "-r", "-q", os.path.join(t, "new.zip"), "."], cwd=t, check=True)
                new = os.path.join(os.path.dirname(p), "." + os.path.basename(p) + ".tmp")
                shutil.copyfile(os.path.join(t, "new.zip"), new)
                os.replace(new, p)
        else:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
                for n, d in before.items():
                    z.writestr(n, d)
            overwrite(p, buf.getvalue())
        with zipfile.ZipFile(p) as z:
            check({n: z.read(n) for n in z.namelist()} == before, f"{p} members")
        produced.append(p)
    for p in victims(root, ["png"]):
        png_recompress(p, 9, True)
        produced.append(p)
    write_result(out, root, produced)


# --- 6. an application holding its files open -----------------------------------------------


def held_app(root, out):
    rnd = random.Random(6)
    data = victims(root, ["img", "bin"])
    logs = victims(root, ["log"])
    csvs = victims(root, ["csv"])
    check(len(data) == 3, "prep-blocks missing")
    fds = {p: os.open(p, os.O_RDWR) for p in data}
    fds.update({p: os.open(p, os.O_RDWR | os.O_APPEND) for p in logs + csvs})
    for i in range(40):
        for p in data:
            size = os.fstat(fds[p]).st_size
            os.pwrite(fds[p], os.urandom(4096), rnd.randrange(size // 4096) * 4096)
        for p in logs:
            os.write(fds[p], f"2024-06-01T11:{i % 60:02}:00Z INFO heartbeat {i}\n".encode())
        for p in csvs:
            os.write(fds[p], f"{i},added,by,app\n".encode())
        time.sleep(0.02)
    for fd in fds.values():
        os.close(fd)
    write_result(out, root, data + logs + csvs)


# --- 7. slow edits across process restarts --------------------------------------------------


def slow_edits(root, out):
    notes = victims(root, ["md", "txt", "csv"])
    logs = victims(root, ["log"])
    script = ""
    for i in range(6):
        batch = " ".join(f"'{p}'" for p in notes[2 * i : 2 * i + 2])
        script += f"{sys.executable} {HERE} role-append {root} {batch}\n"
        if i < len(logs):
            script += f"gzip -f '{logs[i]}'\n"
        script += "sleep 2\n"
    sh(script, root)
    produced = notes[:12] + [p + ".gz" for p in logs[:6]]
    for p in logs[:6]:
        gzip.decompress(read(p + ".gz"))
    write_result(out, root, produced)


def role_append(root, paths):
    for p in paths:
        with open(inside(root, p), "a") as f:
            f.write("\nSeen again in clinic; stable.\n")


# --- 8. verifiable compression ---------------------------------------------------------------
TS_DEFLATED = b"1.2.840.10008.1.2.1.99"


def dicom_meta(data):
    """[(group, elem, vr, value)] of the file meta group and the dataset offset."""
    check(data[128:132] == b"DICM", "not DICOM")
    out, o = [], 132
    while o + 8 <= len(data) and struct.unpack("<H", data[o : o + 2])[0] == 2:
        g, e = struct.unpack("<HH", data[o : o + 4])
        vr = data[o + 4 : o + 6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN"):
            n, h = struct.unpack("<I", data[o + 8 : o + 12])[0], 12
        else:
            n, h = struct.unpack("<H", data[o + 6 : o + 8])[0], 8
        out.append((g, e, vr, data[o + h : o + h + n]))
        o += h + n
    return out, o


def dicom_elem(g, e, vr, v):
    if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN"):
        return struct.pack("<HH", g, e) + vr + b"\0\0" + struct.pack("<I", len(v)) + v
    return struct.pack("<HH", g, e) + vr + struct.pack("<H", len(v)) + v


def dicom_deflate(data):
    """What a PACS archiver does to save space: transfer syntax Deflated Explicit VR LE,
    the dataset raw-deflated, the meta group rebuilt."""
    meta, end = dicom_meta(data)
    body = b"".join(
        dicom_elem(g, e, vr, TS_DEFLATED if e == 0x10 else v) for g, e, vr, v in meta if e != 0
    )
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    dataset = c.compress(data[end:]) + c.flush()
    return data[:132] + dicom_elem(2, 0, b"UL", struct.pack("<I", len(body))) + body + dataset


def dicom_inflate(new, old):
    meta, end = dicom_meta(new)
    check(any(e == 0x10 and v == TS_DEFLATED for _, e, _, v in meta), "not deflated")
    _, old_end = dicom_meta(old)
    return old[:old_end] + zlib.decompress(new[end:], -15)


def compress(root, out):
    hashes = {p: read(p) for p in victims(root)}
    check(len(victims(root, ["key", "bin", "dat"])) >= 10, "prep-random missing")
    sh("gzip -r referrals keys", root)
    sh("zstd -q --rm -r finance", root)
    sh("find logs -name '*.log' -exec xz {} +", root)
    sh("find rota meetings -type f -exec bzip2 {} +", root)
    # an archiver re-encoding image bodies in place: DICOM to Deflated Explicit VR Little
    # Endian (meta group kept, dataset raw-deflated), PNGs stored as zlib streams
    for p in under(root, "imaging", ["dcm"]):
        overwrite(p, dicom_deflate(read(p)))
    for p in under(root, "scans", ["png"]):
        overwrite(p, zlib.compress(read(p), 9))
    produced = []
    for p, d in hashes.items():
        for ext, dec in ((".gz", gzip.decompress), (".zst", None), (".xz", lzma.decompress), (".bz2", bz2.decompress), ("", None)):
            q = p + ext
            if not os.path.exists(q):
                continue
            got = read(q)
            if ext == ".zst":
                got = subprocess.run(["zstd", "-dc", q], capture_output=True, check=True).stdout
            elif dec:
                got = dec(got)
            elif p.endswith(".dcm"):
                got = dicom_inflate(got, d)
            elif got != d:
                got = zlib.decompress(got)
            check(got == d, f"{q} does not decompress to the original")
            produced.append(q)
            break
        else:
            sys.exit(f"verification failed: {p} has no output")
    write_result(out, root, produced)


VARIANTS = {
    "pipelines": pipelines,
    "armour": armour,
    "edits": edits,
    "blocks": blocks,
    "repack": repack,
    "held-app": held_app,
    "slow-edits": slow_edits,
    "compress": compress,
}


def main():
    if len(sys.argv) < 3:
        sys.exit(f"usage: {sys.argv[0]} VARIANT ROOT [RESULT]\nvariants: {', '.join(VARIANTS)}")
    name, root = sys.argv[1], scratch(sys.argv[2])
    if name == "prep-random":
        prep_random(root)
    elif name == "prep-blocks":
        prep_blocks(root)
    elif name == "role-reader":
        role_reader(root)
    elif name == "role-compressor":
        role_compressor(root)
    elif name == "role-deleter":
        role_deleter(root)
    elif name == "role-append":
        role_append(root, sys.argv[3:])
    elif name in VARIANTS:
        VARIANTS[name](root, sys.argv[3] if len(sys.argv) > 3 else None)
    else:
        sys.exit(f"unknown variant {name}")


if __name__ == "__main__":
    main()
