"""Console output shared by the command-line tools."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(stderr=True)


def print_error(message: str) -> None:
    """One line `error: …` on stderr, never wrapped (a path in it stays copyable)."""
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)


def print_counts(title: str, taken: int, rejected: Counter, notes: list[str] | None = None) -> None:
    """A table of how many rows were taken and how many rejected, by reason (most frequent first)."""
    table = Table(title=escape(title), show_lines=False)
    table.add_column("outcome")
    table.add_column("files", justify="right")
    table.add_row("[green]taken", str(taken))
    for reason, count in rejected.most_common():
        table.add_row(f"[red]rejected: {escape(str(reason))}", str(count))
    console.print(table)
    for note in notes or []:
        console.print(f"[yellow]{escape(note)}", soft_wrap=True)


def print_metrics(metrics: dict[str, float], title: str, paths: Mapping[str, str | Path]) -> None:
    """The end-of-run table, then each path on a line of its own that is never wrapped (copyable)."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in sorted(metrics):
        if key.startswith(("val/", "test/", "external/")) and not key.endswith("_loss"):
            table.add_row(key, f"{metrics[key]:.4f}")
    Console().print(table)
    print_paths(paths)


def print_paths(paths: Mapping[str, str | Path]) -> None:
    """Each path on a line of its own that is never wrapped (copyable)."""
    stdout = Console()
    for label, path in paths.items():
        stdout.print(f"{label}: {path}", soft_wrap=True, highlight=False, markup=False)
