"""`kit train`: train backbones on folds (one process, DDP under torchrun, or fanned out over GPUs)."""
from __future__ import annotations

import click

from kit.cli.group import main
from kit.cli.options import config_option, data_option, resolve, table_options
from kit.settings import TRAIN

# One option per train setting (kit/settings/train.py FIELDS) but --model and --fold, which have their own below.
settings_options = table_options(TRAIN, skip=("model", "fold"))


@main.command()
@click.option("--fold", default=None, help="Fold of folds.csv to validate on, or 'all' for each in turn. [default: 0]")
@click.option("--model", "models", multiple=True,
              help="timm model name or smp:<encoder>; repeat for several. [default: the config's, else resnet34]")
@click.option("--resume", is_flag=True, help="Continue each run from its last.pt (start afresh where none exists).")
@click.option("--gpus", default=None,
              help="Fan the runs out over these devices, one process per device at a time, e.g. --fold all "
                   "--gpus 0,1,2,3 (cpu,cpu: CPU processes). Each run logs to its folder's train.log.")
@data_option
@config_option
@settings_options
def train(fold, models, resume, gpus, data_dir, config_path, **options):
    """Train backbones on a fold and write runs/<model>/fold<k>/.

    \b
    history.csv   one row per epoch (lr, losses, val macro F1 at 0.5 and tuned)
    last.pt       everything needed to --resume; best.pt: the best epoch's weights
    oof.csv       TTA probabilities for the fold's validation Ids (Id + one column per class)
    test.csv      the same for every test Id
    config.yaml   the fully resolved settings (reusable with --config)

    Settings: defaults, then the config's train: section (models may be {name: ..., setting: value}
    entries), then these options. Weights never come from the network: --pretrained FILE, or timm's local cache.

    \b
    Within a time limit (a Kaggle session):
      kit train --fold 0 --time-limit 8h30m --checkpoint-every 30m   exits 75 when stopped;
      kit train --fold 0 --time-limit 8h30m --resume                  then continues exactly

    \b
    Several GPUs:
      torchrun --nproc_per_node 4 -m kit train --fold 0 ...   one fold, data-parallel (DDP)
      kit train --fold all --gpus 0,1,2,3                     folds in parallel, one per GPU
    """
    from kit.settings import resolve_settings
    from kit.train.budget import TrainingStopped
    from kit.train.distributed import is_main_process
    from kit.train.loop import train_runs

    context = resolve(config_path, data_dir)
    source = str(context.config.path or "kit.yaml")
    runs = resolve_settings(context.config.section("train"), options, list(models), source)
    if gpus is not None:
        _fan_out(runs, context.data, fold, gpus, resume)
        return
    try:
        results = train_runs(runs, context.data, fold, resume=resume, log=click.echo)
    except TrainingStopped as stopped:  # last.pt is saved; exit 75 says "run again with --resume"
        if is_main_process():
            click.echo(str(stopped))
        raise SystemExit(stopped.exit_code) from None
    if is_main_process():
        for result in results:
            click.echo(f"{result.out_dir}: best epoch {result.best_epoch}, score {result.best_score:.4f}")


def _fan_out(runs, data, fold, gpus, resume) -> None:
    from kit.errors import KitError
    from kit.train.fanout import fan_out, parse_devices
    from kit.train.loop import check_runs, fold_numbers

    if any(settings.time_limit for settings in runs):  # each process would keep its own clock, not the command's
        raise KitError("--time-limit does not apply with --gpus (each fanned-out run keeps its own clock); "
                       "run one fold per command, or one torchrun job")
    devices = parse_devices(gpus)
    check_runs(runs, data)
    folds = sorted({k for settings in runs for k in fold_numbers(settings.fold if fold is None else fold,
                                                                 settings.folds)})
    outcomes = fan_out(runs, data, folds, devices, resume=resume, progress=any(s.progress for s in runs),
                       log=click.echo)
    click.echo(f"{'run':<40} {'device':<8} {'best epoch':>10} {'score':>7} {'minutes':>7}")
    for o in outcomes:
        score = f"{o.best_score:7.4f}" if o.ok else "FAILED"
        click.echo(f"{str(o.out_dir):<40} {o.device:<8} {o.best_epoch:>10} {score:>7} {o.seconds / 60:7.1f}")
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise KitError(f"{len(failed)} of {len(outcomes)} run(s) failed: "
                       + "; ".join(f"{o.out_dir}: {o.error}" for o in failed))
