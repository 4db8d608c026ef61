"""Regulariser benchmark: small data, a backbone far too large for it, each regulariser alone and together.

A `kit synth` set small enough to overfit (400 training images, 10 classes) and a resnet18 from random weights
trained with `kit train`'s own `train_fold` on every fold. For each setting: the cross-validated OOF macro F1
(per-class thresholds tuned on the OOF predictions, and at 0.5), and the train/validation loss gap at the
best epoch. The train loss there is measured again on the un-augmented, un-mixed training images with the
best checkpoint (the history's train loss is on mixed / smoothed targets, which are not comparable).

Results are appended to --out (JSON lines) as each setting finishes, so a long run can be read while it goes;
the table is printed at the end (and with --table alone from an earlier --out).

Usage: python scripts/bench_regularisers.py [--n-train 400] [--size 48] [--folds 3] [--epochs 15]
       [--model resnet18] [--only plain,mixup] [--out /tmp/regularisers.jsonl] [--table]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

SETTINGS = {  # name -> the train settings it changes (each regulariser alone at a common default, then all)
    "plain": {},
    "mixup 0.4": {"mixup": 0.4},
    "cutmix 1.0": {"cutmix": 1.0},
    "label_smoothing 0.1": {"label_smoothing": 0.1},
    "drop_path 0.2": {"drop_path": 0.2},
    "drop_rate 0.25": {"drop_rate": 0.25},
    "swa last 5": {"swa": 5},
    "combined": {"mixup": 0.4, "cutmix": 1.0, "label_smoothing": 0.1, "drop_path": 0.2, "swa": 5},
}


def clean_train_loss(run_dir: Path, data, split, settings) -> float:
    """BCE of best.pt on the fold's training images, no augmentation, no mixing."""
    from kit.data.cache import open_store
    from kit.data.loader import ImageDataset
    from kit.train.checkpoint import load_checkpoint
    from kit.train.distributed import make_runtime
    from kit.train.losses import make_loss
    from kit.train.models import build_model
    from kit.train.predict import eval_loader, predict_batches

    best = load_checkpoint(run_dir / "best.pt")
    used = best["settings"]
    model, _ = build_model(settings.replace(pretrained="none"), data.spec)
    model.load_state_dict(best["model"])
    runtime = make_runtime("cpu", "off")
    loader = eval_loader(ImageDataset(open_store(data, "train", settings.size, split.train_ids), split.train_targets),
                         runtime, settings.batch_size, 0)
    _, loss = predict_batches(model, loader, runtime, used["mean"], used["std"], "none", make_loss({"bce": 1.0}))
    return float(loss)


def run_setting(name: str, changes: dict, args, data, folds_csv: Path, work: Path) -> dict:
    import pandas as pd

    from kit.data.reading import labels_to_matrix
    from kit.score.metrics import best_thresholds, macro_f1
    from kit.settings import resolve_settings
    from kit.train.loop import fold_split, train_fold

    options = {"model": args.model, "pretrained": "none", "size": args.size, "epochs": args.epochs,
               "batch_size": args.batch_size, "lr": args.lr, "folds": str(folds_csv), "tta": "none",
               "workers": 0, "progress": False, "seed": args.seed, **changes}
    (settings,) = resolve_settings({}, options)
    started = time.perf_counter()
    frames, gaps, train_losses, val_losses, best_epochs = [], [], [], [], []
    for fold in range(args.folds):
        fold_settings = settings.replace(fold=fold)
        out = work / "runs" / name.replace(" ", "_") / f"fold{fold}"
        result = train_fold(fold_settings, data, out_dir=out, log=lambda line: None)
        frames.append(pd.read_csv(result.files["oof"], dtype={"Id": str}))
        split = fold_split(data, folds_csv, fold)
        best_row = result.history.iloc[result.best_epoch - 1]
        train_loss = clean_train_loss(out, data, split, fold_settings)
        train_losses.append(train_loss)
        val_losses.append(float(best_row["val_loss"]))
        gaps.append(float(best_row["val_loss"]) - train_loss)
        best_epochs.append(result.best_epoch)
        print(f"  {name} fold {fold}: best epoch {result.best_epoch}, tuned score {result.best_score:.4f}, "
              f"clean train loss {train_loss:.4f}, val loss {best_row['val_loss']:.4f}", flush=True)
    labels = data.train_labels()
    oof = pd.concat(frames).set_index("Id")
    truth_of = dict(zip(labels["Id"], labels["labels"]))
    truth = labels_to_matrix([truth_of[i] for i in oof.index], data.spec.num_classes)
    probs = oof[list(data.spec.classes)].to_numpy()
    return {"name": name, "changes": changes, "oof_f1_tuned": float(best_thresholds(truth, probs)[1].mean()),
            "oof_f1_05": float(macro_f1(truth, probs)), "train_loss": float(np.mean(train_losses)),
            "val_loss": float(np.mean(val_losses)), "gap": float(np.mean(gaps)),
            "best_epochs": best_epochs, "minutes": (time.perf_counter() - started) / 60}


