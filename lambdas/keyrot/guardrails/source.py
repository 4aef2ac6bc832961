"""Where a function gets the declared guardrails: the invocation's input or the SSM parameter, trusted only when
the digest matches the one in the function's configuration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keyrot.aws.errors import aws_errors
from keyrot.errors import AwsCallError
from keyrot.guardrails.declared import DeclaredGuardrails
from keyrot.guardrails.document import load_document
from keyrot.guardrails.errors import DeclaredStateError
from keyrot.guardrails.settings import GuardrailsSettings


def load_declared(
    settings: GuardrailsSettings, ssm: Any, document: Mapping[str, Any] | None = None
) -> DeclaredGuardrails | None:
    """The declared guardrails: `document` if given (the deploy-time invocation's input), else the parameter's.
    None when the deployment declares none. DeclaredStateError when they are missing, altered or malformed."""
    if settings.declared_digest is None:
        if document is not None:
            raise DeclaredStateError(
                "this deployment declares no guardrails (the function has no KEYROT_GUARDRAILS_SHA256), so it "
                "applies none; nothing was changed"
            )
        return None
    given: Mapping[str, Any] | str = read_parameter(settings, ssm) if document is None else document
    return load_document(given, expected_digest=settings.declared_digest)


def read_parameter(settings: GuardrailsSettings, ssm: Any) -> str:
    """The parameter's text. DeclaredStateError when there is none or it does not exist."""
    name = settings.parameter_name
    if name is None:
        raise DeclaredStateError(
            "the deployment declares guardrails but names no parameter to read them from (KEYROT_GUARDRAILS_PARAMETER)"
        )
    try:
        with aws_errors("GetParameter"):
            response = ssm.get_parameter(Name=name)
    except AwsCallError as exc:
        if exc.code == "ParameterNotFound":
            raise DeclaredStateError(
                f"the declared guardrails parameter {name} does not exist: run `pulumi up` to write it"
            ) from exc
        raise
    value = response.get("Parameter", {}).get("Value")
    if not isinstance(value, str):
        raise DeclaredStateError(f"the declared guardrails parameter {name} has no text value")
    return value
