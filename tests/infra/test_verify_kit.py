"""`make verify-aws`: its refusal, its plan and its teardown, without AWS (the kit itself needs a real account).

Shaped like the user at the wrong terminal (credentials for production), a check that fails halfway, Ctrl-C in the
middle, and a key that ends up in an error message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from infra_harness import REPO_ROOT

from keyrot.pulumi.verify.__main__ import FLAG, main
from keyrot.pulumi.verify.checks import CLAIMS, Options, Tools, build_steps
from keyrot.pulumi.verify.plan import Claim, Outcome, Step, claim_lines, run_plan

pytestmark = pytest.mark.timeout(60)

IDENTITY = {"Account": "999988887777", "Arn": "arn:aws:sts::999988887777:assumed-role/prod-admin/alice"}
PLANTED = "sk-admin-" + "Q" * 40  # what a real admin key looks like, built here so the repository holds none


class FakeSession:
    region_name = "eu-west-1"

    def __init__(self, **_: Any) -> None:
        self.calls: list[str] = []

    def client(self, service: str) -> Any:
        session = self

        class Client:
            def get_caller_identity(self) -> dict[str, str]:
                session.calls.append(f"{service}:GetCallerIdentity")
                return IDENTITY

        return Client()


def steps_recording(order: list[str], fail: set[str] = frozenset(), raise_: type[BaseException] | None = None):
    def make(name: str):
        def run(ctx: dict[str, Any]) -> str:
            order.append(name)
            if raise_ is not None and name == "b":
                raise raise_()
            if name in fail:
                raise RuntimeError(f"{name} broke")
            return f"{name} done"

        return run

    return [
        Step("a", make("a"), claims=("one",)),
        Step("b", make("b"), claims=("two",), needs=("a",)),
        Step("c", make("c"), claims=("two",), needs=("b",)),
        Step("d", make("d"), claims=("three",)),
        Step("teardown", make("teardown"), claims=("gone",), teardown=True),
    ]


def test_without_the_flag_it_names_the_account_and_creates_nothing() -> None:
    # GIVEN a user whose credentials point at an account they did not expect
    lines: list[str] = []
    planned: list[Any] = []
    code = main(
        ["--openai-project", "proj_throwaway", "--notify-email", "me@example.com"],
        session_factory=FakeSession,
        plan_factory=lambda *a: planned.append(a),
        emit=lines.append,
        read_admin_key=lambda: pytest.fail("the admin key is not even asked for"),
    )
    # THEN it refuses (exit 2), after saying which account, identity, region and project it would use
    assert code == 2 and not planned
    assert (
        "AWS account 999988887777 (arn:aws:sts::999988887777:assumed-role/prod-admin/alice), region eu-west-1"
        in lines[0]
    )
    assert "proj_throwaway" in lines[0]
    assert FLAG in lines[1] and "nothing was created" in lines[1]


def test_with_the_flag_it_names_the_account_then_runs_the_plan() -> None:
    lines: list[str] = []
    order: list[str] = []

    def plan(*_: Any) -> Any:
        return (Claim("one", "claim one", "x"),), steps_recording(order), {}, tuple

    code = main(
        [FLAG, "--openai-project", "proj_throwaway", "--notify-email", "me@example.com"],
        session_factory=FakeSession,
        plan_factory=plan,
        emit=lines.append,
        read_admin_key=lambda: PLANTED,
    )
    assert code == 0 and order == ["a", "b", "c", "d", "teardown"]
    assert lines[0].startswith("AWS account 999988887777")
    assert "PASS        claim one" in lines


def test_a_bare_make_verify_aws_names_the_account_and_refuses() -> None:
    # GIVEN `make verify-aws` with no arguments at all
    lines: list[str] = []
    code = main([], session_factory=FakeSession, plan_factory=lambda *a: pytest.fail("planned"), emit=lines.append)
    # THEN it still says which account it would have used, and refuses
    assert code == 2 and "AWS account 999988887777" in lines[0] and FLAG in lines[1]


def test_with_the_flag_but_no_project_it_refuses_before_creating_anything() -> None:
    lines: list[str] = []
    code = main([FLAG], session_factory=FakeSession, plan_factory=lambda *a: pytest.fail("planned"), emit=lines.append)
    assert code == 2 and "Missing --openai-project, --notify-email" in lines[1]


def test_a_failed_step_skips_what_needs_it_and_teardown_still_runs() -> None:
    # GIVEN step b failing halfway
    order: list[str] = []
    steps = steps_recording(order, fail={"b"})
    lines: list[str] = []
    report = run_plan(steps, {}, emit=lines.append)
    # THEN c (which needs b) is skipped naming b, d (independent) runs, and the teardown runs last
    assert order == ["a", "b", "d", "teardown"]
    assert report.result("c").outcome is Outcome.SKIP and "b did not pass" in report.result("c").detail
    assert report.result("teardown").outcome is Outcome.PASS
    assert not report.passed
    # AND the claims read: one passed, two failed, three passed, gone passed
    claims = [Claim(k, k, "x") for k in ("one", "two", "three", "gone")]
    assert [line.split()[0] for line in claim_lines(claims, steps, report)] == ["PASS", "FAIL", "PASS", "PASS"]


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, SystemExit])
def test_an_interruption_tears_down_before_it_goes_on(interruption: type[BaseException]) -> None:
    # GIVEN Ctrl-C (or an exit) while step b runs
    order: list[str] = []
    with pytest.raises(interruption):
        run_plan(steps_recording(order, raise_=interruption), {}, emit=lambda _: None)
    # THEN the teardown ran before the interruption went on; nothing after b did
    assert order == ["a", "b", "teardown"]


def test_a_failing_teardown_fails_the_run() -> None:
    order: list[str] = []
    report = run_plan(steps_recording(order, fail={"teardown"}), {}, emit=lambda _: None)
    assert report.result("teardown").outcome is Outcome.FAIL and not report.passed


def test_no_key_reaches_the_output_even_inside_an_error() -> None:
    # GIVEN a step whose error message carries the admin key (and an unknown key-shaped token)
    def leaky(_: dict[str, Any]) -> str:
        raise RuntimeError(f"OpenAI refused {PLANTED} and sk-proj-{'z' * 30}")

    lines: list[str] = []
    run_plan([Step("leaky", leaky)], {}, emit=lines.append, secrets=lambda: [PLANTED])
    # THEN the line says what failed, with both redacted
    (line,) = lines
    assert line.startswith("FAIL        leaky: RuntimeError: OpenAI refused")
    assert PLANTED not in line and "z" * 30 not in line


def test_the_real_plan_covers_every_claim_and_always_tears_down(tmp_path: Path) -> None:
    # GIVEN the plan the kit really runs (built, not run)
    options = Options("proj_throwaway", "me@example.com", "eu-west-1", PLANTED)
    steps, held = build_steps(
        options, Tools(FakeSession(), tmp_path), environment="verify-abc123", administrator="arn:aws:iam::1:role/x"
    )
    # THEN every claim is checked by a step or says why it is not, the teardown is a teardown step and runs last,
    # and every prerequisite exists
    checked = {claim for step in steps for claim in step.claims}
    for claim in CLAIMS:
        assert claim.key in checked or claim.not_checked, claim.key
    assert [s.name for s in steps if s.teardown] == ["teardown"]
    names = [s.name for s in steps]
    assert all(need in names[: names.index(s.name)] for s in steps for need in s.needs)
    # AND the admin key is among what every line is scrubbed of
    assert PLANTED in held


def test_the_program_the_kit_deploys_declares_what_its_steps_check() -> None:
    # GIVEN the environment arguments of the program `make verify-aws` deploys, its config read as given
    import ast

    from infra_harness import run_component

    from keyrot.pulumi.verify.checks import PROGRAM

    class Config:
        def require(self, name: str) -> str:
            return {
                "environment": "verify-abc123",
                "openaiProjectId": "proj_throwaway",
                "notifyEmail": "me@example.com",
                "administrator": "arn:aws:iam::111111111111:role/x",
            }[name]

    (call,) = [
        n
        for n in ast.walk(ast.parse(PROGRAM))
        if isinstance(n, ast.Call) and ast.unparse(n.func) == "KeyrotEnvironment"
    ]
    args = eval(compile(ast.Expression(call.args[1]), "PROGRAM", "eval"), {"config": Config()})  # noqa: S307
    # WHEN it is declared under the mocks
    deployment = run_component(args, account="111111111111")
    # THEN it has the dashboard its `dashboard` step reads (off by default) and the alarm its `alarm` step sets
    (board,) = deployment.of_type("aws:cloudwatch/dashboard:Dashboard")
    assert "verify" in board.inputs["dashboardBody"]
    names = {a.inputs["name"] for a in deployment.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert "keyrot-verify-abc123-rotation-failed" in names


def test_every_claim_readme_lists_as_not_verified_has_a_line() -> None:
    # GIVEN README's "Not verified here" section
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("Not verified here", 1)[1].split("\n## ", 1)[0]
    bullets = [b for b in re.split(r"\n- ", section)[1:]]
    assert bullets, "README lost its Not verified here list"
    # THEN each bullet is answered by some claim of the kit
    for bullet in bullets:
        flat = " ".join(bullet.split())
        assert any(claim.readme_phrase in flat for claim in CLAIMS), flat[:80]


def test_make_verify_aws_is_never_run_by_make_test() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    recipe = makefile.split("\nverify-aws:", 1)[1].split("\n\n", 1)[0]
    assert "python -m keyrot.pulumi.verify $(VERIFY_ARGS)" in recipe
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "verify" not in test_recipe
