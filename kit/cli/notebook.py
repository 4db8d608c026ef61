"""`kit notebook`: the offline inference kernel for a bundle, or with --train a training kernel per fold;
optionally pushed and run on Kaggle."""
from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from kit.cli.group import main
from kit.cli.options import config_option, resolve


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--bundle", "bundle_ref", required=True,
              help="The bundle dataset (owner/slug) the kernel attaches: `kit bundle` (inference) or "
                   "`kit bundle --train` (training).")
@click.option("--id", "kernel_ref", default=None,
              help="The kernel's owner/slug. [default: <owner>/<bundle>-inference; with --train "
                   "<owner>/<bundle>-<model>, each fold's kernel <id>-fold<k>]")
@click.option("--blend", "blend_name", default="blend.json", show_default=True,
              help="The blend JSON's name inside the bundle (inference).")
@click.option("--gpu", is_flag=True, help="Run the inference kernel on a GPU (a training kernel always does).")
@click.option("--train", "for_training", is_flag=True,
              help="A training kernel: install kit from the bundle, run `kit train` on the bundle's folds within "
                   "the session limit, keep runs/ as the kernel's output (bring it home with `kit pull`). Other "
                   "`kit train` options (--epochs, --size, ...) are passed on to it.")
@click.option("--fold", default=None, help="With --train: the fold to train, or 'all' for one kernel per fold "
                                           "(Kaggle runs them at once). [default: 0]")
@click.option("--model", "models", multiple=True, help="With --train: the model(s) to train (as kit train).")
@click.option("--weights", "weights_ref", default=None,
              help="With --train: a `kit weights` dataset (owner/slug) to attach; --pretrained auto finds it.")
@click.option("--resume-from", "resume_ref", default=None,
              help="With --train: the kernel (owner/slug) whose output this one continues (--resume); with "
                   "--fold all, each fold's <owner/slug>-fold<k>.")
@click.option("--session-limit", default="9h", show_default=True,
              help="With --train: Kaggle's session limit; kit train gets --time-limit this less --margin.")
@click.option("--margin", default="20m", show_default=True,
              help="With --train: time kept for installing kit and Kaggle saving the output.")
@click.option("--gpus", default=None,
              help="With --train: fan the folds out over these GPUs in one kernel (e.g. --fold all --gpus 0,1); "
                   "without it a kernel with several GPUs trains its fold under torchrun (DDP).")
@click.option("--cache", "build_cache", is_flag=True,
              help="With --train: build the pre-resized image cache in /kaggle/working/cache first (kept as output).")
@click.option("--push", is_flag=True, help="Push it, wait for the run, fetch its output and log into OUT/output.")
@click.option("--wait", "wait_s", type=click.FloatRange(min=0), default=None,
              help="Seconds --push waits for the run to end. [default: 3 hours; with --train the session limit]")
