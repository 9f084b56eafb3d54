"""End-to-end language-model training throughput and corpus-building memory.

    python benchmarks/bench_train.py [--sizes awd demo] [--steps 6] [--json out.json]
        [--gemm auto|mkl|onednn|avx512] [--contended]
    GULM_DATA=../shared/data python benchmarks/bench_train.py --corpus

For each model size it measures, in one process and as medians over --steps steps:
  * train step: the full LM training step as `gulm pretrain` runs it (batch from LMBatches,
    embedding + weight-dropped AWD-LSTM + tied decoder, AR/TAR loss, backward, clipping,
    AdamW) - tokens/s;
  * data: producing the batches alone (LMBatches over a 5M-token array) - its share of the
    step time (target < 5 %);
  * op: the raw fused LSTM stack (3 layers, forward + backward) on the same shapes.
It prints the machine (CPU model, vector extensions, torch, threads) and the GEMM backend the
LSTM used; --gemm forces one (GULM_GEMM). --contended times the steps beside a busy process on
one core (benchmarks/machine.py) at 1 thread, at every CPU of the affinity mask and at
gulm.threads' default under that load, and compares the default with the best fixed count.
With --corpus it builds LM corpora from the E. coli genome (4.6 Mbp) and the bacterial
ensemble (24 Mbp, + E. coli) in fresh subprocesses and reports their peak RSS.
Writes a JSON shaped like pytest-benchmark's (benchmarks/report.py prints it).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
import torch

SIZES = {
    "awd": dict(emb_size=400, hidden_size=1150, n_layers=3, bs=64, bptt=70, k=5),
    # the demo's LM (gulm.demo.DEMO: 3-mer tokens since 2026-12-06)
    "demo": dict(emb_size=64, hidden_size=256, n_layers=3, bs=32, bptt=70, k=3),
    # the demo's LM before, on 5-mer tokens: the size of benchmarks/README.md's "demo" figures up
    # to 2026-12-06
    "demo5": dict(emb_size=64, hidden_size=256, n_layers=3, bs=32, bptt=70, k=5),
    # the shipped pretrained LMs (gulm.pretrained): 3-mer tokens, as they were trained
    "shipped": dict(emb_size=128, hidden_size=512, n_layers=3, bs=128, bptt=70, k=3),
}


def _median_time(fn, steps, warmup=2):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), ts


def bench_size(name, steps, dtype, warmup=2):
    from gulm.data.corpus import LMBatches
    from gulm.nn import LM_DROPOUTS, AWDConfig, language_model
    from gulm.ops.lstm import wd_lstm
    from gulm.train.tasks import LMTask

    s = SIZES[name]
    vocab = 4 ** s["k"] + 2
    rng = np.random.default_rng(0)
    tokens = rng.integers(2, vocab, size=5_000_000).astype(np.int16)
    batches = LMBatches(tokens, s["bs"], s["bptt"], shuffle=True, seed=0)
    cfg = AWDConfig(vocab_size=vocab, emb_size=s["emb_size"], hidden_size=s["hidden_size"],
                    n_layers=s["n_layers"], drop_mult=0.3, **LM_DROPOUTS)
    model = language_model(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.01)
    task = LMTask()
    it = iter(batches)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if dtype == "bf16" else torch.autocast("cpu", enabled=False)
    n_tok = []

    def next_batch():
        nonlocal it
        try:
            return next(it)
        except StopIteration:
            it = iter(batches)
            return next(it)

    def train_step():
        x, y = next_batch()
        n_tok.append(x.numel())
        with ctx:
            loss, _ = task.loss(model, (x, y), "cpu")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()

    t_step, _ = _median_time(train_step, steps, warmup=warmup)
    tok_step = float(np.median(n_tok[-steps:]))
    t_data, _ = _median_time(next_batch, max(50, steps))
    tok_data = s["bs"] * s["bptt"]

    # the raw op stack on the same shapes
    sizes = [s["emb_size"]] + [s["hidden_size"]] * (s["n_layers"] - 1) + [s["emb_size"]]
    ws = []
    for i in range(s["n_layers"]):
        I, H = sizes[i], sizes[i + 1]
        ws.append([(torch.randn(4 * H, I) * 0.05).requires_grad_(), (torch.randn(4 * H, H) * 0.05).requires_grad_(),
                   torch.zeros(4 * H, requires_grad=True), torch.zeros(4 * H, requires_grad=True)])
    x0 = torch.randn(s["bptt"], s["bs"], s["emb_size"], requires_grad=True)

    def op_step():
        h = x0
        with ctx:
            for w in ws:
                h = wd_lstm(h, *w, drop_p=0.2, training=True)[0]
        h.float().sum().backward()

    t_op, _ = _median_time(op_step, steps)
    tok_op = s["bs"] * s["bptt"]
    return {
        f"{name}-{dtype}-train-step": dict(median=t_step, throughput=tok_step / t_step, unit="tok/s"),
        f"{name}-{dtype}-lstm-op-stack": dict(median=t_op, throughput=tok_op / t_op, unit="tok/s"),
        f"{name}-{dtype}-data-pipeline": dict(median=t_data, throughput=tok_data / t_data, unit="tok/s",
                                             share_of_step=t_data / t_step * tok_step / tok_data),
    }


CORPUS_CHILD = r"""
import json, resource, sys, time
from gulm.data.corpus import LMCorpus
from gulm.data.tokenizer import KmerTokenizer
def peak_rss_mb():
    # VmHWM belongs to this process image. ru_maxrss would not do: Linux carries it across
    # execve, so a child forked from a large parent reports the parent's peak.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
