"""Choose the from-scratch classifier's learning rate of `gulm demo` on the valid split only.

    python benchmarks/demo_scratch_lr.py [--lrs 1e-3 3e-3 1e-2 3e-2] [--out /tmp/demo_lr]

Writes the demo's synthetic data (the demo's seed and size), trains the demo's from-scratch
classifier (the same architecture, epochs and best-valid-epoch rule) at each learning rate, and
prints the best valid MCC of each; the test split plays no part in the choice. The demo's
DEMO["scratch_stages"] uses the winner.
"""
from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv=None) -> int:
    from gulm.configs import DataConfig
    from gulm.demo.run import DEMO, classifier_config
    from gulm.demo.synthetic import write_demo_data
    from gulm.train.classifier import train_classifier

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-3, 1e-2, 3e-2])
    p.add_argument("--out", default="/tmp/demo_scratch_lr")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    r = DEMO
    paths = write_demo_data(os.path.join(args.out, "data"), length=r["genome_length"], seed=args.seed,
                            n_train=r["n_train"])
    data = DataConfig(csv=str(paths["promoters"]))
    epochs = r["scratch_stages"][0][0]
    scores = {}
    for lr in args.lrs:
        m = train_classifier(classifier_config(r, data, "", os.path.join(args.out, f"lr{lr:g}"), [[epochs, lr, 0]],
                                               seed=args.seed, progress=False))
        scores[lr] = m["best_valid"]
        print(f"lr {lr:g}: best valid MCC {m['best_valid']:.4f}", flush=True)
    best = max(scores, key=scores.get)
    print(json.dumps({"valid_mcc_by_lr": {f"{k:g}": v for k, v in scores.items()}, "chosen": best}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
