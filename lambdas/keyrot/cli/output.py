"""Everything the CLI prints: rich tables and lines for people, stable JSON for scripts, errors on stderr.

Every piece of text that came from outside (AWS or OpenAI messages, names) goes through `safe()`, which scrubs
anything shaped like a key, so no code path can print key material.

Output reads well wherever it lands. In a terminal, text wraps at the terminal's width and a table too wide for it
is shown as one block of `column: value` lines per row instead of folding words. In a pipe, a file or a CI log
nothing is wrapped at all: a line stays one line, an id stays one token, a table keeps its natural width.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from traceback import format_exception
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from keyrot.redaction import scrub

STATUS_STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red", "info": "cyan"}
JSON_SCHEMA_PREFIX = "keyrot.cli"


# "No limit" for a console that is not a terminal: wide enough that nothing keyrot prints is ever wrapped.
UNWRAPPED_WIDTH = 100_000


def terminal_width(*, stderr: bool = False) -> int | None:
    """The width of the terminal stdout (or stderr) writes to; None when it is not a terminal (tests replace this)."""
    stream = sys.stderr if stderr else sys.stdout
    try:
        if not stream.isatty():
            return None
    except (AttributeError, ValueError):  # closed, or a stream without isatty
        return None
    return shutil.get_terminal_size().columns


def console(*, stderr: bool = False) -> Console:
    """A console on the current stdout/stderr (created per call, so captured streams are honoured)."""
    width = terminal_width(stderr=stderr)
    if width is None:
        return Console(stderr=stderr, highlight=False, width=UNWRAPPED_WIDTH, soft_wrap=True)
    return Console(stderr=stderr, highlight=False, width=width, soft_wrap=True)


def safe(text: object) -> str:
    return scrub(str(text))


def line(text: str, *, style: str | None = None) -> None:
    """One line for people on stdout."""
    console().print(Text(safe(text), style=style or ""))


def progress(text: str) -> None:
    """A progress line on stderr, for commands whose stdout carries a --json document."""
    console(stderr=True).print(Text(safe(text)))


def note(text: str) -> None:
    """A side remark on stderr (warnings, progress that must not pollute --json output)."""
    console(stderr=True).print(Text(safe(text), style="yellow"))


def error(text: str) -> None:
    """The one-line error report on stderr."""
    typer.echo(f"keyrot: error: {' '.join(safe(text).split())}", err=True)


def traceback(exc: BaseException) -> None:
    """The traceback of `exc` on stderr (--debug), scrubbed like every other text the CLI prints."""
    text = "".join(format_exception(exc))
    typer.echo(safe(text).rstrip("\n"), err=True)


def finding(status: str, title: str, detail: str = "", hint: str = "") -> None:
    """One checklist line: `[ ok ] title: detail -> what to do`."""
    text = Text()
    text.append(f"[{status:^4}] ", style=STATUS_STYLES.get(status, ""))
    text.append(safe(title), style="bold")
    if detail:
        text.append(f": {safe(detail)}")
    if hint:
        text.append(f"  → {safe(hint)}", style="dim" if status == "ok" else "")
    console().print(text)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A table; in a terminal too narrow for it, one block of `column: value` lines per row instead."""
    cells = [
        [cell if isinstance(cell, Text) else Text(safe("—" if cell is None else cell)) for cell in row] for row in rows
    ]
    grid = Table(title=safe(title), title_justify="left", show_lines=False)
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in cells:
        grid.add_row(*row)
    width = terminal_width()
    if width is None or natural_width(grid) <= width:
        console().print(grid)
        return
    _records(safe(title), columns, cells)


def _cell(value: object) -> Text:
    return value if isinstance(value, Text) else Text(safe("—" if value is None else value))


def natural_width(renderable: Any) -> int:
    """The width `renderable` takes when nothing limits it."""
    sink = Console(file=io.StringIO(), width=UNWRAPPED_WIDTH, highlight=False, color_system=None)
    lines = sink.render_lines(renderable, sink.options, pad=False)
    return max((sum(segment.cell_length for segment in line) for line in lines), default=0)


def _records(title: str, columns: Sequence[str], rows: list[list[Text]]) -> None:
    """The readable layout of a wide table: its title, then per row its first cell and the other cells labelled."""
    out = console()
    out.print(Text(title, style="bold"))
    label_width = max((len(column) for column in columns[1:]), default=0)
    for row in rows:
        out.print(Text.assemble("", row[0]))
        for column, cell in zip(columns[1:], row[1:], strict=True):
            out.print(Text.assemble(f"  {column:<{label_width}}  ", cell))


def styled(value: str, status: str) -> Text:
    return Text(safe(value), style=STATUS_STYLES.get(status, ""))


def emit_json(kind: str, document: dict[str, Any]) -> None:
    """A machine-readable document on stdout: `schema` names its shape and version; keys are sorted."""
    payload = {"schema": f"{JSON_SCHEMA_PREFIX}.{kind}/v1", **document}
    text = json.dumps(payload, indent=2, sort_keys=True, default=_default)
    typer.echo(scrub(text))


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def duration(seconds: float | None) -> str:
    """3d 4h, 5h 12m, 12m, 40s."""
    if seconds is None:
        return "—"
    sign, seconds = ("-" if seconds < 0 else ""), abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes}m"
    if minutes:
        return f"{sign}{minutes}m"
    return f"{sign}{secs}s"


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
