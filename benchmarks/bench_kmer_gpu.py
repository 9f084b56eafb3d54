"""GPU benchmark of the k-mer tokenizer: Gbp/s on a device-resident genome beside the device's copy
bandwidth measured in the same run.

    python benchmarks/bench_kmer_gpu.py [--bp 1e9] [--json out.json]
    python benchmarks/report.py out.json

Writes the JSON shape of pytest-benchmark (benchmarks[].name/group/stats/extra_info) so that
benchmarks/report.py renders it. Per group (k5s2-int64, k3s1-int64, k5s2-int32, batch):
  * gulm-cuda: torch.ops.gulm.kmer_encode on a uint8 CUDA tensor of --bp random ACGT bytes (the
    caching allocator reuses the output after the first call), timed with CUDA events;
  * device-copy-limit (baseline): copy the input bytes and write the output bytes with
    torch's copy_ / fill_ on the same device: the memory-bandwidth floor of the op.
Exits 0 with a note when there is no GPU or gulm was built without CUDA.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys

import torch


def _timed(fn, reps: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return times


def _entry(name: str, group: str, times: list[float], bp: int, baseline: bool, **extra) -> dict:
    times = sorted(times)
    median = times[len(times) // 2]
    return {
        "name": name,
        "fullname": f"bench_kmer_gpu.py::{group}::{name}",
        "group": group,
        "stats": {
            "min": times[0],
            "max": times[-1],
            "mean": sum(times) / len(times),
            "median": median,
            "rounds": len(times),
            "iterations": 1,
        },
        "extra_info": {"throughput": bp / median / 1e9, "unit": "Gbp/s", "baseline": baseline, "input_bp": bp, **extra},
    }


def run(bp: int, reps: int) -> dict:
    from gulm import _ext
    from gulm.ops import kmer as K

    dev = torch.device("cuda")
    acgt = torch.tensor(list(b"ACGT"), dtype=torch.uint8, device=dev)
    gen = torch.Generator(device=dev).manual_seed(0)
    seq = torch.empty(bp, dtype=torch.uint8, device=dev)
    chunk = 1 << 27  # keeps the int64 index temporaries at 1 GiB
    for i in range(0, bp, chunk):
        n = min(chunk, bp - i)
        seq[i : i + n] = acgt[torch.randint(0, 4, (n,), device=dev, generator=gen)]
    del gen
    results = []
    cases = {"k5s2-int64": (5, 2, torch.int64), "k3s1-int64": (3, 1, torch.int64), "k5s2-int32": (5, 2, torch.int32)}
    for group, (k, stride, dtype) in cases.items():
        n_out = K.num_tokens(bp, k, stride)
        out_bytes = n_out * (8 if dtype == torch.int64 else 4)
        ids = torch.ops.gulm.kmer_encode(seq, k, stride, dtype)
        # correctness spot check against the CPU kernel on a slice
        head = seq[: 100_000 * stride + k]
        assert torch.equal(torch.ops.gulm.kmer_encode(head, k, stride, dtype).cpu(), K.kmer_encode(head.cpu(), k, stride, dtype))
        del ids
        t = _timed(lambda: torch.ops.gulm.kmer_encode(seq, k, stride, dtype), reps)
        results.append(_entry("gulm-cuda", group, t, bp, False, output_bytes=out_bytes))
        copy_dst = torch.empty_like(seq)
        out = torch.empty(n_out, dtype=dtype, device=dev)

        def copy_limit():
            copy_dst.copy_(seq)
            out.fill_(1)

        t = _timed(copy_limit, reps)
        results.append(
            _entry("device-copy-limit", group, t, bp, True, what="copy input bytes + write output bytes (copy_/fill_)")
        )
        del copy_dst, out
        torch.cuda.empty_cache()

    # batch: rows of 100 kbp with a fixed width (no host sync for the width)
    rows = max(1, bp // 100_000)
    offsets = torch.arange(0, rows + 1, device=dev, dtype=torch.int64) * (bp // rows)
    width = K.num_tokens(bp // rows, 5, 2)
    t = _timed(lambda: torch.ops.gulm.kmer_encode_batch(seq, offsets, 5, 2, torch.int32, False, width), reps)
    results.append(_entry("gulm-cuda-batch", "batch-k5s2-int32", t, bp, False, rows=rows, width=width))
    out = torch.empty(rows * width, dtype=torch.int32, device=dev)
    copy_dst = torch.empty_like(seq)
    t = _timed(lambda: (copy_dst.copy_(seq), out.fill_(1)), reps)
    results.append(_entry("device-copy-limit", "batch-k5s2-int32", t, bp, True))

    props = torch.cuda.get_device_properties(dev)
    return {
        "machine_info": {
            "node": platform.node(),
            "machine": platform.machine(),
            "python_version": platform.python_version(),
            "python_implementation": platform.python_implementation(),
            "cpu": {"brand_raw": f"GPU {props.name} ({props.total_memory / 2**30:.0f} GiB), torch {torch.__version__}"},
        },
        "commit_info": {},
        "datetime": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "benchmarks": results,
        "extension_has_cuda": _ext.HAS_CUDA_KERNELS,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bp", type=float, default=1e9, help="genome length in base pairs (default 1e9)")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_kmer_gpu: no CUDA device; nothing to do")
        return 0
    from gulm import _ext

    if not _ext.HAS_CUDA_KERNELS:
        print("bench_kmer_gpu: gulm._C was built without CUDA (set GULM_FORCE_CUDA=1 and rebuild)")
        return 1
    data = run(int(args.bp), args.reps)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from report import render

    print(render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
