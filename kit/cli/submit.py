"""`kit submit`: validate a submission file and push it through the Kaggle API (the kaggle package loads lazily)."""
from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main
from kit.cli.options import competition_option, config_option, data_option, resolve, warn
from kit.layout import SUBMISSION_LOG


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
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
def submit(file, message, competition, wait, timeout, dry_run, force, log_path, data_dir, config_path):
    """Submit FILE (Id,Predicted) to the competition through the Kaggle API.

    FILE is validated against sample_submission.csv first; an invalid file never leaves the machine.
    Credentials are the kaggle package's: KAGGLE_API_TOKEN, KAGGLE_USERNAME/KAGGLE_KEY or kaggle.json.
    """
    from kit.kaggle.submit import submit as submit_file

    context = resolve(config_path, data_dir)
    spec = context.config.spec
    sample = context.data.root / spec.sample_submission
    result = submit_file(file, spec, sample, competition=competition, message=message, wait=wait, timeout=timeout,
                         dry_run=dry_run, force=force, log_path=log_path, echo=warn)
    click.echo(result.describe())
    if wait and not dry_run and result.outcome != "scored":
        click.echo(f"not scored within {timeout}s; see `kit submissions`")
