"""Throughput of the fused weight-dropped LSTM (gulm.ops.lstm.wd_lstm) against its baselines.

One pytest-benchmark group per figure; the baselines are sibling benchmarks of the same group
(``extra_info["baseline"] = True``), and every benchmark records ``extra_info["throughput"]``
(median) with its ``extra_info["unit"]``:

* ``awd-train-fp32``: forward+backward of the 3-layer AWD-LSTM stack (400->1150, 1150->1150,
  1150->400), B=64, T=70, weight drop p=0.2 active. Baselines: nn.LSTM with a fastai-style
  WeightDropout, and a Python per-time-step loop (wd_lstm_ref).
* ``small-train-fp32``: the same for a small model (64->256, 256->256, 256->64), B=32, T=70.
* ``awd-train-bf16``: forward+backward under bfloat16 autocast; baselines: the fp32 fastai
  baseline and nn.LSTM under bfloat16 autocast.
* ``awd-infer-fp32`` / ``awd-infer-bf16``: no-grad eval forward on 500 bp windows (k=5, s=2:
  248 tokens), B=256, in sequences/s; baseline nn.LSTM (eval) in the same precision.

On CPU torch.set_num_threads(2). Run with

    pytest benchmarks/bench_lstm.py --benchmark-only [--benchmark-json out.json]
        (GULM_BENCH_DEVICE=cuda for the GPU figures, GULM_BENCH_ROUNDS=n to override rounds)
    python benchmarks/bench_lstm.py [--device cuda] [--groups awd-train-fp32,...] [--rounds 5]
        [--gemm auto|mkl|onednn|avx512] [--contended] [--json out.json]

(the script prints the machine (CPU model, vector extensions, torch, threads), the table with
ratios to the first baseline, and the GEMM backend the LSTM used; ``--gemm`` forces one
(GULM_GEMM); ``--device cuda`` runs the GPU figures against cuDNN nn.LSTM + WeightDropout,
fp32 and bf16, B in {64, 256}).

``--contended`` runs the chosen groups (default awd-train-fp32) while a busy process spins on
one core (benchmarks/machine.py), at 1 thread, at every CPU of the affinity mask and at
gulm.threads' default choice computed under that load, gulm beside nn.LSTM + WeightDropout each
time; it reports gulm against the baseline under the same load and the default thread choice
against the best fixed count.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gulm.ops.lstm import wd_lstm, wd_lstm_ref  # noqa: E402

CPU_THREADS = 2
WEIGHT_P = 0.2  # AWD-LSTM's weight_p in the seed's LM configuration

AWD = [(400, 1150), (1150, 1150), (1150, 400)]
SMALL = [(64, 256), (256, 256), (256, 64)]


# ---- the baseline: nn.LSTM with a fastai-style WeightDropout -------------------------------


class WeightDropoutLSTM(torch.nn.Module):
    """nn.LSTM whose weight_hh_l0 is a dropped copy of a raw parameter, set on every forward.

    The mechanism of fastai's WeightDropout: the raw weight is the parameter, the LSTM's own
    weight_hh_l0 is deleted and replaced by F.dropout(raw) (a plain tensor) before each call,
    so the gradient flows to the raw weight through the dropout.
    """

    def __init__(self, input_size: int, hidden_size: int, weight_p: float, **kw):
        super().__init__()
        self.module = torch.nn.LSTM(input_size, hidden_size, **kw)
        self.weight_p = weight_p
        raw = self.module.weight_hh_l0
        del self.module._parameters["weight_hh_l0"]
        self.weight_hh_l0_raw = torch.nn.Parameter(raw.detach().clone())
        self.module.weight_hh_l0 = raw.detach().clone()
        # flatten_parameters() would try to re-own the weights; fastai makes it a no-op too.
        self.module.flatten_parameters = lambda *a, **k: None

    def forward(self, x, state=None):
        if self.training:
            w = F.dropout(self.weight_hh_l0_raw, p=self.weight_p, training=True)
        else:
            w = self.weight_hh_l0_raw.clone()
        setattr(self.module, "weight_hh_l0", w)
        with warnings.catch_warnings():
            # cuDNN warns that the weights are not one contiguous chunk (fastai silences it too).
            warnings.simplefilter("ignore", category=UserWarning)
            return self.module(x, state)


def make_params(sizes, device, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    layers = []
    for i, h in sizes:
        s = h ** -0.5

        def u(*shape):
            t = (torch.rand(*shape, generator=g) * 2 - 1) * s
            return t.to(device=device, dtype=dtype).requires_grad_()

        layers.append((u(4 * h, i), u(4 * h, h), u(4 * h), u(4 * h)))
    return layers


def fastai_stack(sizes, device, params):
    mods = []
    for (i, h), (w_ih, w_hh, b_ih, b_hh) in zip(sizes, params):
        m = WeightDropoutLSTM(i, h, WEIGHT_P).to(device)
        with torch.no_grad():
            m.module.weight_ih_l0.copy_(w_ih)
            m.weight_hh_l0_raw.copy_(w_hh)
            m.module.bias_ih_l0.copy_(b_ih)
            m.module.bias_hh_l0.copy_(b_hh)
        mods.append(m)
    return torch.nn.ModuleList(mods)


def stack_flops(sizes, T, B, train: bool) -> float:
    """Matmul FLOPs of the stack: forward 2*T*B*4H*(I+H) per layer, backward twice that."""
    fwd = sum(2 * T * B * 4 * h * (i + h) for i, h in sizes)
    return 3 * fwd if train else fwd


# ---- cases -----------------------------------------------------------------------------------


@dataclass
class Case:
    group: str
    name: str
    make: Callable[[], Callable[[], None]]  # builds the state, returns one timed step
    work: float  # units of work per step (tokens or sequences)
    unit: str
    flops: float
    baseline: bool = False
    rounds: int = 5
    extra: dict = field(default_factory=dict)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device, dtype):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def train_step_gulm(sizes, T, B, device, amp=None, fn=wd_lstm):
    params = make_params(sizes, device)
    x = torch.randn(T, B, sizes[0][0], device=device, requires_grad=True)
    gen = torch.Generator(device=device).manual_seed(0)

    def step():
        with _autocast(device, amp):
            h = x
            for w_ih, w_hh, b_ih, b_hh in params:
                h, _, _ = fn(h, w_ih, w_hh, b_ih, b_hh, drop_p=WEIGHT_P, generator=gen)
            loss = h.float().sum()
        loss.backward()
        _sync(device)

    return step


def train_step_fastai(sizes, T, B, device, amp=None):
    stack = fastai_stack(sizes, device, make_params(sizes, device)).train()
    x = torch.randn(T, B, sizes[0][0], device=device, requires_grad=True)

    def step():
        with _autocast(device, amp):
            h = x
            for m in stack:
                h, _ = m(h)
            loss = h.float().sum()
        loss.backward()
        _sync(device)

    return step


def infer_step_gulm(sizes, T, B, device, amp=None):
    params = make_params(sizes, device)
    x = torch.randn(T, B, sizes[0][0], device=device)

    def step():
        with torch.no_grad(), _autocast(device, amp):
            h = x
            for w_ih, w_hh, b_ih, b_hh in params:
                h, _, _ = wd_lstm(h, w_ih, w_hh, b_ih, b_hh, training=False)
        _sync(device)

    return step


def infer_step_nn(sizes, T, B, device, amp=None):
    stack = torch.nn.ModuleList(torch.nn.LSTM(i, h) for i, h in sizes).to(device).eval()
    x = torch.randn(T, B, sizes[0][0], device=device)

    def step():
        with torch.no_grad(), _autocast(device, amp):
            h = x
            for m in stack:
                h, _ = m(h)
        _sync(device)

    return step


def cpu_cases() -> list[Case]:
    dev = torch.device("cpu")
    bf16 = torch.bfloat16
    cases = []
    for tag, sizes, B in (("awd", AWD, 64), ("small", SMALL, 32)):
        T = 70
        fl = stack_flops(sizes, T, B, True)
        g = f"{tag}-train-fp32"
        cases += [
            Case(g, "gulm wd_lstm", lambda s=sizes, b=B, t=T: train_step_gulm(s, t, b, dev), T * B,
                 "tok/s", fl),
            Case(g, "nn.LSTM + WeightDropout", lambda s=sizes, b=B, t=T: train_step_fastai(s, t, b, dev),
                 T * B, "tok/s", fl, baseline=True),
            Case(g, "python loop (wd_lstm_ref)",
                 lambda s=sizes, b=B, t=T: train_step_gulm(s, t, b, dev, fn=wd_lstm_ref), T * B,
                 "tok/s", fl, baseline=True),
        ]
    T, B = 70, 64
    fl = stack_flops(AWD, T, B, True)
    g = "awd-train-bf16"
    cases += [
        Case(g, "gulm wd_lstm (bf16 autocast)", lambda t=T, b=B: train_step_gulm(AWD, t, b, dev, bf16),
             T * B, "tok/s", fl),
        Case(g, "nn.LSTM + WeightDropout (fp32)", lambda t=T, b=B: train_step_fastai(AWD, t, b, dev),
             T * B, "tok/s", fl, baseline=True),
        Case(g, "nn.LSTM + WeightDropout (bf16 autocast)",
             lambda t=T, b=B: train_step_fastai(AWD, t, b, dev, bf16), T * B, "tok/s", fl, baseline=True),
    ]
    T, B = 248, 256  # 500 bp windows, k=5, stride 2
    fl = stack_flops(AWD, T, B, False)
    for name, amp in (("fp32", None), ("bf16", bf16)):
        g = f"awd-infer-{name}"
        cases += [
            Case(g, f"gulm wd_lstm ({name})", lambda a=amp, t=T, b=B: infer_step_gulm(AWD, t, b, dev, a), B,
                 "seq/s", fl),
            Case(g, f"nn.LSTM eval ({name})", lambda a=amp, t=T, b=B: infer_step_nn(AWD, t, b, dev, a), B,
                 "seq/s", fl, baseline=True),
        ]
    return cases


def cuda_cases() -> list[Case]:
    dev = torch.device("cuda")
    cases = []
    T = 70
    for amp_name, amp in (("fp32", None), ("bf16", torch.bfloat16)):
        for B in (64, 256):
            fl = stack_flops(AWD, T, B, True)
            g = f"cuda-awd-train-{amp_name}-B{B}"
            cases += [
                Case(g, "gulm wd_lstm", lambda b=B, a=amp, t=T: train_step_gulm(AWD, t, b, dev, a),
                     T * B, "tok/s", fl, rounds=20),
                Case(g, "cuDNN nn.LSTM + WeightDropout",
                     lambda b=B, a=amp, t=T: train_step_fastai(AWD, t, b, dev, a), T * B, "tok/s", fl,
                     baseline=True, rounds=20),
            ]
    # Scan-style inference: 150 bp windows (k=5, s=2: 73 tokens), eval, vs cuDNN nn.LSTM.
    T = 73
    fl_inf = stack_flops(AWD, T, 1, False)
    for amp_name, amp in (("fp32", None), ("bf16", torch.bfloat16)):
        for B in (256, 1024):
            g = f"cuda-awd-infer150-{amp_name}-B{B}"
            cases += [
                Case(g, "gulm wd_lstm", lambda b=B, a=amp, t=T: infer_step_gulm(AWD, t, b, dev, a), B,
                     "seq/s", fl_inf * B, rounds=20),
                Case(g, "cuDNN nn.LSTM eval", lambda b=B, a=amp, t=T: infer_step_nn(AWD, t, b, dev, a), B,
                     "seq/s", fl_inf * B, baseline=True, rounds=20),
            ]
    return cases


def all_cases(device: str) -> list[Case]:
    return cuda_cases() if device == "cuda" else cpu_cases()


def matmul_gflops(device, n=2048, dtype=torch.float32, reps=5) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    ts = []
    for _ in range(reps + 1):
        _sync(a.device)
        t0 = time.perf_counter()
        a @ b
        _sync(a.device)
        ts.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(ts[1:]) / 1e9


# ---- pytest-benchmark ------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - script mode without pytest
    pytest = None

if pytest is not None:
    _DEVICE = os.environ.get("GULM_BENCH_DEVICE", "cpu")

    @pytest.fixture(scope="module", autouse=True)
    def _threads():
        old = torch.get_num_threads()
        torch.set_num_threads(CPU_THREADS)
        yield
        torch.set_num_threads(old)

    @pytest.fixture(scope="module")
    def matmul_peak():
        """Large-matmul GFLOP/s (2048^3, fp32 and bf16), recorded beside each figure."""
        if _DEVICE == "cuda" and not torch.cuda.is_available():
            return {}
        dev = torch.device(_DEVICE)
        return {
            "matmul_gflops_fp32": matmul_gflops(dev),
            "matmul_gflops_bf16": matmul_gflops(dev, dtype=torch.bfloat16),
        }

    @pytest.mark.parametrize(
        "case", all_cases(_DEVICE), ids=lambda c: f"{c.group}:{c.name}".replace(" ", "_")
    )
    def test_lstm_throughput(benchmark, case, matmul_peak):
        if _DEVICE == "cuda" and not torch.cuda.is_available():
            pytest.skip("no CUDA device")
        step = case.make()
        benchmark.group = case.group
        rounds = int(os.environ.get("GULM_BENCH_ROUNDS", 0)) or case.rounds
        benchmark.pedantic(step, rounds=rounds, iterations=1, warmup_rounds=1)
        med = benchmark.stats.stats.median
        benchmark.extra_info.update(
            label=case.name,
            baseline=case.baseline,
            throughput=case.work / med,
            unit=case.unit,
            gflops=case.flops / med / 1e9,
            device=_DEVICE,
            threads=torch.get_num_threads() if _DEVICE == "cpu" else None,
            **matmul_peak,
            **case.extra,
        )


# ---- script ----------------------------------------------------------------------------------


def _cpu_jiffies():
    """(busy jiffies of the whole machine, jiffies used by this process) from /proc."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = sum(v) - v[3] - v[4]  # minus idle and iowait
    with open("/proc/self/stat") as f:
        w = f.read().rsplit(")", 1)[1].split()
    return busy, int(w[11]) + int(w[12])  # utime + stime of all threads


