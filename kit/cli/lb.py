"""`kit lb`: the blends' cross-validated scores beside the leaderboard scores of their submissions."""
from __future__ import annotations

from pathlib import Path

import click

from kit.cli.group import main
from kit.cli.options import competition_option, config_option, data_option, resolve


@main.command()
@click.option("--out", "folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the blends (<name>.json, .csv) and of lb.png. [default: blend.out, submissions]")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The submission log. [default: log.csv in --out]")
@click.option("--offline", is_flag=True, help="Use the scores the log holds; ask Kaggle nothing.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1),
              help="Kaggle submissions listed (newest first).")
@competition_option
@data_option
@config_option
def lb(folder, log_path, offline, limit, competition, data_dir, config_path):
    """Join every blend's scores (at 0.5, tuned, cross-validated) with the public and private scores Kaggle
    reports for the submissions made from it; print the table and write <out>/lb.png (cv against public, with
    their Spearman rank correlation). A submission whose cv-vs-public gap is far out of line with the others'
    is flagged (more than 3 robust standard deviations and 0.01 from their median gap).

    \b
    Examples:
      kit lb                      refresh the scores from Kaggle, then join
      kit lb --offline            the scores `kit submit --wait` logged
    """
    from kit.kaggle.leaderboard import leaderboard, table
    from kit.layout import submission_log
    from kit.settings import BLEND

    context = resolve(config_path, data_dir)
    folder = folder or context.section(BLEND)["out"]
    board = leaderboard(folder, log_path or submission_log(folder), competition or context.data.spec.slug,
                        refresh=not offline, limit=limit)
    click.echo(table(board))
    rho = "n/a (needs 3 submissions with cv and public scores)" if board.spearman is None else f"{board.spearman:.3f}"
    click.echo(f"\nSpearman rank correlation of cv and public: {rho}")
    flagged = [e for e in board.entries if e.flagged]
    if flagged:
        click.echo("out of line: " + ", ".join(f"{e.blend.name} (gap {e.gap:+.4f}, median {board.median_gap:+.4f})"
                                                for e in flagged))
    if "png" in board.files:
        click.echo(f"wrote {board.files['png']}")
