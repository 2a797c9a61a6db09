#!/usr/bin/env python3
"""Resident memory of a TLS server holding idle mTLS connections.

Opens N (default 1 000) mutually authenticated TLS connections to one
listener with a client certificate, completes every handshake, holds them
open for HOLD seconds (default 5), then reads the summed VmRSS of the
server's processes (the given PIDs and their children, e.g. nginx
workers), counts how many connections the server kept, and closes them.
Prints one JSON object. Used by scripts/bench.sh; loopback only, bounded
in time (DEADLINE seconds for opening, default 60).

    scripts/idle_conns.py --port 8443 --cert app.pem --key app.key \
        --ca ca.pem --pids 1234 [-n 1000] [--hold 5]
"""
import argparse
import json
import os
import resource
import socket
import ssl
import sys
import time


def tree(pids):
    """The given PIDs and their children (one level: nginx workers)."""
    out = []
    for pid in pids:
        out.append(pid)
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                out.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def status_kib(pid, field):
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM), 0 when gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kib(pids):
    """Summed VmRSS (KiB) of the server's process tree."""
    return sum(status_kib(p, "VmRSS") for p in tree(pids))


def raise_nofile(n):
    """Lifts the soft fd limit to what N connections need (hard limit caps)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 64
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def connect(ctx, host, port, server_name):
    """One TCP connection and a completed TLS handshake (no request)."""
    raw = socket.create_connection((host, port), timeout=10)
    tls = ctx.wrap_socket(raw, server_hostname=server_name)
    return tls


def alive(conn):
    """True when the server has not closed the connection."""
    conn.setblocking(False)
    try:
        return conn.recv(1) != b""
    except (ssl.SSLWantReadError, BlockingIOError):
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--server-name", default="localhost")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--pids", required=True, help="comma-separated server PIDs")
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--hold", type=float, default=5.0)
    ap.add_argument("--deadline", type=float, default=60.0)
    a = ap.parse_args()
    pids = [int(p) for p in a.pids.split(",") if p]
    raise_nofile(a.n)
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.load_cert_chain(a.cert, a.key)
    before = rss_kib(pids)
    conns, failed, start = [], 0, time.monotonic()
    while len(conns) + failed < a.n and time.monotonic() - start < a.deadline:
        try:
            conns.append(connect(ctx, a.host, a.port, a.server_name))
        except OSError as e:
            failed += 1
            last_error = str(e)
    opened_in = time.monotonic() - start
    held, until = 0, time.monotonic() + a.hold
    while time.monotonic() < until:
        time.sleep(0.5)
        held = max(held, rss_kib(pids))
    still = sum(1 for c in conns if alive(c))
    for c in conns:
        c.close()
    time.sleep(0.5)
    out = {
        "requested": a.n, "opened": len(conns), "failed": failed,
        "alive_after_hold": still, "open_seconds": round(opened_in, 2),
        "rss_before_kib": before, "rss_idle_kib": held,  # max sampled while held
        "rss_after_close_kib": rss_kib(pids),
    }
    if failed:
        out["last_error"] = last_error
    json.dump(out, sys.stdout)
    print()
    return 0 if conns else 1


if __name__ == "__main__":
    sys.exit(main())
