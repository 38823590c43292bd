#!/usr/bin/env python3
"""Turns `go test -bench` output of this module (or of the root package) into the Markdown tables of
docs/BENCHMARKS.md: one row per workload, ssekit and go-sse side by side,
each figure the median of the -count runs.

    python3 table.py < compare.out
"""
import re
import statistics
import sys
from collections import defaultdict

# BenchmarkDecode/mercure/lib=ssekit-2 here; BenchmarkDecode/mercure-2 and
# BenchmarkEncode/mercure/AppendTo-2 in the root package's benchmarks.
LINE = re.compile(r"^Benchmark(\w+)/(\w+)(?:/(?:lib=)?([\w-]+))?-\d+\s+\d+\s+(.*)$")
runs = defaultdict(lambda: defaultdict(list))  # (kind, workload, lib) -> unit -> values
order = []
for line in sys.stdin:
    m = LINE.match(line.strip())
    if not m:
        continue
    kind, workload, lib, rest = m.groups()
    lib = lib or "ssekit"
    key = (kind, workload, lib)
    if key not in runs:
        order.append(key)
    fields = rest.split()
    for value, unit in zip(fields[0::2], fields[1::2]):
        runs[key][unit].append(float(value))


def med(key, unit):
    vals = runs[key].get(unit)
    return statistics.median(vals) if vals else None


def fmt(v):
    if v is None:
        return "–"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


for kind in ("Decode", "Encode"):
    libs = []
    workloads = []
    for k, w, l in order:
        if k != kind:
            continue
        if l not in libs:
            libs.append(l)
        if w not in workloads:
            workloads.append(w)
    if not libs:
        continue
    print(f"\n#### {kind}\n")
    print("| workload | library or method | MB/s | ns/event | CPU ns/event | allocs/event | B/event |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for w in workloads:
        for l in libs:
            key = (kind, w, l)
            if key not in runs:
                continue
            allocs = med(key, "allocs/event")
            print(f"| {w} | {l} | {fmt(med(key, 'MB/s'))} | {fmt(med(key, 'ns/event'))} "
                  f"| {fmt(med(key, 'cpu-ns/event'))} | {allocs:.3f} | {fmt(med(key, 'B/event'))} |")
