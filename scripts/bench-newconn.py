#!/usr/bin/env python3
"""Closed-loop load with one new mTLS connection per request, never resumed.

Used by scripts/bench.sh for the "new connection per request" mode. oha
--disable-keepalive shares one rustls ClientConfig (in-memory session
cache) across its connections, so it resumes TLS sessions whenever the
server issues tickets; this client never does (each connection is a fresh
`SSLContext.wrap_socket` without `session=`), so every request pays a full
handshake with client-certificate verification on every server alike.

C worker processes each loop for DURATION seconds: TCP connect, TLS 1.3
handshake with the client certificate, one HTTP/1.1 request with
`Connection: close`, read the response, close. Prints oha-shaped JSON
(summary.requestsPerSec, latencyPercentiles p50/p99 in seconds,
statusCodeDistribution, errorDistribution) plus tls.resumed (connections
the server resumed: expected 0).

    scripts/bench-newconn.py --port 8443 --path /x --cert c.pem --key c.key \
        --ca ca.pem -c 16 -z 10 -H 'Authorization: Bearer ...'
"""
import argparse
import json
import multiprocessing as mp
import socket
import ssl
import sys
import time


def request_bytes(a):
    """The raw HTTP/1.1 request every connection sends."""
    lines = [f"GET {a.path} HTTP/1.1", f"Host: {a.server_name}:{a.port}",
             "Connection: close", "Accept: */*"] + a.header
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(tls):
    """Status code of one response; reads the body (Content-Length or EOF)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = tls.recv(16384)
        if not chunk:
            raise ConnectionError("closed before headers")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while length is None or len(body) < length:
        chunk = tls.recv(16384)
        if not chunk:
            break
        body += chunk
    return status


def one(ctx, a, req):
    """One connection, one request; returns (status, resumed)."""
    with socket.create_connection(("127.0.0.1", a.port), timeout=10) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with ctx.wrap_socket(raw, server_hostname=a.server_name) as tls:
            tls.sendall(req)
            return read_response(tls), tls.session_reused


def worker(a, deadline):
    """One closed-loop client until the deadline: latencies and counts."""
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.load_cert_chain(a.cert, a.key)
    req = request_bytes(a)
    lat, codes, errors, resumed = [], {}, {}, 0
    while time.time() < deadline:
        t0 = time.perf_counter()
        try:
            status, reused = one(ctx, a, req)
        except (OSError, ValueError, IndexError) as e:
            key = type(e).__name__
            errors[key] = errors.get(key, 0) + 1
            continue
        lat.append(time.perf_counter() - t0)
        codes[str(status)] = codes.get(str(status), 0) + 1
        resumed += int(reused)
    return lat, codes, errors, resumed


def probe_resumption(a):
    """Whether the server resumes: a second connection offers the first's session."""
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.load_cert_chain(a.cert, a.key)
    req = request_bytes(a)
    sessions = []
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", a.port), timeout=10) as raw:
            session = sessions[-1] if sessions else None
            with ctx.wrap_socket(raw, server_hostname=a.server_name, session=session) as tls:
                tls.sendall(req)
                status = read_response(tls)
                sessions.append(tls.session)
                reused, version = tls.session_reused, tls.version()
    return f"{'yes' if reused else 'no'} ({version}, HTTP {status})"


def percentile(sorted_values, q):
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not sorted_values:
        return 0.0
    i = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[i]


def merge(results, elapsed):
    """oha-shaped JSON summary of the workers' results."""
    lat, codes, errors, resumed = [], {}, {}, 0
    for l, c, e, r in results:
        lat.extend(l)
        resumed += r
        for src, dst in ((c, codes), (e, errors)):
            for k, v in src.items():
                dst[k] = dst.get(k, 0) + v
    lat.sort()
    return {
        "summary": {"requestsPerSec": len(lat) / elapsed, "total": elapsed},
        "latencyPercentiles": {"p50": percentile(lat, 0.50), "p99": percentile(lat, 0.99)},
        "statusCodeDistribution": codes,
        "errorDistribution": errors,
        "tls": {"connections": len(lat), "resumed": resumed},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--server-name", default="localhost")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("-c", type=int, default=16)
    ap.add_argument("-z", type=float, default=10.0, help="seconds")
    ap.add_argument("-H", dest="header", action="append", default=[])
    ap.add_argument("--probe-resumption", action="store_true",
                    help="only report whether the server resumes a session")
    a = ap.parse_args()
    if a.probe_resumption:
        print(probe_resumption(a))
        return 0
    start = time.time()
    deadline = start + a.z
    with mp.Pool(a.c) as pool:
        results = pool.starmap(worker, [(a, deadline)] * a.c)
    json.dump(merge(results, time.time() - start), sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
