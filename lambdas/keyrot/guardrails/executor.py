"""Run an apply plan, one call at a time, in order. A refusal by OpenAI becomes an error naming the setting.

Every operation sets an absolute value (a limit, a threshold, a list) or deletes by id, so running a plan again, or
a fresh plan after a crash half-way, converges: the next `compare` sees what landed and plans only what is left.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from keyrot.guardrails.constants import rate_limit_setting
from keyrot.guardrails.errors import GuardrailsApplyError, Problem
from keyrot.guardrails.plan import GuardrailsWriter, Operation, UpdateRateLimit
from keyrot.openai_admin.errors import BadRequestError, OpenAIError

logger = logging.getLogger(__name__)


def execute(admin: GuardrailsWriter, project_id: str, operations: Iterable[Operation]) -> tuple[str, ...]:
    """Make each operation's call; return what was changed. Stops at the first failure: OpenAI's refusal of a value
    (400) as GuardrailsApplyError naming the setting, anything else as the admin client's typed error."""
    done: list[str] = []
    for operation in operations:
        try:
            operation.run(admin, project_id)
        except BadRequestError as exc:
            raise GuardrailsApplyError([refusal(operation, exc)], applied=done) from exc
        except OpenAIError as exc:
            logger.warning(
                "guardrails apply stopped at %s after %d change(s): %s",
                operation.setting,
                len(done),
                type(exc).__name__,
                extra={"applied": list(done)},
            )
            raise
        done.append(operation.describe())
        logger.info("guardrail changed: %s", done[-1])
    return tuple(done)


def refusal(operation: Operation, exc: BadRequestError) -> Problem:
    """OpenAI's 400 for one operation, as a problem naming the setting (the field OpenAI names, if any)."""
    if isinstance(operation, UpdateRateLimit):
        field = exc.param if exc.param in operation.limits else None
        field = field or (operation.raises[0] if operation.raises else next(iter(operation.limits)))
        value, current = operation.limits[field], operation.current.get(field)
        if field in operation.raises:
            message = (
                f"{value} is above what OpenAI allows this project for {operation.model} (now {current}): OpenAI "
                "only lets a project's rate limits be lowered, to at most the organization's limit for the model. "
                f"OpenAI said: {exc}"
            )
        else:
            message = f"OpenAI refused {value} for {operation.model}: {exc}"
        return Problem(rate_limit_setting(operation.model, field), message)
    return Problem(operation.setting, f"OpenAI refused {operation.describe()}: {exc}")
