"""`kit submit`: validate a submission file and push it through the Kaggle API (the kaggle package loads lazily)."""
from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main
from kit.cli.options import config_option, data_option, resolve, table_options, warn
from kit.settings import BLEND, SUBMIT


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@table_options(SUBMIT)
@data_option
@config_option
def submit(file, data_dir, config_path, **options):
    """Submit FILE (the competition's columns, e.g. Id,Predicted) through the Kaggle API, or, for a code competition, the
    notebook --kernel owner/slug (pushed with `kit notebook --push`).

    FILE is validated against sample_submission.csv first; an invalid file never leaves the machine.
    Every attempt is a row of submissions/log.csv. Credentials are the kaggle package's: KAGGLE_API_TOKEN,
    KAGGLE_USERNAME/KAGGLE_KEY or kaggle.json. Settings: defaults, then the config's submit: section, then
    these options.

    \b
    Examples:
      kit submit submissions/blend.csv --dry-run      check it and say what would be sent
      kit submit submissions/blend.csv --wait         submit, then print the public score
      kit submit --kernel me/hpa-blend-inference --version 3 --wait
    """
    from kit.errors import KitError
    from kit.kaggle.submit import submit as submit_file
    from kit.kaggle.submit import submit_kernel
    from kit.layout import submission_log

    context = resolve(config_path, data_dir)
    values = context.section(SUBMIT, options)
    log_path = values["log"] or submission_log(context.section(BLEND)["out"])
    kernel, wait, timeout = values["kernel"], values["wait"], values["timeout"]
    if (file is None) == (kernel is None):
        raise KitError("give a submission FILE, or --kernel owner/slug for a code competition (not both)")
    if kernel is None and values["version"] is not None:
        raise KitError("--version goes with --kernel")
    if kernel is None and options.get("file_name") is not None:
        raise KitError("--file-name goes with --kernel (the notebook's output file that Kaggle scores); a FILE is "
                       "uploaded as it is")
    if kernel is not None:
        if values["dry_run"] or values["force"]:
            raise KitError("--dry-run and --force are for FILE submissions")
        result = submit_kernel(kernel, values["competition"] or context.config.spec.slug, version=values["version"],
                               message=values["message"], file_name=values["file_name"], wait=wait,
                               timeout=timeout, log_path=log_path, echo=warn)
        click.echo(result.describe())
        if wait and result.outcome != "scored":
            click.echo(f"not scored within {timeout}s; see `kit submissions`")
        return
    context.data.check_root()  # reads classes kept in the data folder
    spec = context.data.spec
    sample = context.data.root / spec.sample_submission
    result = submit_file(file, spec, sample, competition=values["competition"], message=values["message"],
                         wait=values["wait"], timeout=values["timeout"], dry_run=values["dry_run"],
                         force=values["force"], log_path=log_path, echo=warn)
    click.echo(result.describe())
    if values["wait"] and not values["dry_run"] and result.outcome != "scored":
        click.echo(f"not scored within {values['timeout']}s; see `kit submissions`")