def timed_rounds(step, rounds, quiet_only=False, max_tries=None, other_max=0.05):
    """Times `rounds` calls of step. With quiet_only (Linux), a round counts only if other
    processes used less than other_max of one core meanwhile (a shared machine), retried up
    to max_tries; returns (times, rounds discarded)."""
    ts, dropped, tries = [], 0, 0
    max_tries = max_tries or 6 * rounds
    hz = os.sysconf("SC_CLK_TCK") if quiet_only else 100
    while len(ts) < rounds:
        if quiet_only:
            b0, s0 = _cpu_jiffies()
        t0 = time.perf_counter()
        step()
        dt = time.perf_counter() - t0
        tries += 1
        if quiet_only:
            b1, s1 = _cpu_jiffies()
            other = max(0, (b1 - b0) - (s1 - s0)) / hz
            if other > other_max * dt and tries < max_tries:
                dropped += 1
                continue
        ts.append(dt)
    return ts, dropped



def _time_case(case, rounds, quiet_only):
    step = case.make()
    step()  # warm-up
    ts, dropped = timed_rounds(step, rounds or case.rounds, quiet_only)
    return statistics.median(ts), ts, dropped


def _print_rows(rows):
    print(f"| group | benchmark | threads | throughput | GFLOP/s | ratio to {'first baseline'} |")
    print("|---|---|---:|---:|---:|---:|")
    for case, n, med in rows:
        base = next((m for c, k, m in rows if c.group == case.group and k == n and c.baseline), None)
        ratio = f"{base / med:.2f}x" if base else "-"
        print(f"| {case.group} | {case.name}{' (baseline)' if case.baseline else ''} | {n} | "
              f"{case.work / med:.1f} {case.unit} | {case.flops / med / 1e9:.0f} | {ratio} |")


