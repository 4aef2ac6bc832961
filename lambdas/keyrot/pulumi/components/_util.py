"""Small helpers shared by the components."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pulumi

from keyrot.pulumi import policies


def policy_json(builder: Callable[..., dict[str, Any]], **inputs: Any) -> pulumi.Output[str]:
    """Resolve `inputs` (Outputs, lists of Outputs, plain values) and render `builder(**inputs)` as JSON."""
    if not inputs:
        return pulumi.Output.from_input(json.dumps(builder()))
    return pulumi.Output.all(**inputs).apply(lambda resolved: json.dumps(builder(**resolved)))


def child(parent: pulumi.Resource, **extra: Any) -> pulumi.ResourceOptions:
    """Options for a component's child: always parented, so names, URNs and deletes follow the component."""
    return pulumi.ResourceOptions(parent=parent, **extra)


def vpc_statements(
    *,
    subnet_ids: Sequence[pulumi.Input[str]],
    security_group_ids: Sequence[pulumi.Input[str]],
    partition: str,
    region: str,
    account_id: str,
) -> pulumi.Output[list[dict[str, Any]]] | list[dict[str, Any]]:
    """A function role's VPC statements (none outside a VPC), once the subnet and group ids resolve."""
    if not subnet_ids:
        return []

    def arn(kind: str, resource_id: str) -> str:
        return f"arn:{partition}:ec2:{region}:{account_id}:{kind}/{resource_id}"

    return pulumi.Output.all(list(subnet_ids), list(security_group_ids)).apply(
        lambda ids: policies.vpc_statements(
            subnet_arns=[arn("subnet", i) for i in ids[0]],
            security_group_arns=[arn("security-group", i) for i in ids[1]],
            region=region,
            account_id=account_id,
            partition=partition,
        )
    )
