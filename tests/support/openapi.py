"""OpenAI's OpenAPI spec for contract tests: loaded once per session, schemas validated with JSON Schema 2020-12.

The spec lives next to the repository at `../shared/reference/openai-openapi.yaml` (CI puts it there). A missing
spec fails the test run with a clear message: contract tests must never be skipped silently.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = (REPO_ROOT / ".." / "shared" / "reference" / "openai-openapi.yaml").resolve()
_SPEC_URI = "urn:openai:openapi"
_STRICT_URI = "urn:openai:openapi:strict"
_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Operation:
    """One spec operation: `path` is the spec template relative to /v1 (e.g. /organization/costs)."""

    method: str
    path: str
    operation_id: str
    spec: Mapping[str, Any]

    @property
    def literal_segments(self) -> int:
        return sum(1 for part in self.path.split("/") if part and not part.startswith("{"))


@functools.cache
def load_spec() -> dict[str, Any]:
    if not SPEC_PATH.is_file():
        pytest.fail(
            f"OpenAI's OpenAPI spec is missing: expected {SPEC_PATH} (../shared/reference/openai-openapi.yaml "
            "relative to the repository root). Contract tests need it; fetch openapi.yaml from openai/openai-openapi.",
            pytrace=False,
        )
    with SPEC_PATH.open("rb") as handle:
        spec = yaml.load(handle, Loader=yaml.CSafeLoader)
    if not isinstance(spec, dict) or not str(spec.get("openapi", "")).startswith("3.1"):
        pytest.fail(f"{SPEC_PATH} is not an OpenAPI 3.1 document", pytrace=False)
    return spec


# Fields openai-python 3.57 models carry that spec f85dbe2 has not caught up with ("newer fields are optional"),
# per component schema, with the type the SDK gives them. Strict validation accepts these and nothing else extra.
SDK_ONLY_FIELDS: Mapping[str, Mapping[str, Any]] = {
    "ProjectServiceAccountApiKey": {"expires_at": {"type": ["integer", "null"]}},
    "ServiceAccountApiKeyBody": {"expires_at": {"type": ["integer", "null"]}},
    "ProjectApiKey": {"expires_at": {"type": ["integer", "null"]}},
}


def _strict_copy(node: Any) -> Any:
    """The spec with `unevaluatedProperties: false` on every object schema that lists properties and says nothing
    about others: a stand-in must not invent fields (clients ignore unknown fields, so a typo would go unnoticed)."""
    if isinstance(node, list):
        return [_strict_copy(item) for item in node]
    if not isinstance(node, dict):
        return node
    copied = {key: _strict_copy(value) for key, value in node.items()}
    if isinstance(node.get("allOf"), list):
        # A schema composed of parts (AdminApiKeyCreateResponse = AdminApiKey + value): each part alone would refuse
        # the other's fields, so the parts are read leniently and the whole refuses what no part declares.
        copied["allOf"] = [_lenient_part(part) for part in node["allOf"]]
        if not {"additionalProperties", "unevaluatedProperties"} & set(node):
            copied["unevaluatedProperties"] = False
    if isinstance(node.get("properties"), dict) and not {"additionalProperties", "unevaluatedProperties"} & set(node):
        copied["unevaluatedProperties"] = False
    return copied


def _lenient_part(part: Any) -> Any:
    if isinstance(part, dict) and isinstance(part.get("$ref"), str) and part["$ref"].startswith("#/"):
        return {**part, "$ref": f"{_SPEC_URI}{part['$ref']}"}  # the same schema in the unmodified spec
    if isinstance(part, dict):
        copied = {key: _strict_copy(value) for key, value in part.items()}
        return copied  # its own properties stay open; the composed schema closes them
    return _strict_copy(part)


@functools.cache
def _registry() -> Registry:
    spec = load_spec()
    strict = _strict_copy(spec)
    for name, fields in SDK_ONLY_FIELDS.items():
        strict["components"]["schemas"][name]["properties"].update(fields)
    return Registry().with_resources(
        [
            (_SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)),
            (_STRICT_URI, Resource.from_contents(strict, default_specification=DRAFT202012)),
        ]
    )


@functools.cache
def _validator(pointer: str, strict: bool) -> jsonschema.Draft202012Validator:
    base = _STRICT_URI if strict else _SPEC_URI
    return jsonschema.Draft202012Validator({"$ref": f"{base}#{pointer}"}, registry=_registry())


def schema_errors(instance: Any, schema_ref: str, *, strict: bool = False) -> list[str]:
    """Validation errors of `instance` against `#/components/schemas/X` (or a name `X`); [] when it conforms.

    strict also refuses properties the schema does not declare (except SDK_ONLY_FIELDS).
    """
    pointer = schema_ref.removeprefix("#") if schema_ref.startswith("#/") else f"/components/schemas/{schema_ref}"
    errors = []
    for error in _validator(pointer, strict).iter_errors(instance):
        location = "/".join(str(part) for part in error.absolute_path) or "<root>"
        causes = "; ".join(sorted({sub.message[:200] for sub in error.context or []}))
        errors.append(f"{location}: {error.message[:300]}{f' [{causes}]' if causes else ''}")
    return errors


def assert_conforms(instance: Any, schema_ref: str, *, strict: bool = False) -> None:
    errors = schema_errors(instance, schema_ref, strict=strict)
    assert not errors, f"response does not conform to {schema_ref}:\n" + "\n".join(errors[:20])


@functools.cache
def operations() -> tuple[Operation, ...]:
    spec = load_spec()
    found = []
    for path, item in spec["paths"].items():
        for method in _METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                found.append(Operation(method.upper(), path, str(op.get("operationId", "")), op))
    return tuple(found)


@functools.cache
def _path_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts))


def operation_for(method: str, path: str) -> Operation | None:
    """The spec operation a concrete request hits (`path` may start with /v1). Literal paths beat templates."""
    relative = path.removeprefix("/v1").rstrip("/") or "/"
    matches = [op for op in operations() if op.method == method.upper() and _path_pattern(op.path).fullmatch(relative)]
    return max(matches, key=lambda op: op.literal_segments, default=None)


def _resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = load_spec()
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def response_schema_ref(op: Operation, status: int) -> str | None:
    """The JSON schema pointer the spec gives for `status` of `op`; ErrorResponse for undocumented error statuses;
    None when the spec documents no JSON body for a success status."""
    responses = op.spec.get("responses", {})
    declared = responses.get(str(status)) or (responses.get("default") if status >= 400 else None)
    if declared is None:
        return "#/components/schemas/ErrorResponse" if status >= 400 else None
    schema = _resolve(declared).get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return None
    if "$ref" in schema:
        return str(schema["$ref"])
    return f"#/paths/{_escape(op.path)}/{op.method.lower()}/responses/{status}/content/application~1json/schema"


def response_header_schema(op: Operation, status: int, header: str) -> Mapping[str, Any] | None:
    declared = op.spec.get("responses", {}).get(str(status))
    if declared is None:
        return None
    headers = {name.lower(): value for name, value in _resolve(declared).get("headers", {}).items()}
    found = headers.get(header.lower())
    return _resolve(found).get("schema") if found else None


def query_parameter(op: Operation, name: str) -> Mapping[str, Any] | None:
    for parameter in op.spec.get("parameters", []):
        resolved = _resolve(parameter)
        if resolved.get("name") == name and resolved.get("in") == "query":
            return resolved
    return None


def component_schema(name: str) -> Mapping[str, Any]:
    return load_spec()["components"]["schemas"][name]


def _escape(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")


def assert_calls_conform(calls: Iterable[Any]) -> None:
    """Every answer the stand-in recorded (its CallRecords) matches OpenAI's spec for that operation and status:
    the body against the response schema (strictly; ErrorResponse for errors, 404 for URLs the spec lacks), and a
    429's Retry-After against the header schema. Dropped connections and injected non-JSON pages have no body."""
    fallback_retry_after = load_spec()["components"]["responses"]["TooManyRequests"]["headers"]["Retry-After"]
    for call in calls:
        if call.status is None:
            assert call.fault == "dropped connection", f"{call.endpoint} gave no answer without a drop fault"
            continue
        op = operation_for(call.method, call.path)
        where = f"{call.method} {call.path} (stand-in endpoint {call.endpoint}, HTTP {call.status})"
        if op is None:  # a URL the spec does not define: OpenAI answers 404 with its error envelope
            assert call.status == 404, f"{where}: not in the spec, so it must be a 404"
            assert_conforms(call.body, "ErrorResponse", strict=True)
            continue
        if call.body is None:
            assert call.fault is not None and "non-JSON" in call.fault, f"{where}: answered without a JSON body"
            continue
        schema = response_schema_ref(op, call.status)
        assert schema is not None, f"{where}: the spec documents no JSON body for {op.operation_id}"
        errors = schema_errors(call.body, schema, strict=True)
        assert not errors, f"{where} does not conform to {schema}:\n" + "\n".join(errors[:20])
        retry_after = {name.lower(): value for name, value in call.headers.items()}.get("retry-after")
        if call.status == 429 and retry_after is not None:
            header = response_header_schema(op, 429, "Retry-After") or fallback_retry_after["schema"]
            assert retry_after.isdigit(), f"{where}: Retry-After must be whole seconds, got {retry_after!r}"
            jsonschema.validate(int(retry_after), header)
