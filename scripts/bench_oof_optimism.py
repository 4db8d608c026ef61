"""How optimistic is an OOF score when each fold's best epoch is picked on the very rows that become oof.csv?

On a `kit synth` set, `kit train --fold all` (the default --monitor val_metric_tuned, no patience) records every
epoch's validation scores in each fold's history.csv, on that fold's validation rows: the rows of oof.csv. Three
ways to pick the epoch whose predictions a fold contributes, each scored on the same rows:

    best         each fold's own best epoch (what best.pt and oof.csv hold): picked on the rows it is scored on
    last         the last epoch (`--monitor last` in spirit: nothing picked on the scored rows)
    other folds  for fold f, the epoch with the best mean score over the *other* folds (an honest choice)

The gap best - other folds is the optimism of the reported OOF score. It is measured for the metric at 0.5 and
tuned (per-class thresholds fit on the fold), and, as the blend scores it, on the pooled oof.csv: best.pt against
last.pt (`kit predict --checkpoint last.pt`), macro F1 at 0.5 by scikit-learn.

Usage: python scripts/bench_oof_optimism.py [--n-train 480] [--folds 4] [--epochs 8] [--seeds 0,1]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def kit(*args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "kit", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"kit {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def pick(scores: np.ndarray) -> dict[str, float]:
    """scores: folds x epochs, each fold's validation score per epoch. The three estimates (mean over folds)."""
    folds = scores.shape[0]
    others = [int(np.argmax(np.delete(scores, f, axis=0).mean(axis=0))) for f in range(folds)]
    return {"best": float(scores.max(axis=1).mean()), "last": float(scores[:, -1].mean()),
            "other folds": float(np.mean([scores[f, e] for f, e in enumerate(others)])),
            "other-fold epochs": [e + 1 for e in others],
            "best epochs": [int(e) + 1 for e in scores.argmax(axis=1)]}


def pooled_f1(data: Path, oof: pd.DataFrame, classes: list[str]) -> float:
    from sklearn.metrics import f1_score

    from kit.data.reading import CompetitionData, labels_to_matrix
    from kit.data.spec import HPA

    labels = CompetitionData(data, HPA).train_labels().set_index("Id")
    truth = labels_to_matrix(labels.loc[oof["Id"], "labels"].tolist(), HPA.num_classes)
    return float(f1_score(truth, oof[classes].to_numpy() >= 0.5, average="macro", zero_division=0))


def one_seed(root: Path, args, seed: int) -> dict:
    from kit.data.spec import HPA

    data = root / "data"
    kit("synth", str(data), "--n-train", str(args.n_train), "--n-test", "8", "--size", str(args.size),
        "--seed", str(seed), cwd=root)
    kit("folds", "--data", str(data), "--k", str(args.folds), "--seed", str(seed), cwd=root)
    start = time.time()
    kit("train", "--data", str(data), "--fold", "all", "--model", args.model, "--size", str(args.size),
        "--epochs", str(args.epochs), "--tta", "none", "--workers", "0", "--device", "cpu", "--no-progress",
        "--seed", str(seed), cwd=root)
    seconds = time.time() - start
    runs = root / "runs" / args.model
    histories = [pd.read_csv(runs / f"fold{k}" / "history.csv") for k in range(args.folds)]
    column = next(c for c in histories[0].columns if c.startswith("val_") and c.endswith("_tuned"))[:-len("_tuned")]
    result = {"seed": seed, "train seconds": round(seconds, 1), "metric": column}
    for name, col in ((f"{column} at 0.5", column), (f"{column} tuned", f"{column}_tuned")):
        result[name] = pick(np.stack([h[col].to_numpy() for h in histories]))
    classes = list(HPA.classes)
    best = pd.concat([pd.read_csv(runs / f"fold{k}" / "oof.csv", dtype={"Id": str}) for k in range(args.folds)])
    last = []
    for k in range(args.folds):
        out = root / "last" / f"fold{k}"
        kit("predict", str(runs / f"fold{k}"), "--checkpoint", "last.pt", "--split", "oof", "--out", str(out),
            "--workers", "0", "--device", "cpu", cwd=root)
        last.append(pd.read_csv(out / "oof.csv", dtype={"Id": str}))
    result["pooled oof F1 at 0.5"] = {"best": pooled_f1(data, best, classes),
                                      "last": pooled_f1(data, pd.concat(last), classes)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=480)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--model", default="test_resnet")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON here too.")
    args = parser.parse_args()
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        with tempfile.TemporaryDirectory(prefix="oof-optimism-") as tmp:
            results.append(one_seed(Path(tmp), args, seed))
            print(json.dumps(results[-1]), flush=True)
    print(f"\n{args.model}, {args.n_train} train images at {args.size} px, {args.folds} folds, {args.epochs} epochs")
    print(f"{'seed':>4}  {'score':<28} {'best':>7} {'last':>7} {'other folds':>12} {'best-other':>11}")
    for r in results:
        for name in (f"{r['metric']} at 0.5", f"{r['metric']} tuned"):
            s = r[name]
            print(f"{r['seed']:>4}  {name:<28} {s['best']:7.4f} {s['last']:7.4f} {s['other folds']:12.4f} "
                  f"{s['best'] - s['other folds']:11.4f}")
        p = r["pooled oof F1 at 0.5"]
        print(f"{r['seed']:>4}  {'pooled oof F1 at 0.5':<28} {p['best']:7.4f} {p['last']:7.4f} {'':>12} "
              f"{'':>11}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
