"""`kit weights`: timm models' pretrained weights as a folder (and Kaggle dataset) for notebooks without internet."""
from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main


@main.command()
@click.argument("models", nargs=-1, required=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The folder to write: <model>/model.safetensors + pretrained_cfg.json per model.")
@click.option("--upload", "upload_ref", default=None,
              help="Upload the folder as Kaggle dataset owner/slug (created, or a new version).")
@click.option("--public", is_flag=True, help="Create the dataset public (private by default).")
@click.option("--wait", "wait_s", type=click.FloatRange(min=0), default=900, show_default=True,
              help="Seconds to wait for Kaggle to have the uploaded dataset ready.")
def weights(models, out_dir, upload_ref, public, wait_s):
    """Download each timm model's pretrained weights (through timm and huggingface_hub: run it where the hub
    can be reached) into OUT/<model>/model.safetensors with timm's pretrained_cfg beside it, plus
    weights.json and dataset-metadata.json. Attach the dataset to a training kernel (`kit notebook --train
    --weights owner/slug`), or point $KIT_WEIGHTS at OUT: `--pretrained auto` finds them there.

    \b
    kit weights resnet34 efficientnet_b0 --out weights/ --upload me/timm-weights
    """
    from kit.deploy.weights import download_weights, upload_weights

    download_weights(models, out_dir, ref=upload_ref, log=click.echo)
    click.echo(f"wrote {out_dir}: " + ", ".join(models))
    if upload_ref:
        outcome = upload_weights(out_dir, upload_ref, public=public, wait=wait_s, log=click.echo)
        click.echo(f"dataset {upload_ref}: {outcome}, ready: https://www.kaggle.com/datasets/{upload_ref}")
