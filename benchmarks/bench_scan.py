"""Genome-scan throughput: gulm's scan vs the seed's way, at AWD size and at demo size.

    GULM_DATA=../shared/data python benchmarks/bench_scan.py [--region-kb 200] [--json out.json]

Both strands, 150 bp windows, stride 50, k=5 stride 2. The classifier is untrained (random
weights): speed does not depend on the weights. In one process:
  * seed: the Genomic-ULMFiT way - a Python loop over windows, each tokenized in Python
    (string slicing + dict lookup) and run through an nn.LSTM-based AWD-LSTM (weights copied
    from gulm's model, so both compute the same function) in batches of 64, fp32;
  * gulm fp32 / bf16: `gulm.scan_genome` (kernel tokenization, gathered windows, fused LSTM
    op, batches of 512) with a fixed --threshold, so that both sides score the same windows
    (`--threshold auto` on a checkpoint without calibration scores --background-windows, 2,000
    by default, dinucleotide-shuffled windows more, once per scan: before 2026-12-03 this
    benchmark timed them too, which halved gulm's windows/s on a 50 kb region);
on a --region-kb region of E. coli K-12 (or of a synthetic genome without GULM_DATA),
extrapolated to the whole genome. Then a demo-size model (emb 64 / hidden 256) scans the
whole genome for real. Prints windows/s, ratios to the seed's way, the achieved GFLOP/s
beside a measured matmul peak, and peak RSS.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import tempfile
import time

import numpy as np
import torch
from torch import nn

WINDOW, STRIDE, K, S = 150, 50, 5, 2


def genome_path(tmp):
    data = os.environ.get("GULM_DATA")
    if data:
        import glob

        hits = glob.glob(os.path.join(data, "ecoli_k12_mg1655", "*genomic.fna.gz"))
        if hits:
            return hits[0], "E. coli K-12 MG1655"
    from gulm.demo.synthetic import synthetic_genome

    g = synthetic_genome(4_641_652, seed=0)
    p = os.path.join(tmp, "synthetic.fa.gz")
    g.write_fasta(p)
    return p, "synthetic 4.64 Mbp genome (GULM_DATA not set)"


def make_classifier(tmp, emb, hid, name):
    from gulm.data.tokenizer import KmerTokenizer
    from gulm.nn import CLASSIFIER_DROPOUTS, AWDConfig, classifier
    from gulm.runtime.checkpoint import save_checkpoint

    torch.manual_seed(0)
    tok = KmerTokenizer(K, S)
    cfg = AWDConfig(vocab_size=tok.vocab_size, emb_size=emb, hidden_size=hid, n_layers=3, n_classes=2,
                    **CLASSIFIER_DROPOUTS)
    model = classifier(cfg).eval()
    path = os.path.join(tmp, name)
    save_checkpoint(path, model, kind="classifier", model_config=cfg.to_dict(), tokenizer=tok,
                    extra={"classes": ["non_promoter", "promoter"], "window": WINDOW})
    return path, model


class SeedAWD(nn.Module):
    """The seed's inference path: nn.Embedding + nn.LSTM layers + the pooling head."""

    def __init__(self, ours):
        super().__init__()
        enc = ours.encoder
        self.emb = nn.Embedding.from_pretrained(enc.encoder.weight.detach().clone())
        self.rnns = nn.ModuleList()
        for r in enc.rnns:
            lstm = nn.LSTM(r.input_size, r.hidden_size, batch_first=True)
            lstm.load_state_dict(r.state_dict())
            self.rnns.append(lstm)
        self.head = ours.head

    def forward(self, ids):
        x = self.emb(ids)
        for r in self.rnns:
            x, _ = r(x)
        out = x.transpose(0, 1)
        lengths = torch.full((ids.size(0),), ids.size(1), dtype=torch.long)
        return self.head(out, lengths)


def seed_scan(model, seq, stoi):
    """Python loop over windows, tokenized in Python, batches of 64 (both strands)."""
    comp = str.maketrans("ACGT", "TGCA")
    starts = list(range(0, len(seq) - WINDOW + 1, STRIDE))
    scores = []
    with torch.no_grad():
        for strand in "+-":
            batch = []
            for p in starts:
                w = seq[p:p + WINDOW]
                if strand == "-":
                    w = w.translate(comp)[::-1]
                toks = [w[i:i + K] for i in range(0, len(w), S) if len(w[i:i + K]) == K]
                batch.append([stoi.get(t, 1) for t in toks])
                if len(batch) == 64:
                    scores += model(torch.tensor(batch)).softmax(-1)[:, 1].tolist()
                    batch = []
            if batch:
                scores += model(torch.tensor(batch)).softmax(-1)[:, 1].tolist()
    return np.array(scores)


def matmul_peak(dtype):
    a = torch.randn(2048, 2048, dtype=dtype)
    b = torch.randn(2048, 2048, dtype=dtype)
    for _ in range(2):
        a @ b
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        a @ b
        ts.append(time.perf_counter() - t)
    return 2 * 2048 ** 3 / np.median(ts) / 1e9


def flops_per_window(emb, hid):
    T = (WINDOW - K) // S + 1
    sizes = [emb, hid, hid, emb]
    return sum(2 * 4 * sizes[i + 1] * (sizes[i] + sizes[i + 1]) * T for i in range(3))