@config_option
@click.pass_context
def notebook(ctx, out, bundle_ref, kernel_ref, blend_name, gpu, for_training, fold, models, weights_ref, resume_ref,
             session_limit, margin, gpus, build_cache, push, wait_s, config_path):
    """Write OUT/kernel-metadata.json and OUT/inference.py: install kit offline from the attached bundle, run
    `kit infer` on /kaggle/input/<competition>, write /kaggle/working/submission.csv. The competition is the
    spec's (kit.yaml). Set $KIT_KAGGLE_ROOT to run the script elsewhere than under /kaggle.

    With --train, OUT/train.py (OUT/fold<k>/ for --fold all) trains a fold on a Kaggle GPU instead.

    \b
    kit notebook kernel/ --bundle me/hpa-blend --gpu --push
    kit submit --kernel me/hpa-blend-inference --wait
    kit notebook train/ --train --bundle me/hpa-train --weights me/timm-weights --fold all --model resnet34 \\
        --epochs 20 --size 512 --push
    kit pull me/hpa-train-resnet34-fold0 me/hpa-train-resnet34-fold1
    """
    from kit.errors import KitError

    spec = resolve(config_path).config.spec
    train_only = {"--fold": fold is not None, "--model": bool(models), "--weights": weights_ref is not None,
                  "--resume-from": resume_ref is not None, "--gpus": gpus is not None, "--cache": build_cache,
                  **{f"--{name.replace('_', '-')}": ctx.get_parameter_source(name) != ParameterSource.DEFAULT
                     for name in ("session_limit", "margin")}}
    if not for_training:
        given = [name for name, on in train_only.items() if on] + ctx.args[:1]
        if given:
            raise KitError(f"{given[0]}: only for training kernels (add --train)")
        from kit.deploy.notebook import push_notebook, write_notebook

        made = write_notebook(out, bundle_ref, spec, ref=kernel_ref, gpu=gpu, blend=blend_name)
        click.echo(f"wrote {', '.join(str(p) for p in made.files)} (kernel {made.ref})")
        if push:
            run = push_notebook(made, spec.slug, timeout=3 * 3600 if wait_s is None else wait_s, log=click.echo)
            click.echo(f"kernel {run.ref} version {run.version} complete; output in {out / 'output'}: "
                       + ", ".join(p.name for p in run.files))
        return
    if ctx.get_parameter_source("blend_name") != ParameterSource.DEFAULT:
        raise KitError("--blend: only for inference kernels (a training kernel trains; it has no blend)")
    from kit.deploy.train_kernel import parse_duration, push_training, write_training_notebooks

    limit, kept = parse_duration(session_limit, "--session-limit"), parse_duration(margin, "--margin")
    train_args = check_train_args(ctx.args)
    folds = kernel_folds(fold or "0", gpus, config_path)
    kernels = write_training_notebooks(out, bundle_ref, spec, folds, models=models, train_args=train_args,
                                       ref=kernel_ref, weights=weights_ref, resume_from=resume_ref,
                                       session_limit=limit, margin=kept, gpus=gpus, cache=build_cache)
    for kernel in kernels:
        click.echo(f"wrote {', '.join(str(p) for p in kernel.notebook.files)} (kernel {kernel.notebook.ref}, "
                   f"fold {kernel.fold})")
    if push:
        push_training(kernels, spec.slug, timeout=limit if wait_s is None else wait_s, log=click.echo)


def check_train_args(args: list[str]) -> list[str]:
    """The `kit train` options passed on to the kernel, checked by kit train's own parser now (a typo is one line
    here, not a failed Kaggle session); those the kernel sets itself are refused."""
    from kit.cli.train import train
    from kit.deploy.train_kernel import RESERVED
    from kit.errors import KitError

    try:
        parsed = train.make_context("kit train", list(args), resilient_parsing=False)
    except click.exceptions.Exit:
        raise KitError("--help of kit train: run `kit train --help`") from None
    except click.UsageError as err:
        raise KitError(f"kit train option: {err.format_message()}") from None
    for name, flag in RESERVED.items():
        if parsed.params.get(name) not in (None, False, ()):
            raise KitError(f"{flag.split(' ')[0]}: set by the training kernel itself"
                           + (f" ({flag.split(' ', 1)[1].strip('()')})" if " " in flag else ""))
    if parsed.args:
        raise KitError(f"{parsed.args[0]}: not an option of kit train")
    return list(args)


def kernel_folds(fold: str, gpus: str | None, config_path) -> list:
    """The folds that get a kernel each: one, every fold of the folds file (--fold all), or with --gpus one
    kernel for them all ('all')."""
    from kit.config import load_config
    from kit.errors import KitError
    from kit.settings.train import train_value
    from kit.train.loop import fold_numbers

    config = load_config(config_path)
    folds_file = train_value(config.section("train"), "folds", str(config.path or "kit.yaml"))
    if fold == "all" and gpus:
        count = len(fold_numbers("all", folds_file))
        devices = [part for part in gpus.split(",") if part.strip()]  # the kernel's GPUs, not this machine's
        if count > len(devices):
            raise KitError(f"--fold all --gpus {gpus}: {count} folds on {len(devices)} GPUs would run in waves, each "
                           "with the whole --time-limit; give one kernel per fold (no --gpus) or as many GPUs as folds")
        return ["all"]
    if gpus:
        raise KitError(f"--gpus {gpus}: fans several folds out in one kernel; give --fold all (one fold on several "
                       "GPUs runs under torchrun by itself)")
    return fold_numbers(fold, folds_file) if fold == "all" else [int(_fold_number(fold))]


def _fold_number(fold: str) -> int:
    from kit.errors import KitError

    try:
        return int(fold)
    except ValueError:
        raise KitError(f"--fold {fold!r}: expected a fold number or 'all'") from None
