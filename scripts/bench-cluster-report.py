#!/usr/bin/env python3
"""Records and reports the runs of scripts/bench-cluster.sh (issue 12).

    bench-cluster-report.py record ROUND TARGET CLK_TCK XACTS SCRIPTS NODES PG REDIS SINGLE NGINX O1 O2
        one JSON line: XACTS is "before after" of PostgreSQL's committed
        transactions, SCRIPTS the same of Redis's EVALSHA calls; each of NODES..NGINX is "ticks_before ticks_after" of
        that group of processes; O1 and O2 are oha JSON files (O2 is `{}`
        when one oha ran)
    bench-cluster-report.py report RESULTS.jsonl CONNS QUOTA
        one Markdown table of medians (min-max over the rounds)
"""
import json
import statistics
import sys

TARGETS = {
    "cluster": "opale cluster: 2 nodes (PostgreSQL store + trail, {quota} quota)",
    "single": "opale 1 node (sled, local quota)",
    "nginx": "nginx mTLS + proxy",
}
# CPU columns: which process group counts for which target.
OWN = {"cluster": "nodes", "single": "single", "nginx": "nginx"}


def load(path):
    """(responses, req/s, p99 ms) of one oha JSON file, or None."""
    with open(path) as f:
        d = json.load(f)
    if not d:
        return None
    n = sum(int(v) for v in d.get("statusCodeDistribution", {}).values())
    ok = int(d.get("statusCodeDistribution", {}).get("200", 0))
    return n, ok, d["summary"]["requestsPerSec"], d["latencyPercentiles"]["p99"] * 1e3


def record(r, target, tck, xacts, scripts, nodes, pg, redis, single, nginx, o1, o2):
    runs = [x for x in (load(o1), load(o2)) if x]
    n = sum(x[0] for x in runs)
    x0, x1 = (int(v) for v in xacts.split())
    s0, s1 = (int(v) for v in scripts.split())
    per_call = {}
    for name, pair in (("nodes", nodes), ("pg", pg), ("redis", redis),
                       ("single", single), ("nginx", nginx)):
        before, after = (float(v) for v in pair.split())
        per_call[name] = (after - before) / float(tck) * 1e6 / max(n, 1)
    return {
        "round": int(r), "target": target, "responses": n,
        "ok": sum(x[1] for x in runs), "rps": sum(x[2] for x in runs),
        "p99": max(x[3] for x in runs), "cpu_us": per_call,
        "pg_xacts_per_call": (x1 - x0) / max(n, 1),
        "redis_scripts_per_call": (s1 - s0) / max(n, 1),
    }


def fmt(values, digits=0):
    med, lo, hi = statistics.median(values), min(values), max(values)
    if lo == hi:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def report(path, conns, quota):
    runs = [json.loads(line) for line in open(path)]
    by = {t: [x for x in runs if x["target"] == t] for t in TARGETS}
    nginx_rps = statistics.median(x["rps"] for x in by["nginx"]) if by["nginx"] else 0
    c = int(conns)
    print(f"Keep-alive, {2 * c} connections in all (cluster: {c} per node, "
          "two oha at once); production listener (chain + durable trace + proxy)\n")
    print("| target | req/s | p99 ms | gateway CPU µs/call | PostgreSQL µs/call "
          "| Redis µs/call | total µs/call | PostgreSQL transactions/call "
          "| Redis scripts/call | non-200 | ratio to nginx req/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for t, title in TARGETS.items():
        rows = by[t]
        if not rows:
            continue
        own = [x["cpu_us"][OWN[t]] for x in rows]
        pg = [x["cpu_us"]["pg"] if t == "cluster" else 0 for x in rows]
        rd = [x["cpu_us"]["redis"] if t == "cluster" else 0 for x in rows]
        total = [a + b + d for a, b, d in zip(own, pg, rd)]
        rps = statistics.median(x["rps"] for x in rows)
        bad = sum(x["responses"] - x["ok"] for x in rows)
        ratio = f"{rps / nginx_rps:.2f}×" if nginx_rps else "–"
        dash = t != "cluster"
        xacts = [x["pg_xacts_per_call"] for x in rows]
        scripts = [x.get("redis_scripts_per_call", 0) for x in rows]
        print(f"| {title.format(quota=quota)} | {fmt([x['rps'] for x in rows])} | "
              f"{fmt([x['p99'] for x in rows], 2)} | {fmt(own)} | "
              f"{'–' if dash else fmt(pg)} | {'–' if dash else fmt(rd)} | "
              f"{fmt(total)} | {'–' if dash else fmt(xacts, 3)} | "
              f"{'–' if dash else fmt(scripts, 3)} | {bad} | {ratio} |")


if __name__ == "__main__":
    if sys.argv[1] == "record":
        print(json.dumps(record(*sys.argv[2:14])))
    elif sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