def default_dtypes() -> list[str]:
    """fp32, plus bf16 where the CPU computes it natively (on AVX2-only CPUs torch emulates
    bf16 matmuls, tens of times slower: timing them there measures the emulation)."""
    from gulm.runtime.device import cpu_has_native_bf16

    return ["fp32", "bf16"] if cpu_has_native_bf16() else ["fp32"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--region-kb", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--dtypes", nargs="+", choices=["fp32", "bf16"], default=None,
                    help="precisions to time (default: fp32, and bf16 where the CPU has native bf16)")
    args = ap.parse_args()
    dtypes = args.dtypes or default_dtypes()
    torch.set_num_threads(args.threads)
    from gulm.data.genome import Genome
    from gulm.scan import scan_genome

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        fasta, label = genome_path(tmp)
        g = Genome(fasta)
        chrom = g.names[0]
        glen = g.length(chrom)
        region = f"{chrom}:1000001-{1_000_000 + args.region_kb * 1000}"
        seq = g.fetch(chrom, 1_000_000, 1_000_000 + args.region_kb * 1000, upper=True)
        ckpt, model = make_classifier(tmp, 400, 1150, "awd")
        n_windows = 2 * ((len(seq) - WINDOW) // STRIDE + 1)
        whole = 2 * ((glen - WINDOW) // STRIDE + 1)
        fpw = flops_per_window(400, 1150)
        peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16) if "bf16" in dtypes else float("nan")}

        from itertools import product

        stoi = {"".join(p): i + 2 for i, p in enumerate(product("ACGT", repeat=K))}
        seed_model = SeedAWD(model).eval()
        t = time.perf_counter()
        seed_scores = seed_scan(seed_model, seq, stoi)
        t_seed = time.perf_counter() - t
        results["awd-seed-python-nnlstm"] = dict(seconds=t_seed, windows=n_windows, baseline=True)
        for dtype, table in [c for c in (("fp32", False), ("fp32", True), ("bf16", True)) if c[0] in dtypes]:
            # GULM_NO_INPUT_TABLE=1: the first layer runs its input GEMM (the A/B of the table).
            os.environ["GULM_NO_INPUT_TABLE"] = "0" if table else "1"
            t = time.perf_counter()
            res = scan_genome(checkpoint=ckpt, fasta=fasta, regions=[region], window=WINDOW, stride=STRIDE,
                              dtype=dtype, batch_size=args.batch_size, progress=False, threshold="0.5",
                              out=os.path.join(tmp, f"scan_{dtype}"), windows_tsv=False)
            sec = time.perf_counter() - t
            name = f"awd-gulm-{dtype}" + ("" if table else "-no-input-table")
            results[name] = dict(seconds=sec, windows=int(res.score.size),
                                 gflops=fpw * res.score.size / sec / 1e9, peak=peaks[dtype])
            if dtype == "fp32":
                ours = np.concatenate([res.score[res.strand == "+"], res.score[res.strand == "-"]])
                results[f"{name}-max-abs-diff-vs-seed"] = float(np.abs(ours - seed_scores).max())
        os.environ.pop("GULM_NO_INPUT_TABLE", None)
        if not args.skip_demo:
            dckpt, _ = make_classifier(tmp, 64, 256, "demo")
            for dtype in dtypes:
                t = time.perf_counter()
                res = scan_genome(checkpoint=dckpt, fasta=fasta, window=WINDOW, stride=STRIDE, dtype=dtype,
                                  batch_size=args.batch_size, progress=False, threshold="0.5",
                                  out=os.path.join(tmp, f"demo_{dtype}"), windows_tsv=False)
                results[f"demo-gulm-{dtype}-whole-genome"] = dict(seconds=time.perf_counter() - t,
                                                                 windows=int(res.score.size),
                                                                 peak_rss_mb=res.summary["peak_rss_mb"])
    print(f"genome: {label}; AWD region {args.region_kb} kb both strands ({n_windows} windows); "
          f"whole genome {whole} windows")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}, {args.threads} threads; matmul peak fp32 {peaks['fp32']:.0f} / bf16 "
          f"{peaks['bf16']:.0f} GFLOP/s")
    base = results["awd-seed-python-nnlstm"]
    base_wps = base["windows"] / base["seconds"]
    for k, v in results.items():
        if not isinstance(v, dict):
            print(f"{k}: {v:.2e}")
            continue
        wps = v["windows"] / v["seconds"]
        v["windows_per_s"] = wps
        extra = ""
        if k.startswith("awd"):
            v["ratio_vs_seed"] = wps / base_wps
            v["whole_genome_s"] = whole / wps
            extra = f" x{wps / base_wps:5.2f} vs seed; whole genome {whole / wps / 60:6.1f} min"
            if "gflops" in v:
                # Model FLOPs per second (the table path skips ~9% of them: an upper reading).
                extra += f"; {v['gflops']:.0f} GFLOP/s ({v['gflops'] / v['peak']:.0%} of matmul peak)"
        if "peak_rss_mb" in v:
            extra += f"; peak RSS {v['peak_rss_mb']:.0f} MB"
        print(f"{k:34s} {v['seconds']:8.1f} s {wps:9.0f} windows/s{extra}")
    if args.json:
        doc = {"machine_info": {"cpu": {"brand_raw": platform.processor(), "count": os.cpu_count()}},
               "datetime": time.strftime("%Y-%m-%dT%H:%M:%S"), "genome": label,
               "benchmarks": [{"name": k, "group": "scan", "stats": {"median": v["seconds"]},
                               "extra_info": {**v, "throughput": v["windows_per_s"], "unit": "windows/s"}}
                              for k, v in results.items() if isinstance(v, dict)]}
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=2)


if __name__ == "__main__":
    main()
