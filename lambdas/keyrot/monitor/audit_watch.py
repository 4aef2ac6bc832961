"""The monitor's use of OpenAI's audit log: the project's keys kept up to date from it, and the tripwire.

Two steps of one run, around the usage and the findings:

1. `project_keys(run)`, in the inventory part: read both audit-log streams since the state's cursor (keys and
   service accounts; the tenant-scoped admin-key events), bring the in-memory key inventory up to date from them
   (key_cache.py: a GET per key an event names, nothing when nothing happened) or list the project's keys in full
   (no usable copy in this container, the audit log unreadable, an event too vague to apply, once a day), then judge
   the events (tripwire.py) and ask the notifier to add "created by ..." to the unmanaged-key notifications the
   findings are about to send. A failure of this step's own calls does not fail the inventory: the keys are listed
   instead, and the failure is the tripwire part's.
2. `watch_of(run).commit()`, the tripwire part (after the findings): tell on-call what the findings did not already
   say, then advance the cursor in the state and save it. The cursor advances only after the notifications for the
   events it covers went out (or were already sent), so a run that dies before reads the same events again; the
   notifications' dedup marks, saved with the cursor, keep a repeat to the case where the process died between
   SNS's answer and that write.

When the audit log cannot be read (logging off, or the admin key may not read it), on-call is told once, the keys are
listed in full on every run, and everything else goes on. See docs/architecture.md#audit-log.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Protocol

from keyrot import metric_names as m
from keyrot.constants import STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS, STAGE_REVOKED
from keyrot.errors import KeyrotError
from keyrot.inventory import OpenAIListing, SecretRecord, promotion_time, read_openai
from keyrot.monitor import key_cache
from keyrot.monitor import notifications as notes
from keyrot.monitor.audit_stream import StreamRead, read_stream
from keyrot.monitor.key_cache import KeyCopy
from keyrot.monitor.keyrot_actors import KeyrotActors, keyrot_actors, keyrot_history
from keyrot.monitor.publisher import Datum
from keyrot.monitor.state import AuditState
from keyrot.monitor.tripwire import (
    ADMIN_KEY_EVENTS,
    KEY_EVENTS,
    Judgement,
    Lookups,
    ManagedKey,
    TripwireKind,
    judge,
)
from keyrot.openai_admin import AuditEvent, AuditLogUnavailableError, MalformedAuditEvent, ProjectApiKey
from keyrot.openai_admin.audit_log import AuditEntry
from keyrot.openai_admin.session import admin_errors
from keyrot.redaction import scrub

logger = logging.getLogger(__name__)

# The project's keys are listed in full at least this often, whatever the audit log said (a reconciliation).
RECONCILE_SECONDS = 86400
# More GETs than this in one run, and a full listing is the simpler answer.
MAX_REFRESHES = 50


class MonitorRunView(Protocol):
    """What this module uses of keyrot.monitor.run.MonitorRun."""

    deps: Any
    settings: Any
    state: Any
    store: Any
    notifier: Any
    publisher: Any
    now: int
    records: list[SecretRecord] | None


@dataclass
class WatchSummary:
    """What the audit log gave this run, for the run's report and log line."""

    read: int = 0  # entries delivered (both streams)
    listing: str | None = None  # why the keys were listed in full this run (None: kept up to date from the log)
    refreshed: int = 0  # keys read again (one GET each)
    reconciled_drift: int = 0  # keys a full listing found different from the kept copy (0: the copy was right)
    findings: list[str] = field(default_factory=list)  # "<kind> <resource> by <actor>"
    notified: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # entries not judged, by reason
    elsewhere: int = 0  # events of other projects
    unverified: int = 0  # API-key actions not judged (keyrot's own admin key id unknown)
    unreadable: str | None = None  # why the audit log could not be read


_watches: weakref.WeakKeyDictionary[Any, AuditWatch] = weakref.WeakKeyDictionary()


def watch_of(run: MonitorRunView) -> AuditWatch:
    """The audit watch of `run` (made on first use)."""
    watch = _watches.get(run)
    if watch is None:
        watch = _watches[run] = AuditWatch(run)
    return watch


