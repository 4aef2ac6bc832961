"""The IAM evaluator's set operators (ForAnyValue / ForAllValues over aws:TagKeys), with AWS's semantics.

The secrets' policies cap `keyrot:*` tags with them, and the rotation role may tag only `keyrot:promoted`: a wrong
reading here would let the tamper proof pass a policy AWS would not enforce (or the reverse).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.iam_eval import UnsupportedPolicyError, condition_holds

TAG_KEYS = st.lists(st.sampled_from(["keyrot:promoted", "keyrot:environment", "team", "cost-center"]), max_size=4)


def holds(operator: str, expected: Any, tag_keys: list[str] | None) -> bool:
    context = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    return condition_holds({operator: {"aws:TagKeys": expected}}, context)


@given(tag_keys=TAG_KEYS)
def test_for_any_value_holds_when_some_request_value_matches(tag_keys: list[str]) -> None:
    # GIVEN any set of tag keys in a request THEN ForAnyValue:StringLike keyrot:* holds iff one of them is keyrot's
    assert holds("ForAnyValue:StringLike", ["keyrot:*"], tag_keys) == any(k.startswith("keyrot:") for k in tag_keys)


@given(tag_keys=TAG_KEYS)
def test_for_all_values_holds_when_every_request_value_matches(tag_keys: list[str]) -> None:
    # GIVEN any set of tag keys THEN ForAllValues:StringEquals [promoted] holds iff nothing else is asked (vacuously
    # for none)
    assert holds("ForAllValues:StringEquals", ["keyrot:promoted"], tag_keys) == all(
        k == "keyrot:promoted" for k in tag_keys
    )


@given(tag_keys=TAG_KEYS)
def test_a_negated_operator_under_for_any_value_finds_one_value_outside(tag_keys: list[str]) -> None:
    # GIVEN any set of tag keys THEN ForAnyValue:StringNotEquals [promoted] holds iff some key is not the promotion tag
    assert holds("ForAnyValue:StringNotEquals", ["keyrot:promoted"], tag_keys) == any(
        k != "keyrot:promoted" for k in tag_keys
    )


def test_an_absent_key_fails_for_any_value_and_satisfies_for_all_values() -> None:
    # GIVEN a request without aws:TagKeys (not a tagging call)
    assert not holds("ForAnyValue:StringLike", ["keyrot:*"], None)
    assert holds("ForAllValues:StringEquals", ["keyrot:promoted"], None)


@pytest.mark.parametrize(
    "operator", ["ForSomeValues:StringEquals", "ForAnyValue:NumericEquals", "ForAnyValue:StringLikeIfExists"]
)
def test_an_unknown_set_operator_fails_loudly(operator: str) -> None:
    with pytest.raises(UnsupportedPolicyError):
        holds(operator, ["x"], ["x"])


def test_a_multivalued_key_under_a_plain_operator_fails_loudly() -> None:
    with pytest.raises(UnsupportedPolicyError):
        holds("StringEquals", ["x"], ["x", "y"])
