"""`kit submit`: validate a submission file and push it through the Kaggle API (the kaggle package loads lazily)."""
from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main
from kit.cli.options import config_option, data_option, resolve, table_options, warn
from kit.settings import BLEND, SUBMIT


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@table_options(SUBMIT)
@data_option
@config_option
def submit(file, data_dir, config_path, **options):
    """Submit FILE (Id,Predicted) to the competition through the Kaggle API.

    FILE is validated against sample_submission.csv first; an invalid file never leaves the machine.
    Credentials are the kaggle package's: KAGGLE_API_TOKEN, KAGGLE_USERNAME/KAGGLE_KEY or kaggle.json.
    Settings: defaults, then the config's submit: section, then these options.

    \b
    Example:
      kit submit submissions/blend.csv --dry-run      check it and say what would be sent
      kit submit submissions/blend.csv --wait         submit, then print the public score
    """
    from kit.kaggle.submit import submit as submit_file
    from kit.layout import submission_log

    context = resolve(config_path, data_dir)
    values = context.section(SUBMIT, options)
    log_path = values["log"] or submission_log(context.section(BLEND)["out"])
    spec = context.config.spec
    sample = context.data.root / spec.sample_submission
    result = submit_file(file, spec, sample, competition=values["competition"], message=values["message"],
                         wait=values["wait"], timeout=values["timeout"], dry_run=values["dry_run"],
                         force=values["force"], log_path=log_path, echo=warn)
    click.echo(result.describe())
    if values["wait"] and not values["dry_run"] and result.outcome != "scored":
        click.echo(f"not scored within {values['timeout']}s; see `kit submissions`")