def project_keys(run: MonitorRunView) -> list[ProjectApiKey]:
    """Every key of the environment's project, as OpenAI has it now: from the audit log when the kept copy allows,
    else listed in full. Raises only when the full listing fails (the inventory's failure)."""
    return watch_of(run).keys()


def project_listing(run: MonitorRunView) -> OpenAIListing:
    """`project_keys(run)` as keyrot.inventory.classify takes it (service accounts not read)."""
    return OpenAIListing.of(None, project_keys(run))


class AuditWatch:
    """The audit log's part in one monitor run (see the module docstring)."""

    def __init__(self, run: MonitorRunView) -> None:
        self.run = run
        self.summary = WatchSummary()
        self.copy: KeyCopy | None = None
        self.reads: tuple[StreamRead, StreamRead] | None = None
        self.unreadable: AuditLogUnavailableError | None = None
        self.error: KeyrotError | None = None  # a failure of this step's own calls: the tripwire part raises it
        self.judgement: Judgement | None = None
        self.actors: KeyrotActors | None = None
        self.listed_now = False
        self._accounts: set[str] | None = None
        self._previous: KeyCopy | None = None  # the kept copy a daily reconciliation compares with its listing

    @property
    def _audit(self) -> AuditState:
        return self.run.state.audit or AuditState()

    @property
    def _scope(self) -> str:
        return str(self.run.settings.state_parameter)

    # --- step 1: the keys (inventory part) ---------------------------------------------------------------------

    def keys(self) -> list[ProjectApiKey]:
        if self.copy is None:
            self._read()
            copy = self._kept_copy()
            if copy is None:
                copy = self._list()
            self.copy = copy
            key_cache.keep(self._scope, copy)
            if self.reads is not None and self.error is None and self.run.records is not None:
                self._judge()
        return list(self.copy.keys.values())

    def _read(self) -> None:
        audit, now, admin = self._audit, self.run.now, self.run.deps.admin
        try:
            with admin_errors():
                try:
                    # A first read (or one after the cursor was lost) starts at this second for the keys (a key
                    # made in the second the keys are listed may be missing from the listing) and after it for the
                    # admin keys (what happened before the monitor started watching is not news)
                    keys = read_stream(admin, audit.keys, since=now, event_types=KEY_EVENTS)
                    admin_keys = read_stream(
                        admin, audit.admin, since=now + 1, event_types=ADMIN_KEY_EVENTS, tenant_only=True
                    )
                except AuditLogUnavailableError as exc:
                    self.unreadable = exc
                    self.summary.unreadable = scrub(str(exc))
                    return
        except KeyrotError as exc:
            self.error = exc
            return
        self.reads = (keys, admin_keys)
        self.summary.read = len(keys.entries) + len(admin_keys.entries)

    def _kept_copy(self) -> KeyCopy | None:
        """The copy kept in this container, brought up to date from the events; None when the keys must be listed
        (and why, in the summary)."""
        audit, now = self._audit, self.run.now
        reason = None
        copy = key_cache.cached(self._scope, self.run.settings.project_id, audit.generation)
        if self.reads is None:
            reason = "the audit log could not be read"
        elif audit.keys is None:
            reason = "first read of the audit log (or its cursor was lost)"
        elif copy is None:
            reason = "no copy of the keys in this container"
        elif audit.listed_at is None or not 0 <= now - audit.listed_at < RECONCILE_SECONDS:
            reason = "daily reconciliation"
        if reason is None and copy is not None and self.reads is not None:
            try:
                with admin_errors():
                    reason = self._apply(copy, self.reads[0].entries) or self._refresh_held(copy)
            except KeyrotError as exc:
                self.error, reason = exc, f"a key could not be read again ({type(exc).__name__})"
            self.summary.refreshed = copy.calls
        if reason is None:
            return copy
        self.summary.listing = reason
        if copy is not None and reason == "daily reconciliation":
            self._previous = copy  # compared with the listing
        return None

    def _apply(self, copy: KeyCopy, entries: tuple[AuditEntry, ...]) -> str | None:
        """Apply the keys stream's events to `copy`; a reason to list in full instead, or None."""
        admin = self.run.deps.admin
        for entry in entries:
            if isinstance(entry, MalformedAuditEvent):
                return "an audit-log entry could not be read"
            if not isinstance(entry, AuditEvent):
                continue
            resource = entry.resource_id
            if resource is None and entry.type != "service_account.created":
                return f"a {entry.type} event without the id of what changed"
            if copy.calls >= MAX_REFRESHES:
                return f"more than {MAX_REFRESHES} keys changed"
            if entry.type in ("api_key.created", "api_key.updated") and resource not in copy.absent:
                copy.refresh(admin, resource or "")
            elif entry.type == "api_key.deleted":
                copy.drop(resource or "")
            elif entry.type == "service_account.deleted":
                copy.drop_account(resource or "")
            elif entry.type == "service_account.updated":
                for key in copy.of_account(resource or ""):
                    copy.refresh(admin, key.id)
        return None

    def _refresh_held(self, copy: KeyCopy) -> str | None:
        """Read again the keys the managed secrets hold that the copy lacks (an event OpenAI lists late, or never:
        the spec does not promise one for the key a service account is created with), and the previous keys past
        their grace period (the janitor decides on their last use)."""
        admin, now = self.run.deps.admin, self.run.now
        grace = int(self.run.settings.grace_period_seconds)
        for record in self.run.records or ():
            promoted = promotion_time(record)
            for version in record.versions.values():
                stages = set(version.stages)
                if version.key is None or STAGE_REVOKED in stages or not stages & _HELD:
                    continue
                key_id = version.key.key_id
                missing = key_id not in copy.keys and key_id not in copy.absent
                past_grace = (
                    STAGE_PREVIOUS in stages
                    and STAGE_CURRENT not in stages
                    and key_id in copy.keys
                    and promoted is not None
                    and now - promoted.timestamp() >= grace
                )
                if missing or past_grace:
                    if copy.calls >= MAX_REFRESHES:
                        return f"more than {MAX_REFRESHES} keys to read again"
                    copy.refresh(admin, key_id)
        return None

    def _list(self) -> KeyCopy:
        """List the project's keys in full (raises: the inventory's failure)."""
        settings = self.run.settings
        listing = read_openai(self.run.deps.admin, [settings.project_id], accounts=False, keys=True)
        copy = KeyCopy.listed(settings.project_id, listing.keys or ())
        self.listed_now = True
        previous = self._previous
        if previous is not None:
            changed = {e.resource_id for e in self._key_events() if e.resource_id}
            drift = (set(previous.keys) ^ set(copy.keys)) - changed
            self.summary.reconciled_drift = len(drift)
            if drift:
                logger.warning(
                    "daily reconciliation: the kept copy of the project's keys differed from OpenAI's listing for "
                    "%d key(s): %s",
                    len(drift),
                    ", ".join(sorted(drift)[:10]),
                )
        logger.info("listed the project's keys in full (%d): %s", len(copy.keys), self.summary.listing)
        return copy

    def _key_events(self) -> list[AuditEvent]:
        if self.reads is None:
            return []
        return [entry for entry in self.reads[0].entries if isinstance(entry, AuditEvent)]

    # --- the tripwire's judgement ------------------------------------------------------------------------------

    def _judge(self) -> None:
        """Judge the events; register "created by" on the unmanaged-key notifications to come. A failure (reading
        keyrot's admin key ids, the project's accounts) is the tripwire part's.

        keyrot's admin key ids are read on every run, one without entries too: the state remembers them, so a key
        that leaves the secret's labels before the next entries (two admin rotations after a quiet run) is still
        recognised as keyrot's."""
        assert self.reads is not None and self.copy is not None
        run, settings, copy = self.run, self.run.settings, self.copy
        entries = [*self.reads[0].entries, *self.reads[1].entries]
        try:
            with admin_errors():
                admin = run.deps.admin if entries else None  # an id-less admin key is learnt when it matters
                self.actors = keyrot_actors(
                    run.deps.rotation.store, settings.admin_secret_arn, admin, self._audit.keyrot_ids
                )
                if not entries:
                    self.judgement = Judgement()
                    return
                ordered = sorted(entries, key=_moment)
                judged = partial(
                    judge,
                    ordered,
                    project_id=settings.project_id,
                    environment=settings.environment,
                    shared_environments=settings.shared_environments,
                    managed=_managed(run.records or ()),
                    lookups=Lookups(key=copy.keys.get, account=self._has_account),
                )
                judgement = judged(actors=self.actors)
                if _found_unknown_api_key(judgement, ordered, self.actors):
                    # Maybe keyrot's admin key of three rotations ago: judged again with the secret's past keys
                    self.actors = self._with_history(self.actors)
                    judgement = judged(actors=self.actors)
        except KeyrotError as exc:
            self.error = exc
            return
        self.judgement = judgement
        for finding in judgement.findings:
            if finding.kind is TripwireKind.KEY_CREATED and finding.key is not None:
                line = notes.created_by(finding.actor, finding.at, settings.runbook_url)
                run.notifier.annotate(f"unmanaged:{finding.resource_id}", line)
                run.notifier.annotate(f"orphan:{finding.resource_id}", line)

    def _with_history(self, actors: KeyrotActors) -> KeyrotActors:
        """`actors` and the ids of the admin-key secret's past versions; unchanged when those cannot be read (then
        a keyrot admin key of three rotations ago is reported as anyone's: a false alarm, never a missed one)."""
        try:
            history = keyrot_history(self.run.deps.rotation.store, self.run.settings.admin_secret_arn)
        except KeyrotError as exc:
            logger.warning("the admin-key secret's past versions could not be read: %s", scrub(str(exc))[:300])
            return actors
        return actors.with_history(history)

    def _has_account(self, account_id: str) -> bool:
        """Whether the project has this service account: one of its keys is listed, else (once per run) the
        project's service accounts are."""
        assert self.copy is not None
        if self.copy.of_account(account_id):
            return True
        if self._accounts is None:
            settings = self.run.settings
            listing = read_openai(self.run.deps.admin, [settings.project_id], accounts=True, keys=False)
            self._accounts = {account.id for account in listing.accounts or ()}
        return account_id in self._accounts

    # --- step 2: tell on-call, then advance the cursor (the tripwire part) ---------------------------------------

    def commit(self) -> None:
        """Notify what the findings did not say, then advance the cursor and save the state. Raises this run's
        failure of the audit log's calls (the cursor then stays where it was)."""
        run = self.run
        if self.copy is None:
            # The inventory was not taken (the managed secrets could not be read, or the listing failed): nothing
            # was judged; the cursor stays, and that part's failure says why.
            logger.warning("audit log not read this run: the inventory was not taken")
            return
        audit = self._audit
        kept = replace(audit, generation=self.copy.generation, listed_at=run.now) if self.listed_now else audit
        if self.unreadable is not None:
            self._unreadable(kept)
            return
        if self.error is not None or self.reads is None or self.judgement is None:
            # The state stays as it was (a failed run changes nothing); a copy listed this run is dropped next run.
            raise self.error or KeyrotError("the audit log was read but its events were not judged")
        self._notify(self.judgement)
        actors = self.actors
        id_unknown = audit.id_unknown
        if actors is not None and not actors.complete and self.judgement.unverified and not id_unknown:
            run.notifier.notify(notes.admin_key_id_unknown(run.settings.environment, run.settings.runbook_url))
            id_unknown = True
        elif actors is not None and actors.complete:
            id_unknown = False
        if audit.off_since is not None:
            logger.info("the audit log is readable again")
        run.state.audit = replace(
            kept,
            keys=self.reads[0].stream,
            admin=self.reads[1].stream,
            generation=self.copy.generation,
            off_since=None,
            id_unknown=id_unknown,
            keyrot_ids=actors.remembered(audit.keyrot_ids) if actors is not None else kept.keyrot_ids,
        )
        if self.summary.notified:
            run.store.save(run.state)  # at once: a later failure must not send these again (else the state part's)
        self._publish_skipped()
        self._log()

    def _notify(self, judgement: Judgement) -> None:
        run, settings = self.run, self.run.settings
        env, project, runbook = settings.environment, settings.project_id, settings.runbook_url
        for finding in judgement.findings:
            resource = finding.resource_id or ""
            self.summary.findings.append(f"{finding.kind.value} {resource or '(no id)'} by {finding.actor}")
            if finding.kind is TripwireKind.KEY_CREATED:
                if finding.key is not None and (
                    run.notifier.delivered(f"unmanaged:{resource}") or run.notifier.delivered(f"orphan:{resource}")
                ):
                    continue  # said, with its creator, by the unmanaged-key (or orphan) notification
                note = notes.key_created_outside(
                    env, project, resource, finding.key, finding.actor, finding.at, runbook
                )
            elif finding.kind is TripwireKind.ACCOUNT_CREATED:
                note = notes.account_created_outside(env, project, resource, finding.actor, finding.at, runbook)
            elif finding.kind is TripwireKind.MANAGED_DELETED:
                assert finding.managed is not None
                managed = finding.managed
                note = notes.managed_account_deleted(
                    env, managed.key_name, managed.role, resource, finding.actor, finding.at, runbook
                )
            else:
                action = "created" if finding.kind is TripwireKind.ADMIN_KEY_CREATED else "deleted"
                note = notes.admin_key_changed_outside(
                    env, finding.event_id, action, finding.resource_id, finding.actor, finding.at, runbook
                )
            if run.notifier.notify(note):
                self.summary.notified += 1

    def _unreadable(self, kept: AuditState) -> None:
        """The audit log cannot be read: tell on-call once, forget the cursor (reading starts anew when it can)."""
        run = self.run
        problem = scrub(str(self.unreadable))[:300]
        if kept.off_since is None:
            run.notifier.notify(notes.audit_log_unreadable(run.settings.environment, problem, run.settings.runbook_url))
            logger.error("OpenAI audit log unreadable; tripwire off until it is: %s", problem)
        else:
            logger.warning("OpenAI audit log still unreadable (since %d): %s", kept.off_since, problem)
        run.state.audit = replace(kept, keys=None, admin=None, off_since=kept.off_since or run.now)
        run.store.save(run.state)
        self._log()

    def _publish_skipped(self) -> None:
        assert self.judgement is not None
        skipped = sum(self.judgement.skipped.values())
        if skipped:
            env = self.run.settings.environment
            dims = m.environment_dimensions(env)
            self.run.publisher.put([Datum.of(m.AUDIT_EVENTS_SKIPPED, dims, self.run.now, skipped)])

    def _log(self) -> None:
        summary, judgement = self.summary, self.judgement
        if judgement is not None:
            summary.skipped = dict(judgement.skipped)
            summary.elsewhere, summary.unverified = judgement.elsewhere, judgement.unverified
            for reason, count in sorted(judgement.skipped.items()):
                logger.warning("audit log: %d entr%s not judged: %s", count, "y" if count == 1 else "ies", reason)
        logger.info(
            "audit log: %d entries read, %d finding(s), %d notified, %d unverified, %d of other projects; keys %s, "
            "%d read again",
            summary.read,
            len(summary.findings),
            summary.notified,
            summary.unverified,
            summary.elsewhere,
            f"listed in full ({summary.listing})" if summary.listing else "kept up to date",
            summary.refreshed,
        )


