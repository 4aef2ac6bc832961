"""examples/existing-program: a platform program with an application role that adds keyrot, run under the mocks.

Run like the reference program (runpy on the directory, as the Pulumi language host does), with the archive and
wheels in the default cache a user's machine would use.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from infra_harness import REPO_ROOT

from keyrot import constants as c
from lab.pulumi_program import RecordingMocks, run_program

pytestmark = pytest.mark.timeout(180)

EXAMPLE = REPO_ROOT / "examples" / "existing-program"
ACCOUNT = "444444444444"
CONFIG = {
    "aws:region": "eu-west-1",
    "platform:openaiProjectId": "proj_platformExample1",
    "platform:oncallEmail": "platform-oncall@example.com",
}


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # The user's cache (~/.cache/keyrot), seeded with the pinned wheels so the test needs no network.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    shutil.copytree(REPO_ROOT / "build" / "wheels", tmp_path / "keyrot" / "wheels")
    mocks = RecordingMocks(ACCOUNT, "eu-west-1")
    return run_program("dev", CONFIG, mocks, account=ACCOUNT, program=EXAMPLE, project="platform")


def test_the_example_adds_keyrot_next_to_its_own_resources(deployment) -> None:
    # GIVEN the example program run under the mocks
    (app_role,) = deployment.find("aws:iam/role:Role", lambda r: r.name == "chat-backend")
    (environment,) = deployment.of_type("keyrot:index:KeyrotEnvironment")
    # THEN its own role is untouched at the top of the stack, and keyrot's resources all sit in one component
    assert app_role.inputs["name"] == "chat-backend-dev"
    assert environment.name == "openai-keys"
    top_level = [r for r in deployment.resources if r.parent.endswith("::pulumi:pulumi:Stack::platform-dev")]
    assert {r.name for r in top_level} == {"chat-backend", "openai-keys"}


def test_the_application_role_given_as_an_output_reads_its_key(deployment) -> None:
    (app_role,) = deployment.find("aws:iam/role:Role", lambda r: r.name == "chat-backend")
    (attachment,) = deployment.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    (reader,) = deployment.of_type("aws:iam/policy:Policy")
    # THEN the key's reader policy is attached to the application's role, by name
    assert (attachment.inputs["role"], attachment.inputs["policyArn"]) == ("chat-backend-dev", reader.outputs["arn"])
    # AND the secret's policy lets that role read
    secret_arn = deployment.outputs["chatBackendKeySecretArn"]
    (policy,) = deployment.find(
        "aws:secretsmanager/secretPolicy:SecretPolicy", lambda r: r.inputs["secretArn"] == secret_arn
    )
    readers = json.loads(policy.inputs["policy"])["Statement"][0]["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    assert app_role.outputs["arn"] in readers


def test_the_example_is_an_environment_of_its_own_account_and_region(deployment) -> None:
    (secret,) = deployment.find("aws:secretsmanager/secret:Secret", lambda r: c.TAG_KEY_NAME in r.inputs["tags"])
    assert secret.inputs["name"] == c.managed_secret_name("dev", "chat-backend")
    assert deployment.outputs["chatBackendKeySecretArn"].startswith(f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:")
    assert deployment.outputs["keyrotDashboard"].startswith("https://eu-west-1.console.aws.amazon.com/")
    # AND the Lambda archive was built in the user's cache, from the installed package
    (function,) = deployment.find("aws:lambda/function:Function", lambda r: r.inputs["name"] == "keyrot-dev-rotation")
    assert Path(function.inputs["code"].path).parent.name == "keyrot"
