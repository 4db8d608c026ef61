from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main
from kit.cli.options import config_option


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--n-train", default=1000, show_default=True, help="Number of training samples.")
@click.option("--n-test", default=200, show_default=True, help="Number of test samples.")
@click.option("--size", default=128, show_default=True, help="Image side in pixels (HPA's is 512).")
@click.option("--seed", default=0, show_default=True, help="Random seed; the same seed writes the same files.")
@click.option("--classes", type=click.IntRange(1, 28), default=None,
              help="Number of classes (the first N HPA classes). Default: the spec's classes (28 for HPA).")
@click.option("--duplicates", type=click.IntRange(min=0), default=0, show_default=True,
              help="Add N near copies of train images (shifted, rescaled, brighter or darker, JPEG re-encoded), "
                   "alternately to train and test; their twins go to OUT_DIR/duplicates.csv.")
@config_option
def synth(out_dir, n_train, n_test, size, seed, classes, duplicates, config_path):
    """Write a synthetic HPA-like data set into OUT_DIR, in the competition layout.

    \b
    OUT_DIR/train.csv               Id,Target (space-separated class indices)
    OUT_DIR/train/<Id>_<ch>.png     one uint8 image per channel (red green blue yellow)
    OUT_DIR/test/<Id>_<ch>.png      the test images
    OUT_DIR/sample_submission.csv   Id,Predicted
    OUT_DIR/test_labels.csv         the hidden test labels (for scoring a submission locally)
    OUT_DIR/duplicates.csv          with --duplicates: Id,twin,split of each near copy

    Blue shows nuclei, red microtubules, yellow the ER and green the protein, whose pattern depends on the
    labels; label frequencies follow HPA's long tail.
    """
    import dataclasses

    from kit.config import load_config
    from kit.data.synth import write_dataset

    spec = load_config(config_path).spec
    if classes is not None and classes != spec.num_classes:
        spec = dataclasses.replace(spec, classes=spec.classes[:classes] if classes <= spec.num_classes
                                   else tuple(f"class{i}" for i in range(classes)), class_frequencies=None)
    result = write_dataset(out_dir, spec, n_train=n_train, n_test=n_test, size=size, seed=seed, progress=True)
    click.echo(f"wrote {result['train']} train and {result['test']} test samples ({size}px, "
               f"{spec.num_classes} classes, {spec.num_channels} channels) to {out_dir}")
    if duplicates:
        from kit.data.synth_dups import add_near_copies

        twins = add_near_copies(out_dir, spec, duplicates, seed=seed)
        click.echo(f"added {duplicates} near copies of train images ({(twins['split'] == 'train').sum()} to train, "
                   f"{(twins['split'] == 'test').sum()} to test); twins in {out_dir / 'duplicates.csv'}")
