"""The errors of declared guardrails: a bad block, a declared state that cannot be trusted, an apply OpenAI refused."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from keyrot.errors import ConfigurationError, KeyrotError
from keyrot.guardrails.constants import qualified
from keyrot.redaction import scrub


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one setting. `setting` is the path under the block (`rateLimits.gpt-4o.…`)."""

    setting: str
    message: str

    @property
    def config_key(self) -> str:
        """The setting as the stack configuration's validator names it, without the namespace: `guardrails.…`."""
        return qualified(self.setting).split(":", 1)[1]

    def __str__(self) -> str:
        return f"{qualified(self.setting)}: {self.message}"


class GuardrailsConfigError(ConfigurationError):
    """The guardrails block is invalid. `problems` lists every finding, each naming its setting."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(Problem(p.setting, scrub(p.message)) for p in problems)
        super().__init__("invalid keyrot guardrails:\n  " + "\n  ".join(str(p) for p in self.problems))


class DeclaredStateError(KeyrotError):
    """The declared guardrails the function was given cannot be trusted or read (missing, altered, malformed)."""

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))


class GuardrailsApplyError(KeyrotError):
    """The declared guardrails cannot be applied to the project as it is. `problems` name the settings; `applied`
    lists the changes made before the refusal (each one toward the declared state)."""

    def __init__(self, problems: Sequence[Problem], applied: Sequence[str] = ()) -> None:
        self.problems = tuple(Problem(p.setting, scrub(p.message)) for p in problems)
        self.applied = tuple(applied)
        done = f"; applied before stopping: {', '.join(self.applied)}" if self.applied else "; nothing was changed"
        super().__init__(
            "the declared guardrails cannot be applied:\n  " + "\n  ".join(str(p) for p in self.problems) + done
        )
