"""Small helpers shared by the components."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi


def policy_json(builder: Callable[..., dict[str, Any]], **inputs: Any) -> pulumi.Output[str]:
    """Resolve `inputs` (Outputs, lists of Outputs, plain values) and render `builder(**inputs)` as JSON."""
    if not inputs:
        return pulumi.Output.from_input(json.dumps(builder()))
    return pulumi.Output.all(**inputs).apply(lambda resolved: json.dumps(builder(**resolved)))


def child(parent: pulumi.Resource, **extra: Any) -> pulumi.ResourceOptions:
    """Options for a component's child: always parented, so names, URNs and deletes follow the component."""
    return pulumi.ResourceOptions(parent=parent, **extra)
