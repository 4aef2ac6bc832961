"""The rehearsal's audit-log tripwire chapter: a person makes an admin key in the OpenAI console, then with it a service
account and its key in the environment's project (OpenAI's admin API, as any script would); the monitor's next
scheduled run tells on-call, naming who did each, and says nothing about keyrot's own admin-key rotations."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import requests

from lab.demo.inbox import Notification, OnCallInbox
from lab.demo.narration import Narrator
from lab.demo.world import World

PERSON = "casey@example.com"
PERSON_ID = "user_casey"


def tripwire(
    story: Narrator,
    world: World,
    monitor: Callable[[dict[str, Any]], Any],
    inbox: OnCallInbox,
    keyrot_admin_ids: Iterable[str],
) -> list[Notification]:
    """One narrated step. Returns what on-call received (every notification since the inbox was last drained)."""
    with story.step("Someone makes an admin key by hand, and with it a key in the project: the audit-log tripwire"):
        console = world.openai_api.console.as_user(PERSON, user_id=PERSON_ID)
        admin_id, admin_value = console.create_admin_key(name="casey's script")
        account = _create_service_account(world, admin_value, "casey-bot")
        key_id = str(account["api_key"]["id"])
        story.say(
            f"{PERSON} creates admin key {admin_id} in the OpenAI dashboard, then with it service account "
            f"{account['id']} ({account['name']}) and its key {key_id} in project {world.project_id}"
        )
        report = monitor({})
        notes = inbox.drain()
        for note in notes:
            story.notification(note.subject, note.headline())
        audit = report.get("audit_log") or {}
        story.say(f"[dim]The monitor read {audit.get('read', 0)} audit-log entries since its last run.[/]")
        story.expect(
            "on-call was told an admin key was made outside keyrot, naming who made it",
            any("Admin key created outside keyrot" in n.subject and PERSON in n.message for n in notes),
            PERSON,
        )
        story.expect(
            "on-call was told about the key made with that admin key, naming the admin key",
            any(key_id in n.subject and f"Created by API key {admin_id}" in n.message for n in notes),
            f"{key_id}, created by {admin_id}",
        )
        own = sorted(set(keyrot_admin_ids))
        story.expect(
            "keyrot's own admin-key rotations and cleanup were not reported as someone else's",
            bool(own) and not any(key in n.subject + n.message for n in notes for key in own),
            f"{len(own)} admin keys of keyrot's",
        )
        story.expect(
            "no notification contains key material",
            not any(value in json.dumps([n.raw for n in notes]) for value in world.openai_api.state.minted_values),
        )
    return notes


def _create_service_account(world: World, admin_key: str, name: str) -> dict[str, Any]:
    """POST /organization/projects/{id}/service_accounts with `admin_key`: the account and its key (OpenAI's answer)."""
    response = requests.post(
        f"{world.openai_api.base_url}/organization/projects/{world.project_id}/service_accounts",
        json={"name": name},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=10,
    )
    response.raise_for_status()
    return dict(response.json())
