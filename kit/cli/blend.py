from __future__ import annotations

import shlex
from pathlib import Path

import click

from kit.cli.group import main
from kit.cli.options import config_option, data_option, resolve
from kit.layout import FOLDS_FILE, RUNS_ROOT, SUBMISSIONS_DIR


def command_line(ctx: click.Context) -> str:
    """The command as parsed, every option spelled out, so the JSON records how to make the file again."""
    parts = ["kit", "blend"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if isinstance(param, click.Argument):
            parts.extend(str(v) for v in value)
        elif param.name == "help" or value is None:
            continue
        elif param.is_flag and param.secondary_opts:
            parts.append(param.opts[0] if value else param.secondary_opts[0])
        elif param.is_flag:
            if value:
                parts.append(param.opts[0])
        else:
            parts.extend([param.opts[0], str(value)])
    return shlex.join(parts)


@main.command()
@click.argument("run_dirs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--runs", "runs_root", type=click.Path(path_type=Path), default=RUNS_ROOT, show_default=True,
              help="Runs root blended when no RUN_DIR is given (every runs/<model>/).")
@click.option("--folds", "folds_path", type=click.Path(dir_okay=False, path_type=Path),
              default=FOLDS_FILE, show_default=True, help="The Id,fold file the runs were trained on.")
@data_option
@config_option
@click.option("--name", default="blend", show_default=True, help="Output name: <out>/<name>.csv, .json, .png.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=SUBMISSIONS_DIR,
              show_default=True, help="Output folder.")
@click.option("--method", type=click.Choice(["mean", "rank", "weighted", "hill"]), default="mean", show_default=True,
              help="mean; rank (average of per-class ranks); weighted (weights fit on OOF); "
                   "hill (Caruana greedy selection with replacement).")
@click.option("--thresholds", "threshold_mode", type=click.Choice(["per-class", "global", "ratio"]),
              default="per-class", show_default=True,
              help="per-class: best OOF F1 per class; global: one for all; "
                   "ratio: test positive rate matches the train rate.")
@click.option("--min-positives", type=click.IntRange(min=0), default=5, show_default=True,
              help="Classes with fewer OOF positives use the global threshold.")
@click.option("--no-empty/--allow-empty", "no_empty", default=True, show_default=True,
              help="Give a sample with no class above its threshold its highest-scoring class.")
@click.option("--allow-partial", is_flag=True, help="Blend the complete models only; say which were left out.")
@click.option("--dups", "dups_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Pairs of `kit dups` (folds/dups_pairs.csv): duplicate test images get the mean of their "
                   "blended scores.")
@click.option("--leak", type=click.Choice(["none", "copy"]), default="none", show_default=True,
              help="copy: a test image with a train twin in --dups gets that twin's labels (a leak of the "
                   "competition's labels onto its test set; off unless asked).")
@click.pass_context
def blend(ctx, run_dirs, runs_root, folds_path, data_dir, config_path, name, out_dir, method, threshold_mode,
          min_positives, no_empty, allow_partial, dups_path, leak):
    """Blend out-of-fold predictions of RUN_DIR... (runs/<model> folders or a runs root; default --runs),
    tune thresholds and write a validated submission with a JSON report and a PNG beside it.

    Scores are shown at 0.5, at tuned thresholds (in-sample) and cross-validated over the folds (weights
    and thresholds fit on k-1 folds, scored on the held-out one): the last is the honest estimate.

    \b
    Examples:
      kit blend runs/ --method hill
      kit blend runs/ --dups folds/dups_pairs.csv --leak copy
    """
    from kit.blend.blending import blend_runs
    from kit.blend.report import class_table, fallback_note, fold_weights_table, summary_table

    context = resolve(config_path, data_dir)
    spec = context.config.spec
    labels = context.data.train_labels()
    result = blend_runs(
        list(run_dirs) or [runs_root], spec, folds_path, context.data.root / spec.sample_submission, labels,
        out_dir, name, method=method, thresholds=threshold_mode, min_positives=min_positives, no_empty=no_empty,
        allow_partial=allow_partial, command=command_line(ctx), dups=dups_path, leak=leak,
    )
    for member, reason in result.left_out:
        click.echo(f"warning: left out {member}: {reason}", err=True)
    click.echo(class_table(result))
    note = fallback_note(result)
    if note:
        click.echo(note)
    click.echo()
    weights = fold_weights_table(result)
    if weights:
        click.echo(weights)
        click.echo()
    click.echo(summary_table(result))
    if result.twins is not None:
        twins = result.twins
        click.echo(f"duplicates ({twins.path}): {twins.groups} test groups averaged ({twins.averaged_rows} rows)"
                   + (f"; labels copied from train twins to {len(twins.copied)} test images" if leak == "copy" else ""))
    written = ", ".join(str(path) for kind, path in result.files.items() if kind != "csv")
    click.echo(f"wrote {result.files['csv']} ({len(result.predicted)} rows, validated), {written}")
