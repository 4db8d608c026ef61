"""`kit submissions`: the competition's recent submissions and their scores."""
from __future__ import annotations

import click

from kit.cli.group import main
from kit.cli.options import competition_option, config_option


@main.command()
@competition_option
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100),
              help="How many recent submissions to list.")
@click.option("--compare", is_flag=True,
              help="Join them with the cross-validated scores of the blends they were made from (`kit lb`).")
@config_option
@click.pass_context
def submissions(ctx, competition, limit, compare, config_path):
    """List the competition's recent submissions with their scores (newest first).

    \b
    Examples:
      kit submissions               the 20 latest, with public and private scores
      kit submissions --compare     beside each blend's cv score, as `kit lb` prints them (and lb.png)
    """
    if compare:
        from kit.cli.lb import lb

        ctx.invoke(lb, limit=limit, competition=competition, config_path=config_path)
        return
    from kit.config import load_config
    from kit.kaggle.submit import list_submissions

    competition = competition or load_config(config_path).spec.slug
    items = list_submissions(competition, limit)
    if not items:
        click.echo(f"no submissions to {competition} yet")
        return
    rows = [("ref", "date", "file", "status", "public", "private", "description")]
    rows += [(str(s.ref), s.date, s.file_name, s.status if not s.error else f"{s.status}: {s.error}",
              s.public_score, s.private_score, s.description) for s in items]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
