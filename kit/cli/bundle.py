"""`kit bundle`: a blend, its models and kit's offline install as one folder, optionally uploaded as a dataset."""
from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main
from kit.cli.options import config_option


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--blend", "blend_json", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The blend JSON written by `kit blend` (submissions/<name>.json). Without it, OUT is an existing "
                   "bundle to --upload as it is (after a failed upload, say).")
@click.option("--train", "for_training", is_flag=True,
              help="A bundle for training kernels (`kit notebook --train`): kit's wheels, the spec and train: "
                   "section of kit.yaml, and the folds file; no members.")
@click.option("--folds", "folds_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --train: the folds file the kernels train on. [default: train.folds of kit.yaml, "
                   "else folds/folds.csv]")
@click.option("--upload", "upload_ref", default=None,
              help="Upload the folder as Kaggle dataset owner/slug: created, or a new version if it exists.")
@click.option("--title", default=None, help="Dataset title (6-50 characters). [default: kit bundle <slug>]")
@click.option("--dep", "deps", multiple=True,
              help="A dependency wheel to ship (a PyPI name or a .whl path), repeated; replaces the default list "
                   "of what a Kaggle image may lack (kit.deploy.wheels.KAGGLE_MAY_LACK); 'none' ships kit alone.")
@click.option("--notes", default="kit bundle", show_default=True, help="Version notes of an uploaded new version.")
@click.option("--public", is_flag=True, help="Create the dataset public (private by default).")
@click.option("--wait", "wait_s", type=click.FloatRange(min=0), default=900, show_default=True,
              help="Seconds to wait for Kaggle to have the uploaded dataset ready.")
@config_option
def bundle(out, blend_json, for_training, folds_file, upload_ref, title, deps, notes, public, wait_s, config_path):
    """Write OUT: the wheels (kit and the dependencies a Kaggle image may lack), the blend's members' best.pt and
    config.yaml per fold, the blend JSON and the competition spec, and dataset-metadata.json; with --upload,
    send it to Kaggle as a dataset and wait until it is ready.

    \b
    kit bundle bundle/ --blend submissions/blend.json --upload me/hpa-blend
    kit bundle bundle/ --upload me/hpa-blend        # upload the bundle already there
    kit bundle train-bundle/ --train --upload me/hpa-train   # for `kit notebook --train`
    """
    from kit.deploy.bundle import make_bundle, read_bundle, upload_bundle
    from kit.errors import KitError

    if for_training:
        if blend_json is not None:
            raise KitError("--train makes a bundle for training kernels, without members: give --train or --blend")
        from kit.config import load_config
        from kit.deploy.train_bundle import make_training_bundle
        from kit.settings.train import train_value

        config = load_config(config_path)
        folds_file = folds_file or Path(str(train_value(config.section("train"), "folds", str(config.path or
                                                                                              "kit.yaml"))))
        made = make_training_bundle(out, config, folds_file, ref=upload_ref, title=title, deps=deps, log=click.echo)
        click.echo(made.describe())
    elif folds_file is not None:
        raise KitError("--folds is for --train bundles (an inference bundle holds the blend's members)")
    elif blend_json is None:
        if not upload_ref:
            raise KitError("give --blend BLEND.json to make a bundle, or --upload owner/slug to upload OUT as it is")
        read_bundle(out)
    else:
        made = make_bundle(out, blend_json, ref=upload_ref, title=title, deps=deps, log=click.echo)
        click.echo(made.describe())
    if upload_ref:
        outcome = upload_bundle(out, upload_ref, notes=notes, public=public, wait=wait_s, log=click.echo)
        click.echo(f"dataset {upload_ref}: {outcome}, ready: https://www.kaggle.com/datasets/{upload_ref}")
