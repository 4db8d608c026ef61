from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def report(paths):
    """Draw PNGs of runs and blends, and print a blend's scores.

    \b
    runs/<model>/fold<k>     curves.png: train and validation loss, the validation metric (at 0.5 and
                             tuned), learning rate, per epoch (from history.csv)
    runs/<model>             the curves of every fold, and folds.png: all folds side by side
    runs                     every model in it
    submissions/<name>.json  <name>_per_class.png: per-class OOF F1 of each member and of the blend,
                             with class names and support; prints the members' and blend's macro F1
    """
    from kit.report import report as draw_reports

    draw_reports(paths, log=click.echo)
