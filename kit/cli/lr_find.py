from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main
from kit.cli.options import FiniteFloatRange, config_option, data_option, resolve, table_options
from kit.settings import TRAIN

# `kit train`'s options (kit/settings/train.py) but --model and --fold, which have their own below.
settings_options = table_options(TRAIN, skip=("model", "fold"))


@main.command("lr-find")
@click.option("--model", default=None, help="timm model name or smp:<encoder>. [default: the config's first, else "
                                            "resnet34]")
@click.option("--fold", type=click.IntRange(min=0), default=None, help="Fold of folds.csv whose training images are used. [default: 0]")
@click.option("--start-lr", type=FiniteFloatRange(min=0, min_open=True), default=1e-7, show_default=True, help="Learning rate of the first step.")
@click.option("--end-lr", type=FiniteFloatRange(min=0, min_open=True), default=10.0, show_default=True, help="Learning rate of the last step.")
@click.option("--steps", type=click.IntRange(min=2), default=200, show_default=True,
              help="Batches of the test (fewer if the loss blows up first).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The PNG. [default: lr-find-<model>-fold<k>.png in the working folder]")
@data_option
@config_option
@settings_options
def lr_find(model, fold, start_lr, end_lr, steps, out, data_dir, config_path, **options):
    """Learning-rate range test: plot training loss against an exponentially rising lr, suggest an --lr.

    A throwaway copy of the model trains on the fold's training images with the run's own loader,
    augmentation, mixing, loss and --freeze-epochs setting (the same options as `kit train`), from --init's
    fold best.pt for a second stage; no run folder is touched. The PNG marks the steepest descent and the
    lowest loss / 10 (the suggestion).

    The test sets its own lr and validates nothing, so these `kit train` options are refused here:
    --epochs, --schedule, --warmup, --tta, --patience, --monitor, --ema, --swa (the config's values for
    them are left unused, and named).

    \b
    Example:
      kit lr-find --model resnet34 --size 256 --batch-size 32 --mixup 0.4
      kit train --model resnet34 --size 256 --batch-size 32 --mixup 0.4 --lr <the suggestion>
    """
    from kit.errors import KitError
    from kit.settings import resolve_settings
    from kit.train.loop import check_runs
    from kit.train.lr_find import NOT_USED, find_lr

    given = [name for name in NOT_USED if options.get(name) is not None]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise KitError(f"lr-find: {flag} does not apply (the range test sets its own lr over --steps batches and "
                       "validates nothing); leave it to `kit train`")
    context = resolve(config_path, data_dir)
    source = str(context.config.path or "kit.yaml")
    if fold is not None:
        options["fold"] = fold
    settings = resolve_settings(context.config.section("train"), options, [model] if model else None, source)[0]
    check_runs([settings], context.data)
    unused = [name for name in NOT_USED if settings.values[name] != TRAIN.by_name[name].default_value()]
    if unused:
        click.echo(f"lr-find: not used here (from {source}): {', '.join(unused)}")
    result = find_lr(settings, context.data, start_lr, end_lr, steps, out=out, log=click.echo)
    click.echo(f"wrote {result.plot}")
    click.echo(result.summary())
