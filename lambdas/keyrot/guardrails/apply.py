"""Apply the declared guardrails to a project: read, check, plan, change only what differs.

Idempotent: when the project already has the declared guardrails the apply makes its four reads and no other
call. Convergent: it plans from what OpenAI has now, so an apply that stopped half-way (a crash, a 5xx, a 429) is
finished by the next one. Settings the project cannot take (a model it has no rate limit for, a limit a model does
not have) are refused before any change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from keyrot.guardrails.actual import GuardrailsReader, read_actual
from keyrot.guardrails.declared import DeclaredGuardrails
from keyrot.guardrails.diff import Difference, compare
from keyrot.guardrails.errors import GuardrailsApplyError
from keyrot.guardrails.executor import execute
from keyrot.guardrails.plan import GuardrailsWriter


class GuardrailsAdmin(GuardrailsReader, GuardrailsWriter, Protocol):
    """Both halves: what OpenAIAdminClient offers for guardrails."""


@dataclass(frozen=True)
class ApplyReport:
    """What an apply found different and what it changed (descriptions with ids and amounts only)."""

    project_id: str
    differences: tuple[Difference, ...]
    changes: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def apply_guardrails(admin: GuardrailsAdmin, project_id: str, declared: DeclaredGuardrails) -> ApplyReport:
    """Make the project's guardrails the declared ones. GuardrailsApplyError when the project cannot take them (no
    change made) or OpenAI refuses a value (changes before it listed); OpenAIError when a call fails."""
    comparison = compare(declared, read_actual(admin, project_id))
    if comparison.problems:
        raise GuardrailsApplyError(comparison.problems)
    changes = execute(admin, project_id, comparison.operations)
    return ApplyReport(project_id, comparison.differences, changes)
