#!/usr/bin/env python3
"""Summarize a compare-etcd.sh results directory: one markdown table of medians.

Reads <system>-<cell>-r<round>.json (raftkv bench --json) and the .cpu.json beside each,
pairs etcd and raftkv runs of the same cell and round (they ran back to back), and prints
per cell: the median throughput and p50/p99 of each system over the rounds, the median of
the per-round raftkv/etcd ratios, the servers' CPU time per operation, and the issue's goals.

Usage: python3 bench/compare-summary.py RESULTS_DIR
"""

import json
import pathlib
import re
import statistics
import sys

CELLS = ["put-c1", "put-c16", "put-c64", "put-c256", "get-c64", "sget-c64", "mixed-c64"]
NAME = re.compile(r"^(etcd|raftkv)-(.+)-r(\d+)\.json$")

# (cell, metric, comparison, bound, text): the goals of issue 6 that this matrix measures.
GOALS = [
    ("put-c1", "tput", ">=", 3.0, "put throughput at 1 client >= 3x etcd"),
    ("put-c64", "tput", ">=", 3.0, "put throughput at 64 clients >= 3x etcd"),
    ("put-c256", "tput", ">=", 3.0, "put throughput at 256 clients >= 3x etcd"),
    ("put-c16", "p99", "<=", 0.33, "put p99 at 16 clients <= 0.33x etcd"),
    ("get-c64", "tput", ">=", 3.0, "linearizable get throughput at 64 clients >= 3x etcd"),
]


def load(results):
    runs = {}  # (cell, round) -> system -> run
    for path in sorted(results.iterdir()):
        m = NAME.match(path.name)
        if not m or path.name.endswith(".cpu.json"):
            continue
        system, cell, rnd = m.group(1), m.group(2), int(m.group(3))
        run = json.loads(path.read_text())
        cpu = path.with_name(path.name[: -len(".json")] + ".cpu.json")
        run["cpu"] = json.loads(cpu.read_text()) if cpu.exists() else {}
        perf = path.with_name(path.name[: -len(".json")] + ".perf.csv")
        run["perf"] = read_perf(perf) if perf.exists() else {}
        runs.setdefault((cell, rnd), {})[system] = run
    return runs


def read_perf(path):
    """`perf stat -x,` output → {event: count}."""
    counts = {}
    for line in path.read_text().splitlines():
        f = line.split(",")
        if len(f) >= 3 and f[0].strip().isdigit():
            counts[f[2]] = int(f[0])
    return counts


def per_op(run, event):
    """Servers' `event` count per successful request, warmup included (perf ran as long)."""
    count = run["perf"].get(event)
    ops = run["ops"] + run.get("warmup_ops", 0)
    return None if count is None or ops == 0 else count / ops


def fsyncs_per_op(run):
    parts = [per_op(run, "syscalls:sys_enter_" + e) for e in ("fdatasync", "fsync")]
    return None if None in parts else sum(parts)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec):
    return "–" if x is None else format(x, spec)


def server_cores(run):
    """Cores the 3 servers kept busy over the bench process's life (warmup included)."""
    cpu, wall = run["cpu"].get("server_cpu_s"), run["cpu"].get("bench_wall_s")
    return None if cpu is None or not wall else cpu / wall


def cpu_us_per_op(run):
    """Servers' CPU per op, assuming the warmup ran at the measured rate (≈)."""
    cores, tput = server_cores(run), run["throughput_ops_s"]
    return None if cores is None or tput == 0 else cores * 1e6 / tput


