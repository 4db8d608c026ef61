"""`kit download`: the competition files through the Kaggle API."""
from __future__ import annotations

import click

from kit.cli.group import main
from kit.cli.options import competition_option, config_option, data_option, resolve, warn


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
    from kit.kaggle.download import download as download_files

    context = resolve(config_path, data_dir)
    root = context.data.root
    result = download_files(root, context.config.spec, competition=competition, file_name=file_name, force=force,
                            keep_archive=keep_archive, echo=warn)
    verb = "already present and complete:" if result.skipped else "downloaded"
    click.echo(f"{verb} {len(result.files)} file(s) of {result.competition} in {root}")
    if result.check is not None:
        click.echo(f"data check: {result.check.train} train Ids, {result.check.test} test Ids; channel files of "
                   f"{len(result.check.ids_checked)} Ids present")
    elif result.problem:
        warn(f"data check: {result.problem}")
