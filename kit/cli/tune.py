"""`kit tune`: search `kit train`'s settings with Optuna (the `tune:` section; the base is the `train:` section)."""
from __future__ import annotations

import click

from kit.cli.group import main
from kit.cli.options import config_option, data_option, resolve, table_options
from kit.settings import TUNE


@main.command()
@click.option("--model", default=None, help="The model to tune. [default: the config's train: model, else resnet34]")
@click.option("--gpus", default=None,
              help="One tuning process per device on the same study, e.g. --gpus 0,1 (cpu,cpu: CPU processes).")
@click.option("--device", default=None, help="Device of this process's trials (default: train.device).")
@data_option
@config_option
@table_options(TUNE)
def tune(model, gpus, device, data_dir, config_path, **options):
    """Search train: settings with Optuna: each trial is `kit train` with the base settings (the config's train:
    section) and sampled values of tune.space, on each of tune.folds; the objective is the mean of the folds'
    best monitored value. Trials go to runs/tune/<study>/trial<N>/fold<k>/.

    \b
    kit.yaml:
      tune:
        space:
          lr: {low: 1.0e-4, high: 3.0e-3, log: true}
          loss: [bce, focal]
          mixup: {low: 0, high: 0.4}
          size: [256, 384]
        trials: 20
        folds: [0, 1, 2]        # a cross-validated objective; [0] (the default) tunes on one split

    \b
    Examples:
      kit tune                                   20 trials, resumed if tune.db already holds some
      kit tune --trials 40 --gpus 0,1            two processes, one per GPU, on one study
      kit tune --storage postgresql://u@host/db  the same study from several machines

    At the end: the best trial as a train: section ready to paste, and runs/tune/<study>/history.png and
    importance.png (Optuna's plots).
    """
    from kit.errors import KitError
    from kit.settings import resolve_settings
    from kit.tune.study import tune as run_tune

    context = resolve(config_path, data_dir)
    values = context.section(TUNE, options)
    section = context.config.section("train")
    runs = resolve_settings(section, {}, [model] if model else None, context.source)
    if len(runs) > 1:
        raise KitError(f"{context.source}: train.models lists {len(runs)} models; kit tune tunes one: pick it with "
                       "--model")
    base = runs[0]
    if gpus is None:
        outcome = run_tune(base, context.data, values, section, device, say=click.echo)
    else:
        from kit.train.fanout import parse_devices
        from kit.tune.parallel import tune_on_devices

        outcome = tune_on_devices(base, context.data, values, parse_devices(gpus), section, say=click.echo)
    click.echo(f"study {outcome.study!r}: {outcome.trials} finished trial(s), {outcome.pruned} pruned")
    if outcome.best_number is None:
        click.echo("no trial completed yet")
        return
    click.echo(f"best trial {outcome.best_number}: {base.monitor} {outcome.best_value:.4f} ({outcome.direction}); "
               "as a train: section:\n")
    click.echo(outcome.train_section)
    for path in outcome.plots.values():
        click.echo(f"wrote {path}")
