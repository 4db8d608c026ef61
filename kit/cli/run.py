from __future__ import annotations

import click

from kit.cli.group import main
from kit.cli.options import data_option


@main.command()
@click.argument("experiment")
@data_option
@click.option("--submit/--no-submit", default=None,
              help="Submit the blend at the end (or not). [default: the file's submit.enabled, else no]")
@click.option("--dry-run/--no-dry-run", default=None,
              help="Submit as a dry run: check everything and say what would be sent, upload nothing "
                   "(--dry-run alone implies --submit). [default: the file's submit.dry_run, else yes]")
def run(experiment, data_dir, submit, dry_run):
    """Run a whole experiment: folds, every model on every fold, blend, submission file, submit.

    EXPERIMENT is a YAML file, or the name of an experiment shipped with the kit (`kit run demo` runs
    kit/experiments/demo.yaml on ./data). The file is a kit.yaml with more sections, all optional but train.models:

    \b
    competition: {...}        the competition spec (HPA by default)
    data: data/               relative to the file (or --data, $KIT_DATA; default ./data)
    folds:  {k: 5, seed: 42, groups: null}
    train:  {size: 512, epochs: 20, ..., models: [resnet34, {name: densenet121, lr: 3.0e-4}]}
    blend:  {name: blend, method: mean, thresholds: per-class, min_positives: 5, no_empty: true}
    submit: {enabled: false, dry_run: true, message: null, competition: null, wait: false}

    \b
    Each step is the library call of the single command (`kit folds`, `kit train`, `kit blend`,
    `kit submit`), and writes the same files in the working folder: folds/folds.csv (only if missing),
    runs/<model>/fold<k>/, submissions/<name>.csv, .json and .png. Run it again at any time: finished
    runs (oof.csv and test.csv present) are skipped, interrupted ones resume from their last.pt. Ends
    with each model's and the blend's OOF score (the competition's metric) at 0.5, at tuned thresholds and cross-validated.
    """
    from kit.experiment import run_experiment

    if dry_run and submit is None:
        submit = True
    run_experiment(experiment, data_dir, submit=submit, dry_run=dry_run, log=click.echo)
