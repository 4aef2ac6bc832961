"""`make demo`: rehearse the whole system locally; exit non-zero if any step did not happen as described."""

from __future__ import annotations

import sys

from rich.console import Console

from lab.demo.story import run


def main() -> int:
    console = Console()
    if not console.is_terminal:
        console = Console(width=110)  # logs and CI: do not wrap at 80 columns
    console.print(
        "[bold]keyrot rehearsal[/]: the dev stack, its rotations, an application and on-call, on this machine"
    )
    outcome = run(console)
    failed = [what for what, passed, _ in outcome.checks if not passed]
    seconds = outcome.figures.get("seconds")
    if failed:
        console.print(f"\n[bold red]Rehearsal FAILED[/] after {seconds} s: {len(failed)} check(s) did not hold:")
        for what in failed:
            console.print(f"  ✗ {what}")
        return 1
    console.print(f"\n[bold green]Rehearsal passed[/]: {len(outcome.checks)} checks in {seconds} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