def run_contended(cases, rounds):
    """The cases under a busy process on one core, at 1 thread, at all CPUs of the mask and at
    gulm.threads' default; returns rows (case, threads, median seconds)."""
    from machine import contended

    cases = [c for c in cases if "python loop" not in c.name]
    rows = []
    with contended() as (default, counts):
        for n in counts:
            torch.set_num_threads(n)
            for case in cases:
                med, ts, _ = _time_case(case, rounds, False)
                rows.append((case, n, med))
                print(f"  {n} threads  {case.group:18s} {case.name:36s} {case.work / med:9.1f} "
                      f"{case.unit} (median of {len(ts)}, {[round(t, 2) for t in ts]})", flush=True)
    print()
    _print_rows(rows)
    print()
    for group in dict.fromkeys(c.group for c, _, _ in rows):
        gulm = {n: m for c, n, m in rows if c.group == group and not c.baseline}
        base = {n: m for c, n, m in rows if c.group == group and c.baseline}
        best_n = min(gulm, key=gulm.get)
        unit = next(c.unit for c, _, _ in rows if c.group == group)
        work = next(c.work for c, _, _ in rows if c.group == group)
        print(f"{group} under load: default {default} thread(s) {work / gulm[default]:.1f} {unit}, best fixed "
              f"{best_n} thread(s) {work / gulm[best_n]:.1f} {unit}: default/best = "
              f"{gulm[best_n] / gulm[default]:.3f} (target >= 0.90)")
        for n in sorted(gulm):
            print(f"  {n} thread(s): gulm / nn.LSTM+WD at the same threads = {base[n] / gulm[n]:.2f}x")
        best_base = min(base.values())
        print(f"  gulm at the default vs nn.LSTM+WD at its best fixed count: "
              f"{best_base / gulm[default]:.2f}x (target >= 1.0)")
    return rows, default


