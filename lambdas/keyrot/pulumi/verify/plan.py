"""The verification kit's plan: claims, the steps that check them, the order, and the teardown that always runs.

Pure logic (no AWS, no Pulumi): steps are callables over a shared context, run in order; a step whose prerequisite
did not pass is skipped, naming it; teardown steps run whatever happened before (a failure, an exception, Ctrl-C),
and a teardown failure is reported too. Every line printed passes through keyrot's redaction: a key that ended up in
an error message is never shown.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from keyrot.redaction import scrub


@dataclass(frozen=True)
class Claim:
    """Something README's "Not verified here" says this repository cannot check, and how the kit checks it."""

    key: str
    text: str
    # The README bullet it answers (a phrase of it), so the kit covers every claim README lists.
    readme_phrase: str
    # Why the kit does not check it, when it does not (it still gets a line).
    not_checked: str = ""


class Outcome(enum.Enum):
    PASS = "PASS"  # noqa: S105 - an outcome, not a password
    FAIL = "FAIL"
    SKIP = "SKIP"
    NOT_CHECKED = "NOT CHECKED"


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[dict[str, Any]], str | None]  # returns a detail for the report (never a key), raises on failure
    claims: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    teardown: bool = False


@dataclass
class StepResult:
    step: str
    outcome: Outcome
    detail: str = ""


@dataclass
class Report:
    results: list[StepResult] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def result(self, step: str) -> StepResult:
        return next(r for r in self.results if r.step == step)

    @property
    def passed(self) -> bool:
        return all(r.outcome in (Outcome.PASS, Outcome.NOT_CHECKED) for r in self.results)


def _one_line(text: str, secrets: Iterable[str]) -> str:
    return " ".join(scrub(str(text), secrets).split())[:500]


def run_plan(
    steps: Sequence[Step],
    context: dict[str, Any],
    *,
    emit: Callable[[str], None] = print,
    secrets: Callable[[], Iterable[str]] = tuple,
) -> Report:
    """Run `steps` in order (teardown steps last, always); report one line per step, scrubbed of `secrets()`."""
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise ValueError("step names must be unique")
    known = set(names)
    for step in steps:
        unknown = set(step.needs) - known
        if unknown:
            raise ValueError(f"step {step.name} needs unknown steps {sorted(unknown)}")
    report = Report()

    def record(step: Step, outcome: Outcome, detail: str) -> None:
        detail = _one_line(detail, secrets())
        report.results.append(StepResult(step.name, outcome, detail))
        line = f"{outcome.value:<11} {step.name}" + (f": {detail}" if detail else "")
        report.lines.append(line)
        emit(line)

    def attempt(step: Step) -> None:
        try:
            detail = step.run(context) or ""
        except Exception as exc:  # noqa: BLE001 - a failed check is a result, and teardown must still run
            record(step, Outcome.FAIL, f"{type(exc).__name__}: {exc}")
        else:
            record(step, Outcome.PASS, detail)

    try:
        for step in (s for s in steps if not s.teardown):
            outcomes = {r.step: r.outcome for r in report.results}
            missing = [n for n in step.needs if outcomes.get(n) is not Outcome.PASS]
            if missing:
                record(step, Outcome.SKIP, f"not run: {', '.join(missing)} did not pass")
                continue
            attempt(step)
    finally:  # also on Ctrl-C or an exit mid-plan, which then goes on
        for step in (s for s in steps if s.teardown):
            attempt(step)
    return report


def claim_lines(claims: Sequence[Claim], steps: Sequence[Step], report: Report) -> list[str]:
    """One line per claim: PASS only when every step checking it passed; NOT CHECKED, saying why, when none does."""
    lines = []
    for claim in claims:
        checking = [s.name for s in steps if claim.key in s.claims]
        if not checking:
            lines.append(f"{Outcome.NOT_CHECKED.value:<11} {claim.text} ({claim.not_checked})")
            continue
        outcomes = [report.result(name).outcome for name in checking if any(r.step == name for r in report.results)]
        if outcomes and all(o is Outcome.PASS for o in outcomes) and len(outcomes) == len(checking):
            outcome = Outcome.PASS
        elif any(o is Outcome.FAIL for o in outcomes):
            outcome = Outcome.FAIL
        else:
            outcome = Outcome.SKIP
        lines.append(f"{outcome.value:<11} {claim.text}")
    return lines
