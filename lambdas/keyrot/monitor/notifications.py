"""Short, actionable notifications for the on-call engineer, published to SNS and de-duplicated.

Every text says what happened, where, what to do first and which runbook section to read. Texts are scrubbed
before they leave: no key material, ever (keys appear only as key_... ids and OpenAI's redacted value).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keyrot.aws.errors import aws_errors
from keyrot.monitor.state import MonitorState
from keyrot.openai_admin import ProjectApiKey
from keyrot.redaction import scrub

logger = logging.getLogger(__name__)

_SUBJECT_LIMIT = 100  # SNS subject: at most 100 printable ASCII characters


@dataclass(frozen=True)
class Notification:
    dedup_key: str
    subject: str
    body: str


def _when(moment: int | None) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def _text(environment: str, title: str, what: str, steps: list[str], runbook: str) -> tuple[str, str]:
    subject = f"[keyrot {environment}] {title}"
    numbered = "\n".join(f"  {i}. {step}" for i, step in enumerate(steps, start=1))
    body = (
        f"{title}\n\nWhat happened: {what}\nEnvironment: {environment}\n\nDo first:\n{numbered}\n\nRunbook: {runbook}\n"
    )
    return subject, body


def unmanaged_key(
    environment: str, project_id: str, key_id: str, key: ProjectApiKey | None, requests: int, runbook_url: str
) -> Notification:
    owner = "unknown owner (the key is not listed in the project)"
    if key is not None:
        who = key.owner_name or key.owner_id or "unnamed"
        owner = f"{key.owner_type} {who}, shown as {key.redacted_value or 'n/a'}, last used {_when(key.last_used_at)}"
    usage = f"it made {requests} request(s) since the last check" if requests else "no usage seen yet"
    subject, body = _text(
        environment,
        f"Unmanaged OpenAI key {key_id}",
        f"OpenAI project {project_id} has key {key_id} ({owner}) that keyrot did not mint; {usage}.",
        [
            f"Find the owner: keyrot audit --env {environment}",
            "If nobody claims it, delete it in the OpenAI dashboard (Project > API keys).",
            "If an application needs it, move that application to a keyrot-managed key.",
        ],
        f"{runbook_url}#unmanaged-key-requests",
    )
    return Notification(f"unmanaged:{key_id}", subject, body)


def retired_key_in_use(
    environment: str, key_name: str, key_id: str, role: str, requests: int, last_active: int, runbook_url: str
) -> Notification:
    state = "was revoked" if role == "revoked" else "is past its grace period"
    subject, body = _text(
        environment,
        f"Retired key of {key_name} still in use",
        f"Key {key_id} of {key_name} {state} but made {requests} request(s), last at {_when(last_active)}. "
        "Some process has not picked up the new key.",
        [
            f"Compare with the current key id (keyrot status --env {environment}): every process serving {key_id} "
            "(KeyProvider.key_id) has not refreshed.",
            "Restart or redeploy the applications reading this secret (KeyProvider refreshes on 401).",
            f"If the key leaked, revoke it now: keyrot revoke-previous --env {environment} --key {key_name}",
        ],
        f"{runbook_url}#retired-key-requests",
    )
    return Notification(f"retired:{key_id}", subject, body)


def in_use_at_max_grace(
    environment: str, key_name: str, key_id: str, last_used: int | None, policy: str, runbook_url: str
) -> Notification:
    outcome = (
        "keyrot revoked it anyway (policy: revoke)" if policy == "revoke" else "keyrot is keeping it (policy: keep)"
    )
    subject, body = _text(
        environment,
        f"Previous key of {key_name} used past maximum grace",
        f"Key {key_id} of {key_name} was still used at {_when(last_used)}, past the maximum grace period; {outcome}.",
        [
            "Find the application still using the old key and restart it.",
            f"Check the new key works for it: keyrot doctor --env {environment} --key {key_name}",
            f"When it is idle, revoke: keyrot revoke-previous --env {environment} --key {key_name}",
        ],
        f"{runbook_url}#retired-key-requests",
    )
    return Notification(f"max-grace:{key_id}", subject, body)


def revocation_failed(
    environment: str, key_name: str, key_id: str, error: BaseException, runbook_url: str
) -> Notification:
    subject, body = _text(
        environment,
        f"Revoking the previous key of {key_name} failed",
        f"keyrot could not revoke key {key_id} of {key_name}: {type(error).__name__}: {error}. "
        "It retries on every monitor run until it succeeds.",
        [
            f"Check OpenAI and the admin key: keyrot doctor --env {environment} --key {key_name}",
            f"Retry by hand: keyrot revoke-previous --env {environment} --key {key_name}",
            "If OpenAI keeps the key alive, delete its service account in the OpenAI dashboard.",
        ],
        f"{runbook_url}#revocation-failed",
    )
    return Notification(f"revocation-failed:{key_id}", subject, body)


def malformed_secret(environment: str, secret_name: str, problem: str, runbook_url: str) -> Notification:
    subject, body = _text(
        environment,
        f"Secret {secret_name} is malformed",
        f"keyrot cannot read {secret_name}: {problem}. Its usage cannot be attributed and rotation may fail.",
        [
            f"Inspect labels (not values): aws secretsmanager describe-secret --secret-id {secret_name}",
            f"Rotate to write a fresh value: keyrot rotate --env {environment} --key <name>",
            "If someone put a value by hand, remove that version's labels.",
        ],
        f"{runbook_url}#secret-malformed",
    )
    return Notification(f"malformed:{secret_name}", subject, body)


def orphaned_account(environment: str, key_id: str, account_name: str, runbook_url: str) -> Notification:
    subject, body = _text(
        environment,
        f"Orphaned keyrot service account ({key_id})",
        f"Service account {account_name} was minted by keyrot but no secret refers to its key {key_id}.",
        [
            f"List drift: keyrot audit --env {environment}",
            "If no rotation is in progress, delete the service account in the OpenAI dashboard.",
            "Check recent rotation failures in the rotation Lambda's logs.",
        ],
        f"{runbook_url}#orphaned-service-account",
    )
    return Notification(f"orphan:{key_id}", subject, body)


def usage_gap(environment: str, skipped_from: int, skipped_to: int, runbook_url: str) -> Notification:
    subject, body = _text(
        environment,
        "Usage metrics gap",
        f"Usage between {_when(skipped_from)} and {_when(skipped_to)} is older than CloudWatch accepts and "
        "was not published.",
        [
            "Find why the monitor did not run (its Errors alarm, logs).",
            "Read that period in the OpenAI usage dashboard if needed.",
            "No action is needed for later usage.",
        ],
        f"{runbook_url}#monitor-not-running",
    )
    return Notification(f"gap:{skipped_from}", subject, body)


def usage_set_aside(environment: str, kind: str, bucket: int, problem: str, runbook_url: str) -> Notification:
    subject, body = _text(
        environment,
        f"Usage of {_when(bucket)} set aside",
        f"OpenAI's {kind} usage for the minute {_when(bucket)} failed keyrot's checks on every run for a while "
        f"({problem}). keyrot set that minute aside and published all other usage; this minute's {kind} usage is "
        "not in CloudWatch.",
        [
            "Look at that minute in the OpenAI usage dashboard (Usage, group by API key) for anything unusual.",
            "Once OpenAI answers properly, replay it: invoke the monitor function with the input "
            '{"setAside": "replay"}.',
            'If it never will, drop it (the minute stays unpublished): invoke it with {"setAside": "drop"}.',
        ],
        f"{runbook_url}#usage-bucket-set-aside",
    )
    return Notification(f"set-aside:{kind}:{bucket}", subject, body)


# --- the audit-log tripwire (monitor/tripwire.py) ------------------------------------------------------------


def created_by(actor: str, at: int, runbook_url: str) -> str:
    """The line the tripwire adds to an unmanaged-key (or orphan) notification: who created the key."""
    return f"Created by {actor} at {_when(at)}, as OpenAI's audit log says ({runbook_url}#key-created-outside-keyrot)."


def key_created_outside(
    environment: str, project_id: str, key_id: str, key: ProjectApiKey | None, actor: str, at: int, runbook_url: str
) -> Notification:
    if key is None:
        what = "OpenAI no longer lists it (it was deleted since, or is being)"
    else:
        owner = key.owner_name or key.owner_id or "unnamed"
        what = f"it belongs to {key.owner_type} {owner} and shows as {key.redacted_value or 'n/a'}"
    subject, body = _text(
        environment,
        f"Key {key_id} created outside keyrot",
        f"{actor} created key {key_id} in OpenAI project {project_id} at {_when(at)}; {what}. keyrot did not mint it.",
        [
            f"Ask {actor} why; if nobody can say, treat the creator's credentials as leaked.",
            f"See the project's keys and who owns them: keyrot audit --env {environment}",
            "If nobody needs the key, delete it (its service account, for a service-account key) in the OpenAI "
            "dashboard.",
        ],
        f"{runbook_url}#key-created-outside-keyrot",
    )
    return Notification(f"tripwire-key:{key_id}", subject, body)


def account_created_outside(
    environment: str, project_id: str, account_id: str, actor: str, at: int, runbook_url: str
) -> Notification:
    subject, body = _text(
        environment,
        f"Service account {account_id} created outside keyrot",
        f"{actor} created service account {account_id} in OpenAI project {project_id} at {_when(at)}. keyrot did "
        "not create it; keys can be added to it later.",
        [
            f"Ask {actor} why; if nobody can say, treat the creator's credentials as leaked.",
            f"List the project's service accounts and keys: keyrot audit --env {environment}",
            "If nobody needs it, delete the service account in the OpenAI dashboard (Project > Service accounts).",
        ],
        f"{runbook_url}#key-created-outside-keyrot",
    )
    return Notification(f"tripwire-account:{account_id}", subject, body)


def admin_key_changed_outside(
    environment: str, event_id: str, action: str, key_id: str | None, actor: str, at: int, runbook_url: str
) -> Notification:
    which = f"admin key {key_id}" if key_id else "an admin key (OpenAI's audit log does not say which)"
    subject, body = _text(
        environment,
        f"Admin key {action} outside keyrot",
        f"{actor} {action} {which} of the organization at {_when(at)}. An admin key can do everything keyrot does, "
        "in every project.",
        [
            f"Ask {actor} why; an admin key made by hand should be on record with its owner.",
            "List the organization's admin keys (OpenAI dashboard, Organization > Admin keys) and delete any nobody "
            f"claims; keyrot's own: keyrot status --env {environment}",
            "If the actor is an admin key nobody recognises, follow the leaked admin key steps in docs/security.md.",
        ],
        f"{runbook_url}#admin-key-changed-outside-keyrot",
    )
    return Notification(f"tripwire-admin:{event_id}", subject, body)


def managed_account_deleted(
    environment: str, key_name: str, role: str, resource_id: str, actor: str, at: int, runbook_url: str
) -> Notification:
    effect = (
        "Applications using the current key get 401 until a new key is in place."
        if role in ("current", "pending")
        else "It was the previous key, so applications not yet on the current key lost access."
    )
    subject, body = _text(
        environment,
        f"keyrot's {role} key of {key_name} deleted outside keyrot",
        f"{actor} deleted {resource_id} at {_when(at)}: it holds the {role} key of {key_name}, which keyrot manages. "
        f"{effect}",
        [
            f"Rotate now to mint a working key: keyrot rotate --env {environment} --key {key_name}",
            f"Ask {actor} why; if nobody can say, treat the creator's credentials as leaked.",
            f"Check the key in use works: keyrot doctor --env {environment} --key {key_name}",
        ],
        f"{runbook_url}#keyrot-account-deleted-outside-keyrot",
    )
    return Notification(f"tripwire-deleted:{resource_id}", subject, body)


def audit_log_unreadable(environment: str, problem: str, runbook_url: str) -> Notification:
    subject, body = _text(
        environment,
        "OpenAI audit log unreadable: tripwire off",
        f"keyrot cannot read the organization's audit log ({problem}). Until it can, it does not see keys, service "
        "accounts or admin keys created or deleted by others, and it lists the project's keys in full on every run. "
        "Everything else works. This is said once; keyrot says nothing more until the log is readable again.",
        [
            "An organization owner turns audit logging on: OpenAI dashboard, Organization settings > Data controls "
            "(it cannot be turned off again).",
            "If it is on, the admin key may lack the audit-log read permission (api.audit_log.read): put one that "
            f"has it with keyrot admin-key set --env {environment}",
            f"Confirm: keyrot doctor --env {environment} --key <name> shows 'OpenAI audit log' ok; the next monitor "
            "run starts reading it from then on.",
        ],
        f"{runbook_url}#audit-log-unreadable",
    )
    return Notification("audit-log-unreadable", subject, body)


def admin_key_id_unknown(environment: str, runbook_url: str) -> Notification:
    subject, body = _text(
        environment,
        "keyrot cannot recognise its own admin key in the audit log",
        "The admin-key secret holds a key without its id (it was stored without --key-id), and the organization has "
        "other admin keys, so keyrot cannot tell its own actions from theirs. Until it can, the tripwire judges only "
        "actions people take in the console. This is said once.",
        [
            f"Store the key with its id: keyrot admin-key set --env {environment} --key-id key_... (the id is in "
            "the OpenAI dashboard, Organization > Admin keys).",
            f"Or rotate the admin key (keyrot records the id of every admin key it mints): keyrot rotate --admin "
            f"--env {environment}",
            "Nothing else is affected.",
        ],
        f"{runbook_url}#admin-key-id-unknown",
    )
    return Notification("admin-key-id-unknown", subject, body)


@dataclass
class Notifier:
    """Publishes notifications, skipping any whose dedup key is still active in the monitor state."""

    sns: Any
    topic_arn: str
    state: MonitorState
    dedup_seconds: int
    now: int
    sent: list[Notification] = field(default_factory=list)
    suppressed: list[Notification] = field(default_factory=list)
    # dedup key -> lines added to that notification's body if it goes out this run (the tripwire's "created by")
    annotations: dict[str, list[str]] = field(default_factory=dict)

    def annotate(self, dedup_key: str, line: str) -> None:
        """Add `line` to the notification of `dedup_key`, should one be sent by this notifier."""
        self.annotations.setdefault(dedup_key, []).append(line)

    def delivered(self, dedup_key: str) -> bool:
        """Whether this notifier sent the notification of `dedup_key` (with its annotations)."""
        return any(sent.dedup_key == dedup_key for sent in self.sent)

    def notify(self, notification: Notification) -> bool:
        if self.state.recently_notified(notification.dedup_key, self.now):
            self.suppressed.append(notification)
            return False
        subject = scrub(notification.subject).encode("ascii", "replace").decode()[:_SUBJECT_LIMIT]
        extra = self.annotations.get(notification.dedup_key)
        body = notification.body + "".join(f"\n{line}\n" for line in extra) if extra else notification.body
        with aws_errors("Publish"):
            self.sns.publish(TopicArn=self.topic_arn, Subject=subject, Message=scrub(body))
        self.state.mark_notified(notification.dedup_key, self.now + self.dedup_seconds)
        self.sent.append(notification)
        logger.info("notified on-call: %s", subject)
        return True
