"""`kit infer`: apply a saved blend to a new test set."""
from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main


@main.command()
@click.argument("blend_json", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Competition files folder: the test Ids come from its sample submission, the images from its "
                   "test folder (only read).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("submission.csv"),
              show_default=True, help="The submission to write.")
@click.option("--device", default="auto", show_default=True, help="auto (cuda, mps, cpu) or a torch device.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Image decoding worker processes. [default: the cores available]")
def infer(blend_json, data_dir, out, device, workers):
    """Apply the ensemble of BLEND_JSON (written by `kit blend`) to the test set of --data.

    Every member's fold checkpoints (best.pt) predict with the member's TTA; the blend's saved method,
    weights, calibration, thresholds, duplicates and no-empty rule turn them into a validated submission, byte
    for byte the one `kit blend` wrote for the same test set. No OOF files,
    labels or cache are needed, so it runs inside a Kaggle notebook on a hidden test set.

    \b
    kit infer submissions/blend.json --data /kaggle/input/human-protein-atlas-image-classification \\
        --out /kaggle/working/submission.csv
    """
    from kit.infer.apply import infer as run_infer

    result = run_infer(blend_json, data_dir, out, device=device, workers=workers, log=click.echo)
    click.echo(result.describe())
