"""Shared helpers of ward-smblab's SMB clients (smbprotocol's high-level smbclient API).

Every script prints one JSON object per line on stdout ("type" names it) and ends with a
"summary" line. A watchdog bounds every run (--deadline-secs): a hung operation never hangs
the test that started the script.
"""
import argparse
import datetime
import json
import os
import sys
import threading
import time

import smbclient


def now_ns():
    return time.time_ns()


def rfc3339(ns):
    return datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc).isoformat()


_lock = threading.Lock()


def emit(obj):
    with _lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def base_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--server", required=True)
    p.add_argument("--share", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--connect-timeout", type=float, default=3.0)
    p.add_argument("--deadline-secs", type=float, default=120.0,
                   help="hard bound on the whole run; the summary is printed and the script exits")
    p.add_argument("--request-timeout", type=float, default=10.0,
                   help="a request unanswered this long is a connection failure (like a real "
                        "SMB client's timeout; smbprotocol alone can wait forever)")
    return p


def bound_requests(seconds):
    """Make every smbprotocol request wait at most `seconds` for its answer. smbprotocol's
    receive() waits without a bound by default, and a request sent just as the server
    closed the connection is never answered (its worker thread is gone)."""
    import smbprotocol.connection as conn
    orig = conn.Connection.receive
    if getattr(orig, "_ward_bounded", False):
        return

    def receive(self, request, wait=True, timeout=None, resolve_symlinks=True):
        if timeout is None:
            timeout = seconds
        return orig(self, request, wait=wait, timeout=timeout, resolve_symlinks=resolve_symlinks)

    receive._ward_bounded = True
    conn.Connection.receive = receive


class Smb:
    """A connection to one share, with reconnect."""

    def __init__(self, args):
        self.args = args
        bound_requests(args.request_timeout)
        self.root = "\\\\%s\\%s" % (args.server, args.share)

    def path(self, rel=""):
        rel = rel.replace("/", "\\").strip("\\")
        return self.root + ("\\" + rel if rel else "")

    def connect(self):
        smbclient.register_session(
            self.args.server,
            username=self.args.user,
            password=self.args.password,
            connection_timeout=self.args.connect_timeout,
            auth_protocol="ntlm",
        )

    def drop(self):
        try:
            smbclient.reset_connection_cache(fail_on_error=False)
        except Exception:  # noqa: BLE001 - a dead connection may fail in any way
            pass

    def reconnect(self):
        self.drop()
        self.connect()

    def rel(self, full):
        return full[len(self.root):].lstrip("\\").replace("\\", "/")

    def walk_files(self):
        out = []
        for dirpath, _dirs, files in smbclient.walk(self.root):
            for f in files:
                out.append(self.rel(dirpath + "\\" + f))
        return sorted(out)

    # Opens share read/write/delete with other opens (as Windows applications mostly do), so
    # two clients touching one file never fail each other with a sharing violation.
    def read(self, rel):
        with smbclient.open_file(self.path(rel), mode="rb", share_access="rwd") as f:
            return f.read()

    def write(self, rel, data, mode="wb"):
        with smbclient.open_file(self.path(rel), mode=mode, share_access="rwd") as f:
            f.write(data)


def start_watchdog(deadline_secs, on_expire):
    """After deadline_secs call on_expire() (prints a summary) and exit with status 3."""
    import faulthandler
    # Where it hung, on stderr, just before the deadline.
    faulthandler.dump_traceback_later(max(deadline_secs - 0.5, 0.1), exit=False)

    def run():
        time.sleep(deadline_secs)
        try:
            on_expire()
        finally:
            sys.stdout.flush()
            os._exit(3)
    t = threading.Thread(target=run, daemon=True)
    t.start()


def error_text(e):
    return "%s: %s" % (type(e).__name__, str(e)[:300])


# NT statuses that mean the session or connection is gone, not that one file was refused.
_SESSION_GONE = {0xC00000C9, 0xC0000203, 0xC000035C, 0xC000020C, 0xC000020D, 0xC0000128}


def is_file_error(e):
    """True when the server refused one operation on one file (access denied, not found,
    sharing violation...) while the session is fine; False for connection-level failures."""
    from smbprotocol.exceptions import SMBOSError
    if isinstance(e, SMBOSError):
        return getattr(e, "ntstatus", None) not in _SESSION_GONE
    return False
