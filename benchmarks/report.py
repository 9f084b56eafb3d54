"""Turn a pytest-benchmark JSON file into markdown tables: one per benchmark group.

    python benchmarks/report.py results.json [more.json ...] [--throughput-key KEY] [--unit UNIT]

Each row gives a benchmark's median time, its throughput and its ratio to every benchmark of the
same group flagged ``extra_info["baseline"] = True``. Throughput is read from
``extra_info[KEY]`` (default "throughput") with the unit in ``extra_info["unit"]`` (or --unit);
ratios compare throughputs when both rows have one (so baselines run on a smaller input stay
comparable), and median times otherwise. A ratio above 1 means faster than that baseline.
The machine and commit recorded in the JSON head the output. Works for any pytest-benchmark
file (LSTM, scan, ...); nothing here is specific to the tokenizer.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import OrderedDict


def _fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _fmt_num(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def machine_lines(data: dict) -> list[str]:
    m = data.get("machine_info", {}) or {}
    cpu = m.get("cpu", {}) or {}
    parts = []
    brand = cpu.get("brand_raw") or cpu.get("brand")
    if brand:
        parts.append(brand)
    if cpu.get("count"):
        parts.append(f"{cpu['count']} logical CPUs")
    if m.get("machine"):
        parts.append(m["machine"])
    if m.get("python_implementation") or m.get("python_version"):
        parts.append(f"{m.get('python_implementation', 'Python')} {m.get('python_version', '')}".strip())
    lines = []
    if parts:
        lines.append("Machine: " + ", ".join(parts))
    if m.get("node"):
        lines.append(f"Host: {m['node']}")
    c = data.get("commit_info", {}) or {}
    if c.get("id"):
        dirty = " (dirty)" if c.get("dirty") else ""
        lines.append(f"Commit: {c['id'][:12]}{dirty} {c.get('branch', '') or ''}".rstrip())
    if data.get("datetime"):
        lines.append(f"Run: {data['datetime']}")
    return lines


def group_tables(benchmarks: list[dict], key: str, unit_override: str | None) -> str:
    groups: "OrderedDict[str, list[dict]]" = OrderedDict()
    for b in benchmarks:
        groups.setdefault(b.get("group") or "(no group)", []).append(b)
    out = []
    for group, rows in groups.items():
        baselines = [b for b in rows if (b.get("extra_info") or {}).get("baseline")]
        units = {(b.get("extra_info") or {}).get("unit") for b in rows} - {None}
        unit = unit_override or (units.pop() if len(units) == 1 else "")
        header = ["benchmark", "median", f"throughput{f' ({unit})' if unit else ''}"]
        header += [f"vs {b['name']}" for b in baselines]
        out.append(f"### {group}\n")
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        ordered = sorted(rows, key=lambda b: (bool((b.get("extra_info") or {}).get("baseline")), b["stats"]["median"]))
        for b in ordered:
            info = b.get("extra_info") or {}
            thr = info.get(key)
            name = b["name"] + (" (baseline)" if info.get("baseline") else "")
            cells = [name, _fmt_time(b["stats"]["median"]), _fmt_num(thr) if thr is not None else "-"]
            if thr is not None and not unit and info.get("unit"):
                cells[2] += f" {info['unit']}"
            for base in baselines:
                if base is b:
                    cells.append("1")
                    continue
                bthr = (base.get("extra_info") or {}).get(key)
                if thr is not None and bthr:
                    ratio = thr / bthr
                else:
                    ratio = base["stats"]["median"] / b["stats"]["median"]
                cells.append(f"{ratio:.3g}x")
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def render(data: dict, key: str = "throughput", unit: str | None = None) -> str:
    lines = machine_lines(data)
    text = "\n".join(f"- {line}" for line in lines)
    return (text + "\n\n" if text else "") + group_tables(data.get("benchmarks", []), key, unit)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", nargs="+", help="pytest-benchmark --benchmark-json output file(s)")
    ap.add_argument("--throughput-key", default="throughput", help="extra_info key holding the throughput")
    ap.add_argument("--unit", default=None, help="throughput unit (default: extra_info['unit'])")
    args = ap.parse_args(argv)
    for i, path in enumerate(args.json):
        with open(path) as f:
            data = json.load(f)
        if len(args.json) > 1:
            print(f"## {path}\n")
        print(render(data, args.throughput_key, args.unit))
        if i + 1 < len(args.json):
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
