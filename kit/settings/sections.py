"""The `folds:`, `blend:` and `submit:` sections of `kit.yaml`: one table each, read alike by the single command
(`kit folds`, `kit blend`, `kit submit`, whose options are generated from the table) and by `kit run`.

Adding a setting is one `Field(...)` line in its table (and the code that uses it). Where the files go and
come from (the folds file, the runs root) is the `train:` section's `folds` and `runs`, shared by every command.

>>> BLEND.resolve({"method": "rank"}, {"name": "final"}, "kit.yaml")["method"]
'rank'
>>> BLEND.resolve({"method": "median"}, {}, "kit.yaml")
Traceback (most recent call last):
kit.errors.KitError: kit.yaml: blend.method: 'median' is not one of mean, rank, weighted, hill, stack
"""
from __future__ import annotations

from pathlib import Path

from kit.layout import SUBMISSIONS_DIR
from kit.settings.fields import Field, Registry, Table, check_plain_name

BLEND_METHODS = Registry("kit.blend.methods", "METHODS")
THRESHOLD_MODES = Registry("kit.score.thresholds", "MODES")
LEAK_USES = Registry("kit.blend.twins", "LEAKS")
STACKERS = Registry("kit.blend.stack", "STACKERS")
CALIBRATIONS = Registry("kit.blend.calibration", "CALIBRATIONS")

FOLDS = Table("folds", (
    Field("k", 5, int, "Number of folds.", minimum=2),
    Field("seed", 42, int, "Random seed; the same seed gives the same folds."),
    Field("groups", None, Path, "CSV with Id,group: every group lands in one fold (e.g. duplicates of one image).",
          nullable=True),
))


def _check_blend(values: dict, where: str) -> None:
    check_plain_name(values["name"], f"{where}.name")


BLEND = Table("blend", (
    Field("name", "blend", str, "Output name: <out>/<name>.csv, .json, .png."),
    Field("out", SUBMISSIONS_DIR, Path, "Output folder."),
    Field("method", "mean", str, "mean; rank (average of per-class ranks); weighted (weights fit on OOF); "
          "hill (Caruana greedy selection with replacement); stack (a second-level model per class over every "
          "member's probabilities of every class, nested in the folds).", BLEND_METHODS),
    Field("thresholds", None, str, "per-class: best OOF score per class; global: one for all; "
          "ratio: test positive rate matches the train rate (or --prior). (default: per-class for an F-score; "
          "a metric scored on the probabilities has no thresholds and refuses it)", THRESHOLD_MODES, nullable=True),
    Field("min_positives", 5, int, "Classes with fewer OOF positives use the global threshold.", minimum=0),
    Field("no_empty", True, bool, "Give a sample with no class above its threshold its highest-scoring class.",
          flags=("--no-empty/--allow-empty",)),
    Field("allow_partial", False, bool, "Blend the complete models only; say which were left out."),
    Field("dups", None, Path, "Pairs of `kit dups` (folds/dups_pairs.csv): duplicate test images get the mean of "
          "their blended scores.", nullable=True),
    Field("leak", "none", str, "copy: a test image with a train twin in --dups gets that twin's labels (a leak of "
          "the competition's labels onto its test set; off unless asked).", LEAK_USES),
    Field("stacker", "logistic", str, "The second level of --method stack: logistic regression or histogram "
          "gradient boosting (scikit-learn).", STACKERS),
    Field("calibrate", "auto", str, "temperature: fit one temperature per class (per output for mlogloss) on the "
          "OOF rows, cross-validated; auto: for log-loss metrics only; none: off.", CALIBRATIONS),
    Field("track", "none", str, "mlflow: log the blend (settings, scores, members, the JSON) as an MLflow run "
          "($MLFLOW_TRACKING_URI, else sqlite:///mlruns.db).", ("none", "mlflow")),
    Field("prior", None, Path, "With --thresholds ratio: CSV of class,rate (class name or index) giving the test "
          "set's positive rates; classes it leaves out keep their train rate.", nullable=True),
), check=_check_blend)

SUBMIT = Table("submit", (
    Field("enabled", False, bool, "`kit run` only: submit the blend at the end.", cli=False),
    Field("kernel", None, str, "`kit submit` only, for a code competition: submit this notebook (owner/slug) "
          "instead of a FILE; Kaggle reruns it.", nullable=True),
    Field("version", None, int, "With --kernel: the notebook version to submit. (default: its latest)", nullable=True,
          minimum=1),
    Field("file_name", "submission.csv", str, "With --kernel: the output file of the notebook that Kaggle scores."),
    Field("message", None, str, "Submission description. (default: from <name>.json beside FILE: members, method, "
          "OOF score)", nullable=True, flags=("-m", "--message")),
    Field("competition", None, str, "Competition slug. (default: competition.slug of the spec, HPA's by default)",
          nullable=True),
    Field("wait", False, bool, "Poll until Kaggle scores the submission and print the public score."),
    Field("timeout", 900, int, "Seconds --wait polls before giving up.", minimum=1),
    Field("dry_run", False, bool, "Check everything and say what would be sent; upload nothing. (default: no; "
          "`kit run`: yes unless the file or --no-dry-run says no)"),
    Field("force", False, bool, "Submit even if these exact bytes were already submitted."),
    Field("log", None, Path, "Append-only log of every attempt. (default: log.csv in blend.out, "
          "submissions/log.csv)", nullable=True),
))
