"""`kit blend`: blend the runs' out-of-fold predictions, tune thresholds, write a validated submission."""
from __future__ import annotations

import shlex
from pathlib import Path

import click

from kit.cli.group import main
from kit.cli.options import config_option, data_option, option_words, resolve, table_options
from kit.settings import BLEND


def command_line(run_dirs, runs_root, folds_path, data_dir, config_path, values: dict) -> str:
    """The command with every setting spelled out as resolved (defaults, kit.yaml, options), so the JSON records
    how to make the file again."""
    parts = ["kit", "blend", *map(str, run_dirs), "--runs", str(runs_root), "--folds", str(folds_path)]
    for flag, value in (("--data", data_dir), ("--config", config_path)):
        if value is not None:
            parts.extend([flag, str(value)])
    for f in BLEND.fields:
        if f.cli:
            parts.extend(option_words(f, values[f.name]))
    return shlex.join(parts)


# Measured by scripts/bench_oof_optimism.py (BENCHMARKS.md, "OOF optimism of the best epoch").
EPOCH_PICK_NOTE = ("note: a member's OOF rows hold its best epoch, picked on those very rows (unless trained with "
                   "--monitor last), so cv is still optimistic (on a kit synth benchmark scored by macro F1, by 0.002 "
                   "against an epoch count chosen on the other folds: BENCHMARKS.md)")

@main.command()
@click.argument("run_dirs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--runs", "runs_root", type=click.Path(path_type=Path), default=None,
              help="Runs root blended when no RUN_DIR is given (every runs/<model>/). "
                   "[default: train.runs in the config, else runs]")
@click.option("--folds", "folds_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The Id,fold file the runs were trained on. [default: train.folds in the config, else "
                   "folds/folds.csv]")
@data_option
@config_option
@table_options(BLEND)
def blend(run_dirs, runs_root, folds_path, data_dir, config_path, **options):
    """Blend out-of-fold predictions of RUN_DIR... (runs/<model> folders or a runs root; default --runs),
    tune thresholds and write a validated submission with a JSON report and a PNG beside it.

    Scores are shown at 0.5, at tuned thresholds (in-sample) and cross-validated over the folds (weights
    and thresholds fit on k-1 folds, scored on the held-out one): the last is the honest estimate.
    Settings: defaults, then the config's blend: section, then these options.

    \b
    Examples:
      kit blend --method hill --name hill       submissions/hill.csv, .json, .png from every runs/<model>
      kit blend runs/resnet34 runs/densenet121 --thresholds global
      kit blend --dups folds/dups_pairs.csv --leak copy
      kit blend --method stack --stacker boosting --name stack
      kit blend --thresholds ratio --prior test_rates.csv
      kit blend --method hill --calibrate temperature    (a log-loss competition)

    For a metric scored on the probabilities (macro_auc, logloss, ...) there are no thresholds: the scores are
    the metric on the OOF probabilities (oof: in-sample; calib.: after temperature scaling; cv: weights and
    temperatures fit on the other folds), and --thresholds / --prior are refused.
    """
    from kit.blend import report
    from kit.blend.blending import blend_options, blend_runs
    from kit.settings.train import train_value

    context = resolve(config_path, data_dir)
    values = context.section(BLEND, options)
    train = context.config.section("train")
    runs_root = runs_root or Path(train_value(train, "runs", context.source))
    folds_path = folds_path or Path(train_value(train, "folds", context.source))
    labels = context.data.train_labels()
    spec = context.data.spec
    result = blend_runs(
        list(run_dirs) or [runs_root], spec, folds_path, context.data.root / spec.sample_submission, labels,
        values["out"], values["name"], **blend_options(values),
        command=command_line(run_dirs, runs_root, folds_path, data_dir, config_path, values),
    )
    for member, reason in result.left_out:
        click.echo(f"warning: left out {member}: {reason}", err=True)
    click.echo(report.class_table(result))
    for note in (report.fallback_note(result), report.left_out_note(result), result.calibration_note):
        if note:
            click.echo(note)
    click.echo()
    weights = report.fold_weights_table(result)
    if weights:
        click.echo(weights)
        click.echo()
    click.echo(f"OOF {spec.scorer.label} (the competition's metric; {report.score_legend(spec.scorer)}):")
    click.echo(report.summary_table(result))
    click.echo(EPOCH_PICK_NOTE)
    if result.twins is not None:
        twins = result.twins
        click.echo(f"duplicates ({twins.path}): {twins.groups} test groups averaged ({twins.averaged_rows} rows)"
                   + (f"; labels copied from train twins to {len(twins.copied)} test images" if values["leak"] == "copy" else ""))
    if values["track"] == "mlflow":
        from kit.track.mlflow_store import log_blend, tracking_uri

        run_id = log_blend(result, spec, values, result.files["json"])
        click.echo(f"logged the blend to MLflow ({tracking_uri()}, run {run_id})")
    written = ", ".join(str(path) for kind, path in result.files.items() if kind != "csv")
    click.echo(f"wrote {result.files['csv']} ({len(result.predicted)} rows, validated), {written}")
