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
    return p


class Smb:
    """A connection to one share, with reconnect."""

    def __init__(self, args):
        self.args = args
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

    def read(self, rel):
        with smbclient.open_file(self.path(rel), mode="rb") as f:
            return f.read()

    def write(self, rel, data, mode="wb"):
        with smbclient.open_file(self.path(rel), mode=mode) as f:
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
