"""The declared document the deployment hands the functions: canonical, free of the project id and of anything
secret, and trusted only with the digest the deployment declared (someone who can write the SSM parameter or invoke
the function with an input of their own cannot change the project's guardrails)."""

from __future__ import annotations

import json

import pytest

from keyrot.guardrails import (
    DeclaredStateError,
    document_digest,
    document_json,
    load_document,
    parse_guardrails,
    to_document,
)

BLOCK = {
    "rateLimits": {"gpt-4.1": {"max_requests_per_1_minute": 500}},
    "spendLimitUsd": 99.5,
    "spendAlerts": [{"thresholdUsd": 50, "recipients": ["b@example.com", "a@example.com"]}],
    "models": {"deny": ["o3"]},
    "enforce": "restore",
}


def test_the_document_reads_back_as_the_same_declared_guardrails() -> None:
    # GIVEN a validated block
    declared = parse_guardrails(BLOCK)
    text = document_json(declared)
    # WHEN the function loads the document with the deployment's digest
    # THEN it has what was declared
    assert load_document(text, expected_digest=document_digest(text)) == declared


def test_the_document_is_the_block_in_canonical_form_with_a_version() -> None:
    document = to_document(parse_guardrails(BLOCK))
    assert document == {
        "version": 1,
        "enforce": "restore",
        "rateLimits": {"gpt-4.1": {"max_requests_per_1_minute": 500}},
        "spendLimitUsd": 99.5,
        "spendAlerts": [{"thresholdUsd": 50, "recipients": ["a@example.com", "b@example.com"]}],
        "models": {"deny": ["o3"]},
    }


def test_the_digest_does_not_depend_on_key_order_or_spacing() -> None:
    document = to_document(parse_guardrails(BLOCK))
    shuffled = json.dumps(dict(reversed(list(document.items()))), indent=2)
    written = document_json(parse_guardrails(BLOCK))
    assert document_digest(shuffled) == document_digest(document) == document_digest(written)


def test_a_document_other_than_the_declared_one_is_refused_before_it_is_read() -> None:
    # GIVEN the deployment declared a spend limit of $99.50, and someone wrote a document raising it
    declared_text = document_json(parse_guardrails(BLOCK))
    forged = json.loads(declared_text) | {"spendLimitUsd": 1_000_000}
    # WHEN the function is handed the forged document
    with pytest.raises(DeclaredStateError) as caught:
        load_document(forged, expected_digest=document_digest(declared_text))
    # THEN it refuses, saying it was changed outside `pulumi up` and that nothing was applied
    assert "changed outside `pulumi up`" in str(caught.value) and "nothing was applied" in str(caught.value)


def test_a_document_of_another_version_is_refused_even_with_its_own_digest() -> None:
    document = to_document(parse_guardrails(BLOCK)) | {"version": 2}
    with pytest.raises(DeclaredStateError, match="version 2"):
        load_document(document, expected_digest=document_digest(document))


def test_an_invalid_document_with_a_matching_digest_is_refused_as_invalid() -> None:
    document = {"version": 1, "enforce": "notify", "spendLimitUsd": -1}
    with pytest.raises(DeclaredStateError, match=r"keyrot:guardrails\.spendLimitUsd"):
        load_document(document, expected_digest=document_digest(document))


@pytest.mark.parametrize("text", ["not json", "[1]", '"text"', "{" * 5000])
def test_a_document_that_is_not_a_json_object_is_refused(text: str) -> None:
    with pytest.raises(DeclaredStateError):
        load_document(text, expected_digest="0" * 64)


def test_the_document_holds_neither_the_project_nor_anything_secret() -> None:
    text = document_json(parse_guardrails(BLOCK))
    assert "proj_" not in text and "sk-" not in text
