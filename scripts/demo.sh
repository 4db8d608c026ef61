#!/usr/bin/env bash
# `make demo`: the whole flow on a synthetic data set, in ./demo (runs/, folds/, submissions/ land there).
# Run it again at any time: the data set is kept, finished runs are skipped, interrupted ones resume.
set -euo pipefail

cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 MPLBACKEND=Agg  # the demo never touches the network, and draws without a display
mkdir -p demo
cd demo

if [ ! -f data/sample_submission.csv ]; then
    kit synth data --n-train 1200 --n-test 200 --size 64 --seed 0
fi
kit cache --size 64  # decode every PNG once (kept on later runs); training reads the cache
kit run demo         # kit/experiments/demo.yaml: folds, 2 models x 5 folds, blend, dry-run submit
kit report runs      # learning curves: runs/<model>/fold<k>/curves.png, runs/<model>/folds.png

echo
echo "Done. In $(pwd):"
echo "  submissions/demo.csv         the submission (validated against data/sample_submission.csv)"
echo "  submissions/demo.json, .png  the blend: members, weights, thresholds, per-class F1"
echo "  runs/<model>/fold<k>/        checkpoints, history.csv, curves.png, TTA oof.csv and test.csv"
echo
kit report submissions/demo.json   # the per-class chart, and the final table
