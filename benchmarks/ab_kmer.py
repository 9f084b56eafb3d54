"""k-mer encode, one build against another, in alternating processes.

    python benchmarks/ab_kmer.py --old /path/to/old/checkout [--new .] [--pairs 8] [--threads 2]

Each build (a checkout with its extension built in place) is imported in its own process; the
two alternate --pairs times. In each process every case is called --calls times after a warm-up,
and the process reports the median. The table gives, per case, the median over processes of
each build, the speed ratio new/old, and in how many pairs the new build was faster. On a VM the
same build's median can move by 2x between processes (memory placement, huge pages), so one
process per build says little; this is the test behind the k-mer rows of benchmarks/README.md.

Cases (10 Mbp of seeded random ACGT, like bench_kmer.py): the registered op allocating its
output (k5s2 int32 / int64, k3s1 int64), and the buffer entry point writing into a reused array
(k5s2 int64, no page faults).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CASES = ["op-k5s2-int32", "op-k5s2-int64", "op-k3s1-int64", "buffer-k5s2-int64"]


def worker(threads: int, calls: int, bp: int) -> None:
    import numpy as np
    import torch

    from gulm import _ext

    torch.set_num_threads(threads)
    arr = np.frombuffer(b"ACGT", dtype=np.uint8)[np.random.default_rng(0).integers(0, 4, bp)]
    seq = torch.from_numpy(arr)
    out = np.empty((bp - 5) // 2 + 1, dtype=np.int64)
    fns = {
        "op-k5s2-int32": lambda: torch.ops.gulm.kmer_encode(seq, 5, 2, torch.int32),
        "op-k5s2-int64": lambda: torch.ops.gulm.kmer_encode(seq, 5, 2, torch.int64),
        "op-k3s1-int64": lambda: torch.ops.gulm.kmer_encode(seq, 3, 1, torch.int64),
        "buffer-k5s2-int64": lambda: _ext._C.kmer_encode_buffer(arr, 5, 2, False, "auto", out),
    }
    medians = {}
    for name in CASES:
        fn = fns[name]
        for _ in range(10):
            fn()
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        medians[name] = statistics.median(times) * 1e3
    print(json.dumps(medians))


def run_one(tree: str, args) -> dict:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree),
               OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--threads", str(args.threads),
           "--calls", str(args.calls), "--bp", str(args.bp)]
    out = subprocess.run(cmd, env=env, cwd=os.path.abspath(tree), capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"ab_kmer.py: the build in {tree} failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", help="checkout of the baseline build (extension built in place)")
    ap.add_argument("--new", default=".", help="checkout of the build under test (default: .)")
    ap.add_argument("--pairs", type=int, default=8, help="alternating new/old process pairs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calls", type=int, default=150, help="timed calls per case and process")
    ap.add_argument("--bp", type=int, default=10_000_000)
    ap.add_argument("--json", help="also write every process's medians here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.threads, args.calls, args.bp)
        return
    if not args.old:
        ap.error("--old is required")
    runs = {"new": [], "old": []}
    for i in range(args.pairs):
        for side in ("new", "old"):
            runs[side].append(run_one(getattr(args, side), args))
        print(f"pair {i + 1}/{args.pairs}: " + "  ".join(
            f"{c} {runs['new'][-1][c]:.3f}/{runs['old'][-1][c]:.3f} ms" for c in CASES), flush=True)
    print(f"\n{args.threads} threads, {args.pairs} pairs, medians over processes (ms)")
    print(f"{'case':<20} {'new':>8} {'old':>8} {'new/old speed':>14} {'new faster':>11}")
    for c in CASES:
        new = [r[c] for r in runs["new"]]
        old = [r[c] for r in runs["old"]]
        wins = sum(a < b for a, b in zip(new, old))
        mn, mo = statistics.median(new), statistics.median(old)
        print(f"{c:<20} {mn:8.3f} {mo:8.3f} {mo / mn:13.2f}x {wins:>5} of {len(new)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=1)


if __name__ == "__main__":
    main()
