"""``agentroute data split``: train and test files from a routing table, for ``fit``, ``train`` and ``eval``.

It creates the ``data`` group (``agentroute.cli_learn`` adds ``data convert`` to it). Only ``click`` is imported
at module level; pandas loads inside the command.
"""

from __future__ import annotations

from pathlib import Path

import click

from agentroute._cli_util import CliError, friendly


class DataCliError(CliError):
    """A problem with a table the user can fix: one line, exit code 2."""


@click.group("data")
def data_group() -> None:
    """Routing tables: convert public releases, split them into train and test files."""


@data_group.command("split")
@click.argument("table")
@click.option("--test-size", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=0.2,
              show_default=True, help="Share of the queries that go to the test part.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--by-category", is_flag=True,
              help="Hold out whole categories (the test part asks about task types training never saw). "
                   "Default: split by query, stratified by category.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="DIR for train.<format> and test.<format>.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "jsonl"]), default="parquet",
              show_default=True)
@click.option("--drop-incomplete", is_flag=True, help="Drop queries lacking some option's outcome first.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
@friendly(DataCliError)
def split_cmd(table: str, test_size: float, seed: int, by_category: bool, out_dir: str, fmt: str,
              drop_incomplete: bool, quiet: bool) -> None:
    """Split TABLE (a .csv/.jsonl/.parquet file, or routerbench, llmrouter, routellm) into DIR/train and DIR/test."""
    from agentroute.data import BUILTIN, RoutingTable, load_builtin
    from agentroute.data.split import split_table, write_split

    if Path(table).exists():
        tbl = RoutingTable.read(table, drop_incomplete=drop_incomplete)
    elif table in BUILTIN:
        tbl = load_builtin(table)
    else:
        raise DataCliError(f"no table {table!r}: give a .csv/.jsonl/.parquet file or one of {', '.join(BUILTIN)}")
    train, test = split_table(tbl, test_size, seed, by_category=by_category)
    paths = write_split(train, test, out_dir, f".{fmt}")
    if quiet:
        return
    how = "whole categories held out" if by_category else "by query, stratified by category"
    click.echo(f"wrote {paths[0]} ({len(train)} queries) and {paths[1]} ({len(test)} queries): {how}, "
               f"test size {test_size:g}, seed {seed}")
    held = test.meta.get("held_out_categories")
    if held:
        click.echo(f"  held-out categories: {', '.join(held)}")


def register(main: click.Group) -> None:
    """Add the ``data`` group with ``data split``."""
    existing = main.commands.get("data")
    if isinstance(existing, click.Group):
        existing.add_command(split_cmd)
    else:
        main.add_command(data_group)


__all__ = ["register"]
