from __future__ import annotations

import os
from pathlib import Path

import click

from kit.cli.group import main
from kit.cli.options import config_option, data_option, resolve


@main.command()
@click.option("--size", type=click.IntRange(min=1), default=None,
              help="Side of the cached images in pixels. Default: train.size in the config.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Cache root. Default: $KIT_CACHE, else <data>/cache, else ./cache if the data folder is read-only.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Decoding processes. Default: all cores.")
@data_option
@config_option
def cache(size, out_dir, workers, data_dir, config_path):
    """Decode every train and test image once into <out>/<size>px/<split>.npy (N x S x S x C uint8).

    \b
    Images are resized with area interpolation, exactly as training would decode them.
    Run it again any time: finished, unchanged samples are kept, an interrupted run resumes,
    and samples whose files changed (size or mtime) are decoded again. Unreadable images are
    listed by Id and file at the end, and the command fails; the cache is then not used.

    Training and prediction use a complete, fresh cache of the requested size automatically
    (looked for in $KIT_CACHE, <data>/cache, then ./cache) and otherwise decode the images, saying
    which. On Kaggle the data folder is read-only: the cache goes to ./cache (/kaggle/working/cache).
    """
    from kit.data.cache import build_cache, cache_roots, default_cache_root

    ctx = resolve(config_path, data_dir)
    if size is None:
        from kit.config import DEFAULT_CONFIG_NAME
        from kit.settings import TRAIN

        size = ctx.config.section("train").get("size")
        if size is None:
            raise click.UsageError("give --size (or set train.size in kit.yaml)")
        size = TRAIN.by_name["size"].coerce(size, f"{ctx.config.path or DEFAULT_CONFIG_NAME}: train: size")
    root = out_dir or default_cache_root(ctx.data)

    def summary(report):
        line = f"{report.split}: {report.total} samples, {report.decoded} decoded, {report.reused} kept"
        if report.rebuilt_because:
            line += f" (rebuilt: {report.rebuilt_because})"
        if report.bad:
            line += f", {len(report.bad)} unreadable"
        click.echo(f"{line} -> {report.path}")

    build_cache(ctx.data, size, out=root, workers=workers, progress=True, on_split=summary)
    click.echo(f"cache complete: {root}/{size}px")
    searched = {os.path.abspath(path) for path in cache_roots(ctx.data)}
    if os.path.abspath(root) not in searched:
        click.echo(f"note: training looks for caches in {', '.join(map(str, cache_roots(ctx.data)))}; "
                   f"set KIT_CACHE={root} to use this one")