base = peak_rss_mb()
t = time.perf_counter()
c = LMCorpus.from_fasta(sys.argv[1:], KmerTokenizer(5, 2), both_strands=True)
print(json.dumps(dict(seconds=time.perf_counter() - t, tokens=int(c.train.size + c.valid.size),
                      bases=c.stats["bases"], peak_rss_mb=peak_rss_mb(), import_rss_mb=base)))
"""


def bench_corpus(data_dir):
    import glob

    ecoli = glob.glob(os.path.join(data_dir, "ecoli_k12_mg1655", "*genomic.fna.gz"))
    ens = sorted(glob.glob(os.path.join(data_dir, "bacterial_genomes", "*.fna.gz"))
                 + glob.glob(os.path.join(data_dir, "bacterial_genomes", "partial_500kb", "*.fa.gz")))
    out = {}
    for name, files in (("ecoli", ecoli), ("bacterial-ensemble+ecoli", ens + ecoli)):
        if not files:
            continue
        r = subprocess.run([sys.executable, "-c", CORPUS_CHILD, *files], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        out[f"corpus-{name}"] = dict(median=res["seconds"], throughput=res["bases"] / res["seconds"] / 1e6,
                                    unit="Mbp/s", peak_rss_mb=res["peak_rss_mb"],
                                    import_rss_mb=res["import_rss_mb"], bases=res["bases"],
                                    tokens=res["tokens"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["demo", "awd"], choices=list(SIZES))
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2,
                    help="untimed train steps first (e.g. 250: past the GEMM chooser's first-use timing)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--corpus", action="store_true", help="also measure corpus building (needs GULM_DATA)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--gemm", choices=["auto", "mkl", "onednn", "avx512"], default=None,
                    help="force the LSTM's CPU GEMM backend (sets GULM_GEMM; default: auto)")
    ap.add_argument("--contended", action="store_true",
                    help="time the steps beside a busy process on one core, at several thread counts")
    args = ap.parse_args()
    if args.gemm:
        os.environ["GULM_GEMM"] = args.gemm
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from machine import contended, describe, fix_malloc_threshold, gemm_summary

    fix_malloc_threshold()  # the same allocator state for gulm and the baselines

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = {}
    if args.contended:
        with contended() as (default, counts):
            for n in counts:
                torch.set_num_threads(n)
                for size in args.sizes:
                    for dtype in args.dtypes:
                        for k, v in bench_size(size, args.steps, dtype, args.warmup).items():
                            results[f"{k}-{n}threads"] = v
        for size in args.sizes:
            for dtype in args.dtypes:
                key = f"{size}-{dtype}-train-step"
                tput = {n: results[f"{key}-{n}threads"]["throughput"] for n in counts}
                best = max(tput, key=tput.get)
                print(f"{key} under load: default {default} thread(s) {tput[default]:,.0f} tok/s, best "
                      f"{best} thread(s) {tput[best]:,.0f} tok/s: default/best = "
                      f"{tput[default] / tput[best]:.3f} (target >= 0.90)")
    else:
        for size in args.sizes:
            for dtype in args.dtypes:
                results.update(bench_size(size, args.steps, dtype, args.warmup))
    if args.corpus:
        data = os.environ.get("GULM_DATA")
        if not data:
            print("GULM_DATA is not set: skipping the corpus benchmark", file=sys.stderr)
        else:
            results.update(bench_corpus(data))
    print(describe())
    print(f"LSTM GEMM backend: {gemm_summary()}")
    print(f"{'benchmark':40s} {'median':>10s} {'throughput':>14s}  notes")
    for k, v in results.items():
        notes = ", ".join(f"{n}={v[n]:.3g}" for n in ("share_of_step", "peak_rss_mb", "import_rss_mb", "tokens") if n in v)
        print(f"{k:40s} {v['median'] * 1e3:8.1f}ms {v['throughput']:12,.0f} {v['unit']:5s} {notes}")
    if args.json:
        doc = {"machine_info": {"cpu": {"brand_raw": platform.processor(), "count": os.cpu_count()},
                                "python_version": platform.python_version()},
               "datetime": time.strftime("%Y-%m-%dT%H:%M:%S"),
               "benchmarks": [{"name": k, "group": k.rsplit("-", 1)[0] if not k.startswith("corpus") else "corpus",
                               "stats": {"median": v["median"]},
                               "extra_info": {kk: vv for kk, vv in v.items() if kk != "median"}}
                              for k, v in results.items()]}
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=2)


if __name__ == "__main__":
    main()
