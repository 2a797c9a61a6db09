#!/usr/bin/env python3
"""Records and reports the runs of scripts/bench.sh (issue 9).

    bench-report.py record ROUND TARGET MODE CPU_BEFORE CPU_AFTER CLK_TCK PEAK_KIB JSON [TRAIL]
        one JSON line from a load generator's (oha-shaped) JSON output and
        the server's CPU ticks before/after the run; TRAIL (opale only):
        "records flushes flush_seconds" of /metrics before, then after
    bench-report.py report RESULTS.jsonl IDLE.jsonl IDLE_CONNS
        Markdown tables (medians and min-max ranges over the rounds), the
        RSS lines and the goal checks (PASS/FAIL)
"""
import json
import statistics
import sys

MODES = {
    "ka16": "Keep-alive, 16 connections (oha)",
    "ka64": "Keep-alive, 64 connections (oha)",
    "nc16": "New connection per request, 16 clients, full mTLS handshake, "
            "no resumption (bench-newconn.py); CPU µs/req = per new connection",
}
TARGETS = {
    "production": "opale production (chain + trace + proxy)",
    "sandbox": "opale sandbox (chain + trace + generator)",
    "nginx": "nginx mTLS + proxy",
    "haproxy": "HAProxy mTLS + proxy",
}
MIB = 1024
RSS_GOAL_MIB = 64


def record(r, target, mode, before, after, tck, peak, raw, trail=""):
    """One run as a JSON line."""
    d = json.loads(raw)
    codes = {k: int(v) for k, v in d.get("statusCodeDistribution", {}).items()}
    errors = {k: int(v) for k, v in d.get("errorDistribution", {}).items()
              if "deadline" not in k}
    n = sum(codes.values())
    p = d["latencyPercentiles"]
    cpu_us = (float(after) - float(before)) / float(tck) * 1e6 / max(n, 1)
    return {
        "round": int(r), "target": target, "mode": mode,
        "rps": d["summary"]["requestsPerSec"], "p50": p["p50"] * 1e3, "p99": p["p99"] * 1e3,
        "cpu_us": cpu_us, "responses": n, "ok": codes.get("200", 0), "errors": errors,
        "rss_peak_kib": int(peak), "resumed": d.get("tls", {}).get("resumed"),
        "trail": trail_delta(trail),
    }


def trail_delta(text):
    """{records, flushes, flush_s} over the run, from two /metrics samples."""
    v = [float(x) for x in text.split()]
    if len(v) != 6:
        return None
    return {"records": v[3] - v[0], "flushes": v[4] - v[1], "flush_s": v[5] - v[2]}


def trail_table(runs):
    """opale's group commits per mode and target: how many records one
    fdatasync made durable, how long it took, and the response's p50."""
    rows = [x for x in runs if x.get("trail") and x["trail"]["flushes"] > 0]
    if not rows:
        return
    print("Trail group commits (opale, from /metrics over each run; medians):\n")
    print("| mode | target | records per fdatasync | mean fdatasync ms | fdatasyncs/s | p50 ms |")
    print("|---|---|---|---|---|---|")
    for mode in MODES:
        for target in TARGETS:
            rs = [x for x in rows if x["mode"] == mode and x["target"] == target]
            if not rs:
                continue
            per = statistics.median(x["trail"]["records"] / x["trail"]["flushes"] for x in rs)
            ms = statistics.median(1e3 * x["trail"]["flush_s"] / x["trail"]["flushes"] for x in rs)
            rate = statistics.median(x["trail"]["flushes"] * x["rps"] / max(x["responses"], 1)
                                     for x in rs)
            p50 = statistics.median(x["p50"] for x in rs)
            print(f"| {mode} | {target} | {per:.1f} | {ms:.2f} | {rate:.0f} | {p50:.2f} |")
    print()


def stat(rows, key):
    """(median, min, max) of one column over the rounds."""
    v = [row[key] for row in rows]
    return statistics.median(v), min(v), max(v)


def fmt(s, digits):
    """'median (min–max)', or just the median for one round."""
    med, lo, hi = s
    if lo == hi:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def summarise(runs):
    """{mode: {target: {column: (median, min, max)}}}."""
    out = {}
    for mode in MODES:
        for t in TARGETS:
            rows = [x for x in runs if x["mode"] == mode and x["target"] == t]
            if rows:
                out.setdefault(mode, {})[t] = {
                    k: stat(rows, k) for k in ("rps", "p50", "p99", "cpu_us")}
    return out


def tables(summary):
    """One Markdown table per mode."""
    for mode, title in MODES.items():
        if mode not in summary:
            continue
        s = summary[mode]
        nginx_rps = s.get("nginx", {}).get("rps", (0,))[0]
        print(f"\n**{title}**\n")
        print("| target | req/s median (range) | p50 ms | p99 ms | CPU µs/req | ratio to nginx req/s |")
        print("|---|---|---|---|---|---|")
        for t, label in TARGETS.items():
            if t not in s:
                continue
            c = s[t]
            ratio = f"{c['rps'][0] / nginx_rps:.2f}×" if nginx_rps else "–"
            print(f"| {label} | {fmt(c['rps'], 0)} | {fmt(c['p50'], 2)} | {fmt(c['p99'], 2)} "
                  f"| {fmt(c['cpu_us'], 0)} | {ratio} |")