def cell_rows(runs):
    cells = sorted({c for c, _ in runs}, key=lambda c: (CELLS.index(c) if c in CELLS else 99, c))
    rows = {}
    for cell in cells:
        pairs = [r for (c, _), r in sorted(runs.items()) if c == cell and len(r) == 2]
        if not pairs:
            continue
        row = {"rounds": len(pairs), "errors": 0}
        for s in ("etcd", "raftkv"):
            row[s + "_tput"] = med(p[s]["throughput_ops_s"] for p in pairs)
            row[s + "_p50"] = med(p[s]["latency_us"]["p50"] / 1000 for p in pairs)
            row[s + "_p99"] = med(p[s]["latency_us"]["p99"] / 1000 for p in pairs)
            row[s + "_cpu"] = med(cpu_us_per_op(p[s]) for p in pairs)
            row[s + "_cores"] = med(server_cores(p[s]) for p in pairs)
            row[s + "_bench_cores"] = med(
                p[s]["cpu"]["bench_cpu_s"] / p[s]["cpu"]["bench_wall_s"]
                for p in pairs
                if p[s]["cpu"].get("bench_wall_s")
            )
            row[s + "_fsync"] = med(fsyncs_per_op(p[s]) for p in pairs)
            row[s + "_syscalls"] = med(per_op(p[s], "raw_syscalls:sys_enter") for p in pairs)
            row[s + "_cs"] = med(per_op(p[s], "context-switches") for p in pairs)
            row["errors"] += sum(p[s]["errors"] for p in pairs)
        row["tput"] = med(
            p["raftkv"]["throughput_ops_s"] / p["etcd"]["throughput_ops_s"]
            for p in pairs
            if p["etcd"]["throughput_ops_s"] > 0
        )
        row["p99"] = med(
            p["raftkv"]["latency_us"]["p99"] / p["etcd"]["latency_us"]["p99"]
            for p in pairs
            if p["etcd"]["latency_us"]["p99"] > 0
        )
        rows[cell] = row
    return rows


def table(rows):
    out = [
        "| cell | etcd ops/s | raftkv ops/s | **tput ratio** | etcd p50 / p99 ms "
        "| raftkv p50 / p99 ms | **p99 ratio** | server CPU µs/op etcd / raftkv "
        "| cores busy (servers + bench) etcd / raftkv | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cell, r in rows.items():
        out.append(
            f"| {cell} | {fmt(r['etcd_tput'], '.0f')} | {fmt(r['raftkv_tput'], '.0f')} "
            f"| **{fmt(r['tput'], '.2f')}×** "
            f"| {fmt(r['etcd_p50'], '.2f')} / {fmt(r['etcd_p99'], '.2f')} "
            f"| {fmt(r['raftkv_p50'], '.2f')} / {fmt(r['raftkv_p99'], '.2f')} "
            f"| **{fmt(r['p99'], '.2f')}×** "
            f"| {fmt(r['etcd_cpu'], '.0f')} / {fmt(r['raftkv_cpu'], '.0f')} "
            f"| {fmt(r['etcd_cores'], '.2f')}+{fmt(r['etcd_bench_cores'], '.2f')} / "
            f"{fmt(r['raftkv_cores'], '.2f')}+{fmt(r['raftkv_bench_cores'], '.2f')} "
            f"| {r['errors']} |"
        )
    return "\n".join(out)


def counters(rows):
    out = [
        "| cell | fsyncs/op etcd | fsyncs/op raftkv | syscalls/op etcd | syscalls/op raftkv "
        "| context switches/op etcd | context switches/op raftkv |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for cell, r in rows.items():
        out.append(
            f"| {cell} | {fmt(r['etcd_fsync'], '.3f')} | {fmt(r['raftkv_fsync'], '.3f')} "
            f"| {fmt(r['etcd_syscalls'], '.1f')} | {fmt(r['raftkv_syscalls'], '.1f')} "
            f"| {fmt(r['etcd_cs'], '.1f')} | {fmt(r['raftkv_cs'], '.1f')} |"
        )
    return "\n".join(out)


def goals(rows):
    out = []
    for cell, metric, cmp, bound, text in GOALS:
        r = rows.get(cell)
        if r is None or r[metric] is None:
            out.append(f"- {text}: not measured")
            continue
        ok = r[metric] >= bound if cmp == ">=" else r[metric] <= bound
        out.append(f"- {text}: {r[metric]:.2f}× — {'met' if ok else 'NOT met'}")
    return "\n".join(out)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    results = pathlib.Path(sys.argv[1])
    runs = load(results)
    rows = cell_rows(runs)
    if not rows:
        sys.exit(f"no paired etcd/raftkv runs in {results}")
    rounds = max(r["rounds"] for r in rows.values())
    print(f"raftkv vs etcd — medians over {rounds} round(s); ratios are raftkv/etcd per round")
    print()
    print(table(rows))
    print()
    if any(r["etcd_fsync"] is not None for r in rows.values()):
        print("Servers (all 3 members) per successful request, from `perf stat`:")
        print()
        print(counters(rows))
        print()
    print(goals(rows))
    (results / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
