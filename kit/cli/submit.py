"""`kit submit`: validate a submission file and push it through the Kaggle API (the kaggle package loads lazily)."""
from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main
from kit.cli.options import competition_option, config_option, data_option, resolve, warn
from kit.layout import SUBMISSION_LOG


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--kernel", default=None,
              help="Code competition: submit this notebook (owner/slug) instead of a FILE; Kaggle reruns it.")
@click.option("--version", "kernel_version", type=click.IntRange(1), default=None,
              help="With --kernel: the notebook version to submit. [default: its latest]")
@click.option("--file-name", default="submission.csv", show_default=True,
              help="With --kernel: the output file of the notebook that Kaggle scores.")
@click.option("-m", "--message", default=None,
              help="Submission description. Default: from <name>.json beside FILE (members, method, OOF F1).")
@competition_option
@click.option("--wait", is_flag=True, help="Poll until Kaggle scores the submission and print the public score.")
@click.option("--timeout", default=900, show_default=True, type=click.IntRange(1),
              help="Seconds --wait polls before giving up.")
@click.option("--dry-run", is_flag=True, help="Check everything and say what would be sent; upload nothing.")
@click.option("--force", is_flag=True, help="Submit even if these exact bytes were already submitted.")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path),
              default=SUBMISSION_LOG, show_default=True, help="Append-only log of every attempt.")
@data_option
@config_option
def submit(file, kernel, kernel_version, file_name, message, competition, wait, timeout, dry_run, force, log_path,
           data_dir, config_path):
    """Submit FILE (Id,Predicted) to the competition through the Kaggle API, or, for a code competition, the
    notebook --kernel owner/slug (pushed with `kit notebook --push`).

    FILE is validated against sample_submission.csv first; an invalid file never leaves the machine.
    Every attempt is a row of submissions/log.csv. Credentials are the kaggle package's: KAGGLE_API_TOKEN,
    KAGGLE_USERNAME/KAGGLE_KEY or kaggle.json.

    \b
    kit submit submissions/blend.csv --wait
    kit submit --kernel me/hpa-blend-inference --version 3 --wait
    """
    from kit.errors import KitError
    from kit.kaggle.submit import submit as submit_file
    from kit.kaggle.submit import submit_kernel

    if (file is None) == (kernel is None):
        raise KitError("give a submission FILE, or --kernel owner/slug for a code competition (not both)")
    if kernel is None and (kernel_version is not None):
        raise KitError("--version goes with --kernel")
    if kernel is not None:
        if dry_run or force:
            raise KitError("--dry-run and --force are for FILE submissions")
        result = submit_kernel(kernel, competition or resolve(config_path, data_dir).config.spec.slug,
                               version=kernel_version, message=message, file_name=file_name, wait=wait,
                               timeout=timeout, log_path=log_path, echo=warn)
        click.echo(result.describe())
        if wait and result.outcome != "scored":
            click.echo(f"not scored within {timeout}s; see `kit submissions`")
        return
    context = resolve(config_path, data_dir)
    spec = context.config.spec
    sample = context.data.root / spec.sample_submission
    result = submit_file(file, spec, sample, competition=competition, message=message, wait=wait, timeout=timeout,
                         dry_run=dry_run, force=force, log_path=log_path, echo=warn)
    click.echo(result.describe())
    if wait and not dry_run and result.outcome != "scored":
        click.echo(f"not scored within {timeout}s; see `kit submissions`")