def table(rows: list[dict]) -> str:
    plain = next((r for r in rows if r["name"] == "plain"), None)
    lines = ["| setting | OOF macro F1 (tuned) | vs plain | OOF F1 at 0.5 | train loss | val loss | gap | best epochs | min |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        delta = f"{r['oof_f1_tuned'] - plain['oof_f1_tuned']:+.4f}" if plain else ""
        lines.append(f"| {r['name']} | {r['oof_f1_tuned']:.4f} | {delta} | {r['oof_f1_05']:.4f} | {r['train_loss']:.4f} "
                     f"| {r['val_loss']:.4f} | {r['gap']:.4f} | {', '.join(map(str, r['best_epochs']))} "
                     f"| {r['minutes']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=400)
    parser.add_argument("--n-test", type=int, default=20)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default=None, help="comma-separated setting names (default: all)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench_regularisers"), help="data, folds and runs")
    parser.add_argument("--out", type=Path, default=None, help="JSON lines of results (default: DIR/results.jsonl)")
    parser.add_argument("--table", action="store_true", help="only print the table of --out")
    args = parser.parse_args()
    out = args.out or args.dir / "results.jsonl"
    if args.table:
        print(table([json.loads(line) for line in out.read_text().splitlines() if line.strip()]))
        return

    import torch

    from kit.data.cache import build_cache
    from kit.data.folds import make_folds
    from kit.data.reading import CompetitionData
    from kit.data.spec import HPA
    from kit.data.synth import write_dataset

    torch.set_num_threads(args.threads)
    spec = dataclasses.replace(HPA, classes=HPA.classes[:args.classes], class_frequencies=None)
    root = args.dir / "data"
    data = CompetitionData(root, spec)
    if not (root / spec.train_csv).is_file():
        write_dataset(root, spec, n_train=args.n_train, n_test=args.n_test, size=args.size, seed=0, workers=1)
    build_cache(data, args.size, workers=1)
    folds_csv = args.dir / "folds.csv"
    make_folds(data.train_labels(), spec, out=folds_csv, k=args.folds, seed=0)
    names = args.only.split(",") if args.only else list(SETTINGS)
    print(f"{args.n_train} train images, {args.classes} classes, {args.size}px, {args.model} from random weights, "
          f"{args.epochs} epochs, {args.folds} folds, batch {args.batch_size}, lr {args.lr}, "
          f"torch threads {torch.get_num_threads()}", flush=True)
    rows = []
    for name in names:
        row = run_setting(name, SETTINGS[name], args, data, folds_csv, args.dir)
        rows.append(row)
        with out.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(f"{name}: OOF F1 tuned {row['oof_f1_tuned']:.4f}, at 0.5 {row['oof_f1_05']:.4f}, "
              f"gap {row['gap']:.4f} ({row['minutes']:.1f} min)", flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