_HELD = frozenset({STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS})


def _found_unknown_api_key(judgement: Judgement, entries: list[AuditEntry], actors: KeyrotActors) -> bool:
    """Whether a finding's event was an action of an API key `actors` does not recognise (keyrot's admin key of
    three rotations ago, or not keyrot's at all). Actions that found nothing (other projects') do not count."""
    found = {finding.event_id for finding in judgement.findings}
    return any(
        isinstance(entry, AuditEvent)
        and entry.id in found
        and entry.actor is not None
        and entry.actor.kind == "api_key"
        and not actors.acted(entry.actor.api_key_id)
        for entry in entries
    )


def _moment(entry: AuditEntry) -> int:
    return entry.effective_at if not isinstance(entry, MalformedAuditEvent) else 0


def _managed(records: list[SecretRecord] | tuple[SecretRecord, ...]) -> list[ManagedKey]:
    """The keys the environment's secrets hold under a live label (current, pending, previous), newest role first."""
    held: list[ManagedKey] = []
    for record in records:
        if record.problem:
            continue
        for version in record.versions.values():
            stages = set(version.stages)
            if version.key is None or STAGE_REVOKED in stages:
                continue
            role = next(
                (name for stage, name in _ROLES if stage in stages),
                None,
            )
            if role is not None:
                held.append(ManagedKey(record.key_name, role, version.key.key_id, version.key.service_account_id))
    return held


_ROLES = ((STAGE_CURRENT, "current"), (STAGE_PENDING, "pending"), (STAGE_PREVIOUS, "previous"))
