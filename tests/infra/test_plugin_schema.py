"""The plugin other languages use: Pulumi's component analyzer infers KeyrotEnvironment's schema, without a CLI.

`pulumi package add` runs the plugin (PulumiPlugin.yaml -> keyrot/pulumi/plugin) and generates an SDK from the
schema it serves; a TypeScript or Go program then sends camelCase inputs, which the plugin maps back to the args.
Both halves are exercised here with the installed Pulumi SDK's own analyzer and provider.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from infra_harness import REPO_ROOT, Deployment, run_component, stack_config
from pulumi.provider.experimental.analyzer import Analyzer, PropertyType
from pulumi.provider.experimental.component import ComponentProvider

import keyrot
from keyrot.pulumi.config import SETTING_KEYS, parse_config
from keyrot.pulumi.environment import COMPONENT_ONLY, VERBATIM_BLOCKS, KeyrotEnvironment, args_from_config

pytestmark = pytest.mark.timeout(180)

TOKEN = "keyrot:index:KeyrotEnvironment"
OUTPUTS = {
    "environment",
    "keySecretArns",
    "keySecretNames",
    "readerPolicyArns",
    "adminKeySecretArn",
    "oncallTopicArn",
    "rotationFunctionName",
    "monitorFunctionName",
    "kmsKeyArn",
    "dashboardUrl",
    "lambdaCodeSha256",
    "guardrailsFunctionName",
}


@pytest.fixture(scope="module")
def analysed() -> Any:
    return Analyzer("keyrot").analyze([KeyrotEnvironment])


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    provider = ComponentProvider([KeyrotEnvironment], "keyrot", version=keyrot.__version__)
    assert provider.schema is not None
    return json.loads(provider.schema)


def test_the_analyzer_infers_inputs_with_types_descriptions_and_what_is_required(analysed: Any) -> None:
    # GIVEN the schema Pulumi's analyzer infers from the component's annotations and docstrings
    component = analysed["component_definitions"]["KeyrotEnvironment"]
    inputs = component.inputs
    # THEN exactly environment, project and keys are required
    assert {name for name, p in inputs.items() if not p.optional} == {"environment", "openaiProjectId", "keys"}
    # AND every input says what it is for
    assert all(p.description and len(p.description) > 20 for p in inputs.values()), inputs
    # AND the types are the settings' types
    kinds = {name: p.type for name, p in inputs.items()}
    assert kinds["gracePeriodHours"] is PropertyType.INTEGER
    assert kinds["dailySpendLimitUsd"] is PropertyType.NUMBER
    assert kinds["dashboard"] is PropertyType.BOOLEAN
    assert kinds["oncallEmails"] is PropertyType.ARRAY and inputs["oncallEmails"].items.type is PropertyType.STRING
    assert inputs["keys"].items.ref == "#/types/keyrot:index:KeyArgs"
    # AND what shapes resource names is plain (known at preview); what may come from another resource is not
    assert all(inputs[name].plain for name in ("environment", "keys", "rotationSchedule", "monitorIntervalMinutes"))
    assert not inputs["oncallTopicArn"].plain and not inputs["existingKmsKeyArn"].plain
    # AND the guardrails block is a plain map, its fields the stack config's (OpenAI's limit names keep their '_')
    assert inputs["guardrails"].type is PropertyType.OBJECT and inputs["guardrails"].plain
    assert inputs["guardrails"].additional_properties.ref == "pulumi.json#/Any"


def test_a_key_is_a_named_type_whose_readers_may_be_outputs(analysed: Any) -> None:
    key = analysed["type_definitions"]["KeyArgs"]
    assert key.description and "secret" in key.description
    assert not key.properties["name"].optional and key.properties["name"].type is PropertyType.STRING
    readers = key.properties["readerRoleArns"]
    assert readers.optional and readers.type is PropertyType.ARRAY
    assert readers.items.type is PropertyType.STRING and not readers.items.plain  # Output[str] from the program


def test_the_outputs_are_names_and_arns_each_described(analysed: Any) -> None:
    outputs = analysed["component_definitions"]["KeyrotEnvironment"].outputs
    assert set(outputs) == OUTPUTS
    assert all(p.description for p in outputs.values())
    assert outputs["keySecretArns"].type is PropertyType.OBJECT
    assert outputs["dashboardUrl"].optional and not outputs["kmsKeyArn"].optional


def test_every_setting_of_the_stack_configuration_is_an_input(analysed: Any) -> None:
    inputs = analysed["component_definitions"]["KeyrotEnvironment"].inputs
    component_only = {"protect", "buildDir", "adoptStandaloneStack"}
    assert {name.replace("_", "") for name in COMPONENT_ONLY} == {n.lower() for n in component_only}
    assert set(inputs) == set(SETTING_KEYS) | component_only


def test_the_plugin_serves_that_schema_as_a_component(schema: dict[str, Any]) -> None:
    resource = schema["resources"][TOKEN]
    assert resource["isComponent"] is True
    assert set(resource["requiredInputs"]) == {"environment", "openaiProjectId", "keys"}
    assert set(resource["properties"]) == OUTPUTS
    assert schema["types"]["keyrot:index:KeyArgs"]["required"] == ["name"]
    assert schema["name"] == "keyrot" and schema["version"] == keyrot.__version__


def test_the_plugin_manifest_points_at_an_entry_point_that_shadows_nothing() -> None:
    manifest = yaml.safe_load((REPO_ROOT / "PulumiPlugin.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    entry = REPO_ROOT / manifest["main"]
    assert sorted(p.name for p in entry.iterdir() if p.name != "__pycache__") == ["__main__.py"]
    source = (entry / "__main__.py").read_text()
    assert "component_provider_host([KeyrotEnvironment]" in source


def _camel(value: Any) -> Any:
    """Args as a TypeScript program's SDK sends them: camelCase names, nested too; a map's own keys (the guardrails
    block's, written as in the stack config) are the program's and go as written."""
    if isinstance(value, dict):
        return {_name(k): v if k in VERBATIM_BLOCKS else _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _name(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


def _shape(d: Deployment) -> list[tuple[str, str, str]]:
    def plain(value: Any) -> str:
        return getattr(value, "path", None) or f"<{type(value).__name__}>"

    return sorted((r.type, r.name, json.dumps(r.inputs, sort_keys=True, default=plain)) for r in d.resources)


def test_a_typescript_programs_inputs_build_the_same_environment(tmp_path: Path) -> None:
    # GIVEN dev's settings as a program in another language sends them to the plugin (camelCase)
    raw = {k.split(":", 1)[1]: v for k, v in stack_config("dev").items() if k.startswith("keyrot:")}
    args = dict(args_from_config(parse_config(raw, stack="dev")))
    provider = ComponentProvider([KeyrotEnvironment], "keyrot", version=keyrot.__version__)
    definition = provider._component_defs["KeyrotEnvironment"]
    # WHEN the plugin maps them to the component's arguments, as its construct() does
    mapped = provider.map_inputs(_camel(args), definition)
    # THEN the component declares exactly what the Python args declare
    assert _shape(run_component(mapped)) == _shape(run_component(args))
