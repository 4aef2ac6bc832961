"""How the rehearsal speaks: numbered steps headed by their own duration, checks that count, command output verbatim.

Verbatim means no emoji codes either: an ARN's `:secret:` must not become an emoji.

A step's lines are held until it ends, so its header can carry the step's own duration; in a terminal a spinner on
stderr shows the step running meanwhile (nothing of it reaches a pipe or a CI log).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner


class StoryStopped(Exception):
    """A check the rest of the story depends on did not hold: the rehearsal stops there (and fails)."""


@dataclass
class Outcome:
    """Every check with its verdict, each step's duration, and the figures of the run."""

    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    steps: list[tuple[str, float]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(passed for _, passed, _ in self.checks)

    @property
    def failed(self) -> list[str]:
        return [what for what, passed, _ in self.checks if not passed]


class Narrator:
    def __init__(self, console: Console, outcome: Outcome) -> None:
        self.console = console
        self.outcome = outcome
        self.started = time.monotonic()
        self._progress = Console(stderr=True)

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        """One step: its lines appear under a header that says how long the step itself took."""
        number = len(self.outcome.steps) + 1
        started = time.monotonic()
        finished = False
        captured = None
        try:
            with self._spinner(f"{number}. {title}"), self.console.capture() as captured:
                yield
            finished = True
        finally:
            seconds = time.monotonic() - started
            self.outcome.steps.append((title, round(seconds, 2)))
            ending = "" if finished else ", interrupted"
            self.console.print(
                f"\n[bold cyan]▶ {number}. {escape(title)}[/]  [dim]({seconds:.1f} s{ending})[/]", emoji=False
            )
            if captured is not None:
                self.console.file.write(captured.get())
                self.console.file.flush()

    def say(self, text: str) -> None:
        self.console.print(f"  {text}", emoji=False)

    @property
    def columns(self) -> int:
        """How wide a command's output may be: the terminal less the indent, or unbounded (200) in a pipe."""
        return max(60, self.console.width - 4) if self.console.is_terminal else 200

    def output(self, command: str, text: str, *, last: int | None = None) -> None:
        """A command as the operator types it, then its output line for line (never joined), or its `last` lines."""
        self.console.print(f"  [bold]$ {escape(command)}[/]", emoji=False)
        lines = [line.rstrip() for line in text.rstrip().splitlines() if line.strip()]
        if last is not None and len(lines) > last:
            self.console.print(f"    … {len(lines) - last} lines as above …", style="dim", highlight=False, emoji=False)
            lines = lines[-last:]
        for line in lines:
            self.console.print(f"    {escape(line)}", style="dim", highlight=False, emoji=False)

    def notification(self, subject: str, lines: list[str]) -> None:
        """A notification on-call received: its subject, then the lines they read first, verbatim."""
        self.console.print(f"  [magenta]✉ {escape(subject)}[/]", emoji=False)
        for line in lines:
            self.console.print(f"    {escape(line)}", style="dim", highlight=False, emoji=False)

    def expect(self, what: str, passed: bool, detail: str = "") -> bool:
        self.outcome.checks.append((what, passed, detail))
        mark = "[green]✓[/]" if passed else "[bold red]✗[/]"
        self.console.print(f"  {mark} {what}" + (f" [dim]({escape(detail)})[/]" if detail else ""), emoji=False)
        return passed

    def require(self, what: str, passed: bool, detail: str = "") -> None:
        """A check the rest of the story needs: when it fails, the story stops (StoryStopped) instead of going on."""
        if not self.expect(what, passed, detail):
            raise StoryStopped(what)

    def _spinner(self, text: str) -> Any:
        if not self._progress.is_terminal:
            return nullcontext()
        return Live(
            Spinner("dots", text=text),
            console=self._progress,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
            refresh_per_second=8,
        )
