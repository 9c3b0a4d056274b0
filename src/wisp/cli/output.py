"""Human output on stdout, progress and errors on stderr, JSON for scripts.

Lines are written by :class:`Printer`, which understands the few Rich-style
markup tags the commands use (``[bold]``, ``[dim]``, ``[red]``, ``[green]``,
``[yellow]``, closed by ``[/]``) and colours them on a terminal. Rich itself is
imported only to print its renderables (the listing commands' tables): importing
it cost ~30 ms of every command's start-up.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

STYLES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33"}
# An opening tag names known styles; anything else in brackets ("[1/3]") is text.
_NAMES = "|".join(STYLES)
TAG = re.compile(rf"\[(/|(?:{_NAMES})(?: (?:{_NAMES}))*)\]")
RESET = "\033[0m"


def strip_markup(text: str) -> str:
    return TAG.sub("", text)


class Printer:
    """A line printer for one stream (looked up at each call, so tests may replace it)."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def file(self) -> TextIO:
        stream: TextIO = getattr(sys, self.name)
        return stream

    @property
    def colour(self) -> bool:
        if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
            return False
        return bool(os.environ.get("FORCE_COLOR")) or self.file.isatty()

    def print(
        self, *objects: Any, markup: bool = True, highlight: bool = False, style: str = ""
    ) -> None:
        """Print ``objects`` on one line; strings may carry markup, others go through Rich."""
        if any(not isinstance(o, str) for o in objects):
            if not self.file.isatty() and all(_is_table(o) for o in objects):
                # In a pipe or a file, whole values in aligned columns (as doctl prints):
                # Rich would fit the table to 80 columns and cut values with "…".
                for table in objects:
                    self.file.write("".join(line + "\n" for line in plain_table(table)))
                self.file.flush()
                return
            self.rich().print(*objects)
            return
        text = " ".join(objects)
        colour = self.colour
        if markup:
            text = self._render(text) if colour else strip_markup(text)
        if colour and style:
            text = self._codes(style) + text + RESET
        self.file.write(text + "\n")
        self.file.flush()

    def out(self, text: str, highlight: bool = False) -> None:
        """Print ``text`` exactly as it is."""
        self.file.write(text + "\n")
        self.file.flush()

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        """Show ``message`` on a terminal while the block runs, and erase it after."""
        if not self.file.isatty():
            yield
            return
        self.file.write(message + "…\r")
        self.file.flush()
        try:
            yield
        finally:
            self.file.write("\r\033[K")
            self.file.flush()

    def rich(self) -> Console:
        from rich.console import Console

        return Console(file=self.file, highlight=False, soft_wrap=True)

    def _render(self, text: str) -> str:
        def ansi(match: re.Match[str]) -> str:
            tag = match.group(1)
            return RESET if tag == "/" else self._codes(tag)

        return TAG.sub(ansi, text) + (RESET if TAG.search(text) else "")

    @staticmethod
    def _codes(style: str) -> str:
        codes = [STYLES[word] for word in style.split() if word in STYLES]
        return f"\033[{';'.join(codes)}m" if codes else ""


stdout = Printer("stdout")
stderr = Printer("stderr")


def make_table(*, show_header: bool = True) -> Table:
    """A borderless Rich table with bold headers (Rich is imported here, when needed)."""
    from rich.table import Table

    return Table(box=None, show_header=show_header, header_style="bold")


def _is_table(thing: Any) -> bool:
    return type(thing).__name__ == "Table" and type(thing).__module__ == "rich.table"


def plain_table(table: Table) -> list[str]:
    """``table``'s rows as lines of whole values, columns two spaces apart."""
    columns = [[_plain(cell) for cell in column.cells] for column in table.columns]
    rows = [list(row) for row in zip(*columns, strict=True)] if columns else []
    if table.show_header:
        rows.insert(0, [_plain(column.header) for column in table.columns])
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(len(columns))]
    right = [column.justify == "right" for column in table.columns]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if flush else cell.ljust(width)
            for cell, width, flush in zip(row, widths, right, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def _plain(cell: Any) -> str:
    plain = getattr(cell, "plain", None)  # a rich.text.Text
    text = plain if isinstance(plain, str) else strip_markup(str(cell))
    return " ".join(text.splitlines())  # one line per row, whatever a value holds


def print_json(data: Any) -> None:
    """Plain JSON (no colour, no wrapping) so that it can be piped into other tools."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def format_time(epoch_ms: Any) -> str:
    if not isinstance(epoch_ms, int | float) or epoch_ms <= 0:
        return "-"
    return datetime.fromtimestamp(epoch_ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def annotation(doc: dict[str, Any], key: str) -> Any:
    for item in doc.get("annotations") or []:
        if isinstance(item, dict) and item.get("key") == key:
            return item.get("value")
    return None
