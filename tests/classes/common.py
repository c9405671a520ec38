"""Shared by the issue-10 class attacks and benign twins (tests/classes.rs).

Every script takes a scratch directory made by `ward simulate --init` and refuses to
run anywhere else: the directory must hold the simulator's marker (a regular file, not
a symlink) and sit on a filesystem other than `/` (the tests use loop-mounted images).
Victims are the files the marker lists plus the ones `prep.py` listed in `.ward-classes.json`;
every path is checked to resolve inside the scratch directory before it is touched.
"""

import hashlib
import json
import os
import random
import stat
import struct
import sys
import zlib

MARKER = ".ward-sim.json"
EXTRA = ".ward-classes.json"


def die(msg):
    print(f"refusing: {msg}", file=sys.stderr)
    sys.exit(3)


def scratch(arg):
    """The validated, canonical scratch directory."""
    root = os.path.realpath(arg)
    if not os.path.isabs(root) or root == "/":
        die(f"{arg!r} is not a scratch directory")
    try:
        st = os.lstat(os.path.join(root, MARKER))
    except OSError as e:
        die(f"{root} has no marker {MARKER}: {e}")
    if not stat.S_ISREG(st.st_mode):
        die(f"{root}/{MARKER} is not a regular file")
    if os.stat(root).st_dev == os.stat("/").st_dev:
        die(f"{root} is on the root filesystem, not a scratch filesystem")
    return root


def inside(root, path):
    """`path` if it resolves inside `root` (its directory may not be a symlink out)."""
    real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    if not real.startswith(root + os.sep):
        die(f"{path} is outside {root}")
    return real


def subdir(root, name):
    """The directory `root/name` if it resolves inside `root`."""
    real = os.path.realpath(os.path.join(root, name))
    if not real.startswith(root + os.sep) or not os.path.isdir(real):
        die(f"{name} is not a directory inside {root}")
    return real


def listed(root):
    with open(os.path.join(root, MARKER)) as f:
        files = list(json.load(f)["files"])
    try:
        with open(os.path.join(root, EXTRA)) as f:
            files += json.load(f)["files"]
    except FileNotFoundError:
        pass
    return files


def victims(root, exts=None, min_size=1, shuffle=None):
    """Existing regular files listed for `root` (absolute paths), optionally only these
    extensions and at least `min_size` bytes; in marker order, or shuffled by a seed (so
    the first victims mix formats)."""
    out = []
    for rel in listed(root):
        p = inside(root, os.path.join(root, rel))
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_size < min_size:
            continue
        if exts is not None and not any(p.endswith("." + e) for e in exts):
            continue
        out.append(p)
    if shuffle is not None:
        random.Random(shuffle).shuffle(out)
    return out


def encrypt(data):
    """A one-time-pad keystream: indistinguishable from AES-CTR output."""
    key = os.urandom(len(data))
    return bytes(a ^ b for a, b in zip(data, key))


def overwrite(path, data):
    """In place: open without O_TRUNC, write from 0, cut to the new length."""
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def sha256(path):
    return hashlib.sha256(read(path)).hexdigest()


def write_result(result_path, root, paths):
    """Record the SHA-256 of each output (relative to root) for the test to re-check after
    ward had time to react: a reverted or quarantined output shows up there."""
    if result_path is None:
        return
    out = {os.path.relpath(p, root): sha256(p) for p in paths}
    with open(result_path, "w") as f:
        json.dump(out, f)


# --- PNG -------------------------------------------------------------------------------


def png_chunks(data):
    """[(type, body)] of a PNG, or None."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    out, o = [], 8
    while o + 8 <= len(data):
        n, t = struct.unpack(">I4s", data[o : o + 8])
        out.append((t, data[o + 8 : o + 8 + n]))
        o += 12 + n
    return out


def png_build(chunks):
    out = bytearray(b"\x89PNG\r\n\x1a\n")
    for t, body in chunks:
        out += struct.pack(">I", len(body)) + t + body
        out += struct.pack(">I", zlib.crc32(t + body) & 0xFFFFFFFF)
    return bytes(out)


# --- zip -------------------------------------------------------------------------------


def zip_local_entries(data):
    """[(header_start, data_start, data_end)] of each local file entry, or None."""
    out, o = [], 0
    while data[o : o + 4] == b"PK\x03\x04":
        flags = struct.unpack("<H", data[o + 6 : o + 8])[0]
        csize = struct.unpack("<I", data[o + 18 : o + 22])[0]
        nlen, xlen = struct.unpack("<HH", data[o + 26 : o + 30])
        start = o + 30 + nlen + xlen
        if flags & 8:
            return None  # data descriptor: sizes are after the data
        out.append((o, start, start + csize))
        o = start + csize
    return out or None
