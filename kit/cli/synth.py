from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main
from kit.cli.options import config_option
from kit.data.presets import PRESETS


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--preset", type=click.Choice(list(PRESETS)), default=None,
              help="Write that competition's exact layout (files, columns, label encoding). "
                   "Default: the spec of kit.yaml (HPA's without one).")
@click.option("--n-train", type=click.IntRange(min=1), default=1000, show_default=True, help="Number of training samples.")
@click.option("--n-test", type=click.IntRange(min=1), default=200, show_default=True, help="Number of test samples.")
@click.option("--size", type=click.IntRange(min=8), default=128, show_default=True,
              help="Image side in pixels (HPA's is 512, Planet's 256; iMet's shorter side, the longer one varies).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True, help="Random seed; the same seed writes the same files.")
@click.option("--classes", type=click.IntRange(1), default=None,
              help="Number of classes: the first N HPA classes, or N iMet attributes in labels.csv "
                   "(default 1,103). Planet always has its 17 tags.")
@click.option("--duplicates", type=click.IntRange(min=0), default=0, show_default=True,
              help="Add N near copies of train images (shifted, rescaled, brighter or darker, JPEG re-encoded), "
                   "alternately to train and test; their twins go to OUT_DIR/duplicates.csv.")
@config_option
def synth(out_dir, preset, n_train, n_test, size, seed, classes, duplicates, config_path):
    """Write a learnable synthetic data set into OUT_DIR, in a competition's layout.

    \b
    kit synth data                        HPA (or kit.yaml's spec): train.csv, train/<Id>_<channel>.png, ...
    kit synth data --preset planet        train_v2.csv (image_name,tags with tag names), train-jpg/*.jpg,
                                          test Ids over test-jpg/ and test-jpg-additional/, sample_submission_v2.csv
    kit synth data --preset imet-2019 --classes 300
                                          train.csv (id,attribute_ids), labels.csv, train/<id>.png of varying sizes
    kit synth data --preset ranzcr-clip   train.csv (StudyInstanceUID, 11 0/1 columns, PatientID), gray JPEGs
    kit synth data --preset rsna-ich-2019 stage_2_train.csv (ID_<image>_<subtype>,Label), DICOM CT slices
    kit synth data --preset plant-pathology-2020
                                          train.csv one-hot wide, images/Train_<i>.jpg and Test_<i>.jpg
    kit synth data --preset cassava-2020  train.csv (image_id,label), train_images/<digits>.jpg

    OUT_DIR/test_labels.csv holds the hidden test labels (for scoring a submission locally); with --duplicates,
    OUT_DIR/duplicates.csv the Id,twin,split of each near copy. In HPA's layout,
    blue shows nuclei, red microtubules, yellow the ER and green the protein, whose pattern depends on the
    labels; in the one-file layouts each class is a glyph of its own shape, colour and size (Planet's weather
    tags are cloud cover and haze over the whole image).
    """
    import dataclasses

    from kit.config import load_config
    from kit.data.synth import write_dataset
    from kit.data.synth_formats import write_formatted, write_preset_dataset
    from kit.data.synth_probability import PROBABILITY_PRESETS, write_probability_preset

    if preset in PROBABILITY_PRESETS:
        for given, option in ((classes is not None, "--classes"), (duplicates, "--duplicates")):
            if given:
                raise click.ClickException(f"{option} does not apply to --preset {preset} (its classes are the "
                                           "competition's; near copies are written for hpa, planet and imet-2019)")
        result = write_probability_preset(out_dir, preset, n_train=n_train, n_test=n_test, size=size, seed=seed,
                                          progress=True)
        click.echo(f"wrote {result['train']} train and {result['test']} test samples ({size}px) in the {preset} "
                   f"layout to {out_dir}")
        return
    if preset is not None:
        from kit.data.presets import get_preset
        from kit.data.reading import resolve_classes

        result = write_preset_dataset(out_dir, preset, n_train=n_train, n_test=n_test, size=size, seed=seed,
                                      classes=classes, progress=True)
        click.echo(f"wrote {result['train']} train and {result['test']} test samples ({size}px) in the {preset} "
                   f"layout to {out_dir}")
        spec = resolve_classes(get_preset(preset).spec(), out_dir)
        if preset == "hpa" and classes is not None:
            spec = dataclasses.replace(spec, classes=spec.classes[:classes])
        add_duplicates(out_dir, spec, duplicates, seed)
        return
    spec = load_config(config_path).spec
    if spec.pending:
        raise click.ClickException(f"kit.yaml takes the classes from {spec.classes_file or spec.train_csv} in the "
                                   "data folder; give --preset, or list competition.classes")
    if classes is not None and classes != spec.num_classes:
        spec = dataclasses.replace(spec, classes=spec.classes[:classes] if classes <= spec.num_classes
                                   else tuple(f"class{i}" for i in range(classes)), class_frequencies=None)
    if spec.image_layout == "file":
        write_formatted(out_dir, spec, "glyphs", n_train=n_train, n_test=n_test, size=size, seed=seed, progress=True)
    else:
        write_dataset(out_dir, spec, n_train=n_train, n_test=n_test, size=size, seed=seed, progress=True)
    click.echo(f"wrote {n_train} train and {n_test} test samples ({size}px, "
               f"{spec.num_classes} classes, {spec.num_channels} channels) to {out_dir}")
    add_duplicates(out_dir, spec, duplicates, seed)


def add_duplicates(out_dir: Path, spec, duplicates: int, seed: int) -> None:
    if duplicates:
        from kit.data.synth_dups import add_near_copies

        twins = add_near_copies(out_dir, spec, duplicates, seed=seed)
        click.echo(f"added {duplicates} near copies of train images ({(twins['split'] == 'train').sum()} to train, "
                   f"{(twins['split'] == 'test').sum()} to test); twins in {out_dir / 'duplicates.csv'}")
