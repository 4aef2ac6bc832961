"""The tripwire's notifications: each names who acted and links a runbook section that exists; the "created by" line
rides only on the notification it belongs to, and only when that one goes out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from keyrot.monitor import notifications as notes
from keyrot.monitor.state import MonitorState
from keyrot.openai_admin import ProjectApiKey

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"
ACTOR = "API key key_stranger (eve@example.com)"
KEY = ProjectApiKey("key_x", "k", "sk-...wxyz", 1, None, "user", "user-eve", "Eve", "active")


def _anchors() -> set[str]:
    """The anchors GitHub makes of the runbook's section headings."""
    headings = re.findall(r"^## (.+)$", RUNBOOK.read_text(), re.M)
    return {re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-") for heading in headings}


TRIPWIRE_NOTES = [
    notes.key_created_outside("dev", "proj_1", "key_x", KEY, ACTOR, 1_800_000_000, "r"),
    notes.key_created_outside("dev", "proj_1", "key_x", None, ACTOR, 1_800_000_000, "r"),
    notes.account_created_outside("dev", "proj_1", "svc_acct_x", ACTOR, 1_800_000_000, "r"),
    notes.admin_key_changed_outside("dev", "audit_log-1", "created", None, ACTOR, 1_800_000_000, "r"),
    notes.managed_account_deleted("dev", "chat-backend", "current", "svc_acct_y", ACTOR, 1_800_000_000, "r"),
]


@pytest.mark.parametrize("note", TRIPWIRE_NOTES, ids=lambda note: note.subject)
def test_a_tripwire_notification_names_the_actor_and_an_existing_runbook_section(note: notes.Notification) -> None:
    assert ACTOR in note.body
    (anchor,) = re.findall(r"Runbook: r#([a-z0-9-]+)", note.body)
    assert anchor in _anchors()


@pytest.mark.parametrize(
    "note", [notes.audit_log_unreadable("dev", "HTTP 403", "r"), notes.admin_key_id_unknown("dev", "r")]
)
def test_the_once_only_notifications_link_an_existing_runbook_section(note: notes.Notification) -> None:
    (anchor,) = re.findall(r"Runbook: r#([a-z0-9-]+)", note.body)
    assert anchor in _anchors()


def test_the_created_by_line_links_an_existing_runbook_section() -> None:
    (anchor,) = re.findall(r"r#([a-z0-9-]+)", notes.created_by(ACTOR, 1_800_000_000, "r"))
    assert anchor in _anchors()


@dataclass
class Sns:
    published: list[dict[str, Any]] = field(default_factory=list)

    def publish(self, **message: Any) -> None:
        self.published.append(message)


def test_a_created_by_line_rides_only_on_its_notification_when_it_goes_out() -> None:
    # GIVEN a notifier asked to add who created key_x to key_x's unmanaged-key notification
    sns, state = Sns(), MonitorState(watermark=0)
    notifier = notes.Notifier(sns, "arn:topic", state, 3600, 1_800_000_000)
    notifier.annotate("unmanaged:key_x", "Created by eve")
    # WHEN key_x's and another key's notifications go out
    notifier.notify(notes.unmanaged_key("dev", "proj_1", "key_x", KEY, 0, "r"))
    notifier.notify(notes.unmanaged_key("dev", "proj_1", "key_z", None, 0, "r"))
    # THEN only key_x's carries the line, and it counts as delivered
    assert ["Created by eve" in message["Message"] for message in sns.published] == [True, False]
    assert notifier.delivered("unmanaged:key_x") and not notifier.delivered("orphan:key_x")


def test_a_suppressed_notification_does_not_count_as_delivered() -> None:
    # GIVEN key_x's notification already sent within the dedup period
    sns, state = Sns(), MonitorState(watermark=0)
    state.mark_notified("unmanaged:key_x", 1_800_003_600)
    notifier = notes.Notifier(sns, "arn:topic", state, 3600, 1_800_000_000)
    notifier.annotate("unmanaged:key_x", "Created by eve")
    # WHEN it would go out again THEN it does not, and the tripwire knows its line was not delivered
    assert not notifier.notify(notes.unmanaged_key("dev", "proj_1", "key_x", KEY, 0, "r"))
    assert sns.published == [] and not notifier.delivered("unmanaged:key_x")
