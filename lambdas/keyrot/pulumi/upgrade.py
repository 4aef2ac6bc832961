"""Upgrading a stack that keyrot 0.1's own program deployed: every resource keeps its identity under the component.

keyrot 0.1's `infra/__main__.py` declared its components (`encryption`, `secrets`, `rotation`, ...) at the top of
the stack. Under `KeyrotEnvironment("keyrot", ...)` the same resources are children of the environment and named
`keyrot-encryption`, `keyrot-secrets-chat-backend`, ...: new URNs. With `adopt_standalone_stack` each resource gets
the URN it had in 0.1 as an alias, so Pulumi recognises it and `pulumi up` updates in place instead of replacing.
Physical names (`keyrot/<env>/<key>`, `keyrot-<env>-rotation`, ...) never depended on these and do not change.
"""

from __future__ import annotations

from collections.abc import Callable

import pulumi


def legacy_urn(*, stack: str, project: str, type_chain: str, name: str) -> str:
    """The URN a resource had in the 0.1 program: its parents' types, then its own, and its 0.1 name."""
    return f"urn:pulumi:{stack}::{project}::{type_chain}::{name}"


def standalone_program_aliases(
    component_name: str, component_type: str
) -> Callable[[pulumi.ResourceTransformationArgs], pulumi.ResourceTransformationResult | None]:
    """A transformation for the environment named `component_name`: alias each descendant to its 0.1 URN.

    A direct child of the environment was top-level in 0.1 (its type chain is its own type); a deeper one was under
    its parent's 0.1 URN. Names lose the `<component_name>-` prefix the component adds.
    """
    prefix = f"{component_name}-"
    chains: dict[int, str] = {}  # id(resource) -> its type chain in the 0.1 program

    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ == component_type and args.name == component_name:
            return None  # the environment itself is new in 0.2
        parent_chain = chains.get(id(args.opts.parent)) if args.opts is not None else None
        chain = args.type_ if parent_chain is None else f"{parent_chain}${args.type_}"
        chains[id(args.resource)] = chain
        if not args.name.startswith(prefix):
            return None
        urn = legacy_urn(
            stack=pulumi.get_stack(), project=pulumi.get_project(), type_chain=chain, name=args.name[len(prefix) :]
        )
        options = pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(aliases=[urn]))
        return pulumi.ResourceTransformationResult(args.props, options)

    return transform
