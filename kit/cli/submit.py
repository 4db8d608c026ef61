"""`kit submit`, `kit submissions` and `kit download`: the Kaggle API commands (the kaggle package loads lazily)."""
from __future__ import annotations

from pathlib import Path

import click

from kit.cli import main
from kit.cli.options import config_option, data_option, resolve


def competition_option(func):
    return click.option("--competition", default=None,
                        help="Competition slug. Default: competition.slug of the spec (HPA's by default).")(func)


def _warn(line: str) -> None:
    click.echo(f"warning: {line}", err=True)


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
              default=Path("submissions/log.csv"), show_default=True, help="Append-only log of every attempt.")
@data_option
@config_option
def submit(file, message, competition, wait, timeout, dry_run, force, log_path, data_dir, config_path):
    """Submit FILE (Id,Predicted) to the competition through the Kaggle API.

    FILE is validated against sample_submission.csv first; an invalid file never leaves the machine.
    Credentials are the kaggle package's: KAGGLE_API_TOKEN, KAGGLE_USERNAME/KAGGLE_KEY or kaggle.json.
    """
    from kit.kaggle_submit import submit as submit_file

    context = resolve(config_path, data_dir)
    spec = context.config.spec
    sample = context.data.root / spec.sample_submission
    result = submit_file(file, spec, sample, competition=competition, message=message, wait=wait, timeout=timeout,
                         dry_run=dry_run, force=force, log_path=log_path, echo=_warn)
    click.echo(result.describe())
    if wait and not dry_run and result.outcome != "scored":
        click.echo(f"not scored within {timeout}s; see `kit submissions`")


@main.command()
@competition_option
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100),
              help="How many recent submissions to list.")
@config_option
def submissions(competition, limit, config_path):
    """List the competition's recent submissions with their scores (newest first)."""
    from kit.config import load_config
    from kit.kaggle_submit import list_submissions

    competition = competition or load_config(config_path).spec.slug
    items = list_submissions(competition, limit)
    if not items:
        click.echo(f"no submissions to {competition} yet")
        return
    rows = [("ref", "date", "file", "status", "public", "private", "description")]
    rows += [(str(s.ref), s.date, s.file_name, s.status if not s.error else f"{s.status}: {s.error}",
              s.public_score, s.private_score, s.description) for s in items]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])


@main.command()
@data_option
@config_option
@competition_option
@click.option("--file", "file_name", default=None, help="Download only this competition file (e.g. train.csv).")
@click.option("--force", is_flag=True, help="Download again even if the files are present and complete.")
@click.option("--keep-archive", is_flag=True, help="Keep the downloaded zip in <data>/.kit-download/.")
def download(data_dir, config_path, competition, file_name, force, keep_archive):
    """Download the competition's files into the data folder (--data) through the Kaggle API.

    Unzips safely, skips files already present and complete, and checks the result with the data reader.
    """
    from kit.kaggle_download import download as download_files

    context = resolve(config_path, data_dir)
    root = context.data.root
    result = download_files(root, context.config.spec, competition=competition, file_name=file_name, force=force,
                            keep_archive=keep_archive, echo=_warn)
    verb = "already present and complete:" if result.skipped else "downloaded"
    click.echo(f"{verb} {len(result.files)} file(s) of {result.competition} in {root}")
    if result.check is not None:
        click.echo(f"data check: {result.check.train} train Ids, {result.check.test} test Ids; channel files of "
                   f"{len(result.check.ids_checked)} Ids present")
    elif result.problem:
        _warn(f"data check: {result.problem}")