def run_script(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--groups", default="", help="comma-separated groups (default: all)")
    ap.add_argument("--rounds", type=int, default=0, help="timed rounds per case (default: per case)")
    ap.add_argument("--threads", type=int, default=CPU_THREADS)
    ap.add_argument("--quiet-only", action="store_true",
                    help="discard rounds during which other processes used the CPU (shared "
                         "machines; Linux /proc)")
    ap.add_argument("--gemm", choices=["auto", "mkl", "onednn", "avx512"], default=None,
                    help="force the LSTM's CPU GEMM backend (sets GULM_GEMM; default: auto)")
    ap.add_argument("--contended", action="store_true",
                    help="time the groups (default awd-train-fp32) beside a busy process on one core")
    ap.add_argument("--json", default=None, help="also write the rows as JSON")
    ap.add_argument("--no-loop", action="store_true", help="skip the python-loop baseline (slow)")
    args = ap.parse_args(argv)
    if args.gemm:
        os.environ["GULM_GEMM"] = args.gemm
    from machine import describe, fix_malloc_threshold, gemm_summary

    # gulm and its baselines share one process: a fixed mmap threshold keeps one's frees from
    # deciding whether the other's allocations page-fault (see machine.fix_malloc_threshold)
    fix_malloc_threshold()

    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    wanted = set(filter(None, args.groups.split(","))) or ({"awd-train-fp32"} if args.contended else set())
    cases = [c for c in all_cases(args.device) if (not wanted or c.group in wanted)
             and not (args.no_loop and "python loop" in c.name)]
    print(describe())
    if args.contended:
        rows, default = run_contended(cases, args.rounds)
    else:
        peak = matmul_gflops(dev)
        peak_bf16 = matmul_gflops(dev, dtype=torch.bfloat16)
        print(f"device {args.device}, matmul 2048^3: fp32 {peak:.0f} GFLOP/s, bf16 {peak_bf16:.0f} GFLOP/s")
        rows = []
        for case in cases:
            med, ts, dropped = _time_case(case, args.rounds, args.quiet_only)
            rows.append((case, torch.get_num_threads(), med))
            print(f"  {case.group:22s} {case.name:42s} {case.work / med:10.1f} {case.unit:5s} "
                  f"{case.flops / med / 1e9:7.1f} GFLOP/s  (median {med * 1e3:.1f} ms, best "
                  f"{case.work / min(ts):.1f} {case.unit}, of {len(ts)}"
                  f"{f', {dropped} busy rounds dropped' if dropped else ''})", flush=True)
        print()
        _print_rows(rows)
    if args.device == "cpu":
        print(f"\nLSTM GEMM backend: {gemm_summary()}")
    if args.json:
        import json

        with open(args.json, "w") as fh:
            json.dump({"machine": describe(), "gemm": gemm_summary() if args.device == "cpu" else None,
                       "contended": args.contended,
                       "rows": [dict(group=c.group, name=c.name, baseline=c.baseline, threads=n,
                                     median_s=m, throughput=c.work / m, unit=c.unit) for c, n, m in rows]},
                      fh, indent=2)


if __name__ == "__main__":
    run_script()
