from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main
from kit.cli.options import FiniteFloatRange, config_option, data_option, resolve
from kit.layout import DUPS_FILE


@main.command()
@data_option
@config_option
@click.option("--distance", type=FiniteFloatRange(0, 64), default=None,
              help="Largest mean per-channel Hamming distance (of 64 bits) of a duplicate pair. [default: 8, "
                   "the middle of the gap between near copies and unrelated images measured in BENCHMARKS.md]")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=DUPS_FILE,
              show_default=True, help="Id,group file; the pairs go beside it as <name>_pairs.csv.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Processes and threads. Default: all cores.")
def dups(data_dir, config_path, distance, out, workers):
    """Find near-duplicate images across train, external and test data by perceptual hash.

    \b
    Every channel is hashed with imagehash's pHash (64 bits); a pair's distance is the mean of its
    channels' Hamming distances. Pixels come from a fresh `kit cache` when there is one. Writes:
      folds/dups.csv        Id,group for every train Id (duplicates share a group)
      folds/dups_pairs.csv  Id1,Id2,split1,split2,distance,labels_agree for every pair found
    and prints the groups, the test images with a train twin, and how often train twins' labels agree.

    \b
    Example:
      kit dups --data data/ && kit folds --groups folds/dups.csv
      kit blend --dups folds/dups_pairs.csv     # average the predictions of duplicate test images
    """
    from kit.data.dups import DEFAULT_DISTANCE, find_dups

    context = resolve(config_path, data_dir)
    result = find_dups(context.data, DEFAULT_DISTANCE if distance is None else distance, groups_path=out,
                       workers=workers, progress=True)
    for line in result.summary:
        click.echo(line)
