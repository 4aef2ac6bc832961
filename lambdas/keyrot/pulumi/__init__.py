"""keyrot as a Pulumi component: `KeyrotEnvironment` creates one environment (secrets, functions, alarms, ...).

Needs the `pulumi` extra (`pip install 'keyrot[pulumi]'`). The names below are imported on first use, so the
stdlib-only helpers in this package (`keyrot.pulumi.archive`, `keyrot.pulumi.schedule`) stay importable by tools
that have no Pulumi SDK.

    from keyrot.pulumi import KeyrotEnvironment, KeyrotEnvironmentArgs

    env = KeyrotEnvironment("keyrot", KeyrotEnvironmentArgs(environment="dev", openai_project_id="proj_...", ...))
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ConfigError", "KeyArgs", "KeyrotEnvironment", "KeyrotEnvironmentArgs"]

_HOMES = {
    "ConfigError": "keyrot.pulumi.config",
    "KeyArgs": "keyrot.pulumi.environment",
    "KeyrotEnvironment": "keyrot.pulumi.environment",
    "KeyrotEnvironmentArgs": "keyrot.pulumi.environment",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'keyrot.pulumi' has no attribute {name!r}")
    try:
        module = importlib.import_module(_HOMES[name])
    except ModuleNotFoundError as exc:
        if exc.name in ("pulumi", "pulumi_aws"):
            raise ModuleNotFoundError(
                f"keyrot.pulumi.{name} needs the Pulumi SDK and AWS provider: pip install 'keyrot[pulumi]'",
                name=exc.name,
            ) from exc
        raise
    return getattr(module, name)