def problems(runs):
    """Runs with non-200 responses, errors or resumed sessions."""
    for x in runs:
        bad = x["responses"] - x["ok"]
        if bad or x["errors"] or x.get("resumed"):
            print(f"- WARNING round {x['round']} {x['mode']} {x['target']}: {bad} non-200 of "
                  f"{x['responses']}, errors {x['errors']}, resumed {x.get('resumed')}")


def rss_lines(runs, idle, n):
    """Peak RSS under load and with N idle connections; returns opale's (MiB)."""
    peak = {}
    for x in runs:
        key = "opale" if x["target"] in ("production", "sandbox") else x["target"]
        peak[key] = max(peak.get(key, 0), x["rss_peak_kib"])
    print("\nPeak RSS under load (VmRSS of the server and its workers, summed, sampled "
          "every 0.25 s, max over all runs): " +
          "; ".join(f"{k} {v / MIB:.1f} MiB" for k, v in peak.items()) + ".")
    idle_mib = {}
    parts = []
    for line in idle:
        t, d = line["target"], line["idle"]
        key = "opale" if t == "production" else t
        idle_mib[key] = d["rss_idle_kib"] / MIB
        per = (d["rss_idle_kib"] - d["rss_before_kib"]) / max(d["opened"], 1)
        parts.append(f"{key} {idle_mib[key]:.1f} MiB (before {d['rss_before_kib'] / MIB:.1f}, "
                     f"+{per:.1f} KiB/conn, {d['alive_after_hold']}/{n} still open)")
    if parts:
        print(f"\nRSS with {n} idle mTLS connections open (handshakes done, no request): "
              + "; ".join(parts) + ".")
    return peak.get("opale", 0) / MIB, idle_mib.get("opale")


def check(name, ok, detail):
    """One goal line."""
    print(f"- {'PASS' if ok else 'FAIL'} {name}: {detail}")
    return ok


def goals(s, peak_mib, idle_mib):
    """The issue's goals for opale production against nginx."""
    print("\nGoal checks (opale production vs nginx, medians):\n")
    pr, nx = s.get("ka64", {}).get("production"), s.get("ka64", {}).get("nginx")
    if pr and nx:
        check("keep-alive c=64 req/s ≥ 1.0× nginx", pr["rps"][0] >= nx["rps"][0],
              f"{pr['rps'][0]:.0f} vs {nx['rps'][0]:.0f} ({pr['rps'][0] / nx['rps'][0]:.2f}×)")
    for mode in MODES:
        pr, nx = s.get(mode, {}).get("production"), s.get(mode, {}).get("nginx")
        if not (pr and nx):
            continue
        check(f"{mode} p99 ≤ nginx p99 + 1 ms", pr["p99"][0] <= nx["p99"][0] + 1,
              f"{pr['p99'][0]:.2f} vs {nx['p99'][0]:.2f} ms")
        if mode == "nc16":
            check("CPU per new mTLS connection ≤ 0.5× nginx", pr["cpu_us"][0] <= 0.5 * nx["cpu_us"][0],
                  f"{pr['cpu_us'][0]:.0f} vs {nx['cpu_us'][0]:.0f} µs "
                  f"({pr['cpu_us'][0] / max(nx['cpu_us'][0], 1e-9):.2f}×)")
        else:
            check(f"{mode} server CPU per request ≤ nginx", pr["cpu_us"][0] <= nx["cpu_us"][0],
                  f"{pr['cpu_us'][0]:.0f} vs {nx['cpu_us'][0]:.0f} µs")
    check(f"RSS under load ≤ {RSS_GOAL_MIB} MiB", peak_mib <= RSS_GOAL_MIB, f"{peak_mib:.1f} MiB")
    if idle_mib is not None:
        check(f"RSS with idle connections ≤ {RSS_GOAL_MIB} MiB", idle_mib <= RSS_GOAL_MIB,
              f"{idle_mib:.1f} MiB")


def report(results, idle_path, n):
    """Everything bench.sh prints after the runs."""
    with open(results) as f:
        runs = [json.loads(line) for line in f if line.strip()]
    try:
        with open(idle_path) as f:
            idle = [json.loads(line) for line in f if line.strip()]
    except OSError:
        idle = []
    s = summarise(runs)
    tables(s)
    print()
    trail_table(runs)
    problems(runs)
    peak_mib, idle_mib = rss_lines(runs, idle, n)
    goals(s, peak_mib, idle_mib)


def main(argv):
    if len(argv) in (10, 11) and argv[1] == "record":
        print(json.dumps(record(*argv[2:])))
    elif len(argv) == 5 and argv[1] == "report":
        report(argv[2], argv[3], int(argv[4]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
