"""One monitor run: publish usage exactly once, report unknown and retired keys, read costs, run the janitor, publish
gauges.

`MonitorRun` holds everything one run needs and learns (settings, clients, clock, state, publisher, notifier,
managed secrets, inventory, report), as Powertools' `IdempotencyHandler` holds one idempotent call: its methods are the
run's steps and share that state instead of passing it along.

The run is made of parts (`PARTS`) that each run whatever the others did: a Costs API outage must not stop the
janitor, a failed usage read must not silence the key-age gauge. A failed part is logged with its name and listed
in the report (the handler counts it as MonitorPartFailed); once every part has had its turn, the run raises the
first failure, so the function's error alarm and MonitorRunFailed see it. Costs are best-effort: their failure is
reported (CostsReadFailed) without failing the run. The heartbeat goes out only when every other part succeeded.
The managed secrets and the inventory (keyrot.inventory: every key's state, the one answer the rotation steps, the
janitor and the CLI get too) are the parts' shared inputs: a part that needs one that could not be read does not run
(`MonitorReport.parts_not_run`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Collection
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from keyrot import metric_names as m
from keyrot.errors import KeyrotError
from keyrot.inventory import (
    Inventory,
    KeyState,
    SecretRecord,
    add_unlabelled_versions,
    classify,
    promotion_time,
    read_secrets,
)
from keyrot.monitor import notifications as notes
from keyrot.monitor.attribution import Attribution, attribute, reportable_keys
from keyrot.monitor.audit_watch import project_listing, watch_of
from keyrot.monitor.janitor import JanitorAction, JanitorDecision, carry_out, plan, redecide
from keyrot.monitor.notifications import Notifier
from keyrot.monitor.publisher import Datum, MetricPublisher, heartbeat, publish_marker, select_batch, split_usage
from keyrot.monitor.secret_reads import SecretReads
from keyrot.monitor.state import (
    MAX_SET_ASIDE,
    POISON_STRIKES,
    PROBLEM_MAX_CHARS,
    Lease,
    MonitorState,
    PublishIntent,
    SetAside,
    StateStore,
)
from keyrot.monitor.usage import BUCKET_SECONDS, CostsToday, MalformedUsageError, fetch_costs_today, fetch_usage
from keyrot.openai_admin import OpenAIAdminClient, ProjectApiKey
from keyrot.redaction import scrub
from keyrot.rotation import RotationContext
from keyrot.rotation.context import admin_errors
from keyrot.settings import MonitorSettings

logger = logging.getLogger(__name__)

# Catch up at most this much usage per run (a longer outage is worked off over several runs, without a gap).
# It spans more than one Usage API page of 1-minute buckets (1440), so paging is part of every catch-up.
MAX_WINDOW_SECONDS = 36 * 3600
MAX_USAGE_CALLS = 50
# The intent's batch boundaries must fit the state parameter with room to spare (state.STATE_MAX_CHARS).
INTENT_MAX_CHARS = 5000
# CloudWatch accepts datapoints up to two weeks old; stay clear of the edge.
MAX_BACKFILL_SECONDS = 14 * 86400 - 3600
# A publish marker may take a while to become readable; only decide "it did not land" after this long.
RESOLVE_INTENT_AFTER_SECONDS = 180
# The parts of a run, in order. Costs are best-effort: reported, never failing the run or holding the heartbeat.
PARTS = ("secrets", "inventory", "usage", "findings", "tripwire", "costs", "janitor", "state", "gauges")
BEST_EFFORT_PARTS = frozenset({"costs"})
# What an operator may ask of the set-aside usage buckets (the handler's `setAside` input).
SET_ASIDE_ACTIONS = ("replay", "drop")


@dataclass
class MonitorDependencies:
    settings: MonitorSettings
    admin: OpenAIAdminClient
    rotation: RotationContext  # store, admin and probe for the janitor's revocations
    cloudwatch: Any
    ssm: Any
    sns: Any
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    # How long this run may hold the state: the function's remaining time plus a margin, so the lease of a run
    # that died lapses right after the function's timeout.
    lease_seconds: int = 310


@dataclass
class MonitorReport:
    window: tuple[int, int] | None = None
    usage_datums: int = 0
    resumed_intent: str | None = None  # "committed", "republished", "discarded" or "deferred"
    unmanaged_keys: list[str] = field(default_factory=list)
    retired_keys: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    revocation_failures: list[str] = field(default_factory=list)
    kept_in_use: list[str] = field(default_factory=list)
    notifications_sent: int = 0
    notifications_suppressed: int = 0
    metric_calls: int = 0
    skipped: str | None = None  # why this run did nothing (another run holds the state)
    failed_parts: dict[str, str] = field(default_factory=dict)  # part -> "ErrorClass: message"
    parts_not_run: list[str] = field(default_factory=list)  # their input (secrets, inventory) could not be read
    heartbeat: bool = False  # every part (costs aside) succeeded and the heartbeat was published
    set_aside: list[str] = field(default_factory=list)  # usage buckets ("kind time") set aside by this run
    replayed: list[str] = field(default_factory=list)  # set-aside buckets published by this run (setAside=replay)
    dropped: list[str] = field(default_factory=list)  # set-aside buckets forgotten by this run (setAside=drop)
    still_set_aside: int = 0
    audit_log: dict[str, Any] = field(default_factory=dict)  # what the audit log gave (audit_watch.WatchSummary)

    @property
    def complete(self) -> bool:
        """True when every part except the best-effort ones ran and succeeded."""
        return not self.parts_not_run and not set(self.failed_parts) - BEST_EFFORT_PARTS


def align(moment: int) -> int:
    return moment - moment % BUCKET_SECONDS


class MonitorInputError(KeyrotError):
    """The monitor was invoked with an input it does not understand; nothing was done."""


def run_monitor(deps: MonitorDependencies, *, set_aside_action: str | None = None) -> MonitorReport:
    """One run, holding a lease on the state so overlapping runs (slow run, retry) never publish twice. Raises the
    first failure of a part once every part has had its turn."""
    return MonitorRun(deps, set_aside_action=set_aside_action).execute()


class MonitorRun:
    """One monitor run and everything it holds: dependencies, the clock reading, state, publisher, notifier,
    managed secrets, inventory, the usage attribution and the report. Use once: `MonitorRun(deps).execute()`."""

    def __init__(self, deps: MonitorDependencies, *, set_aside_action: str | None = None) -> None:
        if set_aside_action not in (None, *SET_ASIDE_ACTIONS):
            raise MonitorInputError(
                f"setAside must be one of {', '.join(SET_ASIDE_ACTIONS)}, got {str(set_aside_action)[:40]!r}"
            )
        self.deps = deps
        self.set_aside_action = set_aside_action
        self.settings = deps.settings
        self.moment = deps.now()
        self.now = int(self.moment.timestamp())
        self.run_id = uuid.uuid4().hex
        self.report = MonitorReport()
        self.store = StateStore(deps.ssm, self.settings.state_parameter)
        self.publisher = MetricPublisher(deps.cloudwatch)
        self.state = MonitorState(watermark=align(self.now - self.settings.settle_delay_seconds))
        self.notifier = Notifier(deps.sns, self.settings.topic_arn, self.state, self.settings.notify_dedup_seconds, 0)
        self.records: list[SecretRecord] | None = None  # the managed secrets as read (the secrets part)
        self.inventory: Inventory | None = None  # every key's state (the inventory part)
        self.listed: dict[str, ProjectApiKey] = {}  # OpenAI's project keys by id, for on-call's notes
        self.attribution = Attribution()
        self.costs: CostsToday | None = None
        self.errors: list[Exception] = []  # the failures of the parts that are not best-effort, in order

    # --- the run ---------------------------------------------------------------------------------------------

    def execute(self) -> MonitorReport:
        """Run every part; raise the first failure (of a part that is not best-effort) after the last part."""
        if not self._take_lease():
            return self.report
        try:
            self._run()
        except Exception:
            self.state.lease = None
            with suppress(KeyrotError):
                self.store.save(self.state)  # release the lease; everything in `state` is already true
            raise
        if self.errors:
            raise self.errors[0]
        return self.report

    def _take_lease(self) -> bool:
        """Claim the state for this run (a compare-and-swap on the parameter's versions, see state.py); False (and
        the report says why) when another run holds it or claimed it first."""
        now, report = self.now, self.report
        snapshot = self.store.read()
        self.state = snapshot.state or self.state
        if self.state.leased_to_another(self.run_id, now):
            until = self.state.lease.until if self.state.lease else now
            report.skipped = f"another monitor run holds the state until {_iso(until)}"
            logger.warning("%s; skipping this run", report.skipped)
            return False
        self.state.lease = Lease(self.run_id, now + self.deps.lease_seconds)
        if not self.store.claim(self.state, snapshot.latest):
            report.skipped = "another monitor run claimed the state at the same moment"
            logger.warning("%s; skipping this run", report.skipped)
            return False
        return True

    def _run(self) -> None:
        deps, settings = self.deps, self.settings
        self.notifier = Notifier(deps.sns, settings.topic_arn, self.state, settings.notify_dedup_seconds, self.now)
        self._part("secrets", self._read_secrets)
        self._part("inventory", self._take_inventory, needs=self.records is not None)
        known = self.inventory is not None
        # Findings right after the usage is committed: a later failure (costs, janitor) must not lose them, since
        # the usage they come from will not be read again.
        self._part("usage", self.publish_usage, needs=known)
        self._part("findings", self.report_findings, needs=known)
        self._part("tripwire", self.watch_audit_log)
        self._part("costs", self.read_costs)
        self._part("janitor", self.run_janitor, needs=known)
        # The state (dedup marks, lease released) is saved whatever failed before: everything in it is true.
        self._part("state", self._release)
        self._part("gauges", self.publish_gauges)
        self.report.notifications_sent = len(self.notifier.sent)
        self.report.notifications_suppressed = len(self.notifier.suppressed)
        self.report.metric_calls = self.publisher.calls
        self.report.still_set_aside = len(self.state.set_aside)

    def _part(self, name: str, action: Callable[[], None], *, needs: bool = True) -> None:
        """Run one part; a failure is logged with the part's name, reported and kept for the end of the run."""
        if not needs:
            self.report.parts_not_run.append(name)
            logger.error("monitor part %s did not run: the managed secrets or the inventory could not be read", name)
            return
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - recorded here and raised after the last part (execute)
            self.report.failed_parts[name] = f"{type(exc).__name__}: {scrub(str(exc))}"
            logger.error("monitor part %s failed: %s: %s", name, type(exc).__name__, scrub(str(exc)))
            if name not in BEST_EFFORT_PARTS:
                self.errors.append(exc)

    def _read_secrets(self) -> None:
        """This environment's managed secrets (those the deployment declares, else those tagged for it). A secret
        the monitor may not read is a problem of that secret; a read AWS failed is this run's failure."""
        reads = SecretReads(self.deps.rotation.store)
        records = read_secrets(reads, self.settings.environment, self.settings.deployment)
        if reads.transient:
            raise reads.transient[0]
        self.records = records

    def _take_inventory(self) -> None:
        """The project's keys as OpenAI lists them, the versions their accounts are named for that no label points
        at, then every key's state (keyrot.inventory.classify, with the environments the deployment declares to
        share the project)."""
        assert self.records is not None
        settings = self.settings
        listing = project_listing(self)  # kept up to date from the audit log (audit_watch.py)
        reads = SecretReads(self.deps.rotation.store)
        records = add_unlabelled_versions(reads, self.records, listing, settings.environment)
        if reads.transient:
            raise reads.transient[0]
        self.records, self.listed = records, {key.id: key for key in listing.keys or ()}
        self.inventory = classify(
            records,
            listing,
            environment=settings.environment,
            shared_environments=settings.shared_environments,
            now=self.moment,
            grace_period_seconds=settings.grace_period_seconds,
        )

    def read_costs(self) -> None:
        """Today's spend (best-effort: without it, the spend gauges are not published this run)."""
        with admin_errors():
            self.costs = fetch_costs_today(self.deps.admin, self.settings.project_id, self.moment)

    def watch_audit_log(self) -> None:
        """The tripwire: tell on-call of keys, accounts and admin keys others created or deleted (the findings already
        named the creators of the unmanaged keys they reported), then advance the audit log's cursor."""
        watch = watch_of(self)
        try:
            watch.commit()
        finally:
            self.report.audit_log = asdict(watch.summary)

    def _release(self) -> None:
        self.state.prune_notified(self.now)
        self.state.lease = None
        self.store.save(self.state)

    def publish_gauges(self) -> None:
        """Key ages, spend, unmanaged keys and the janitor's counts; the heartbeat when every other part succeeded."""
        settings, report = self.settings, self.report
        env_dims = m.environment_dimensions(settings.environment)
        datums = _gauges(settings.environment, self.records, self.inventory, self.costs, self.now)
        if report.revoked:
            datums.append(Datum.of(m.KEY_REVOKED, env_dims, self.now, len(report.revoked)))
        if report.revocation_failures:
            datums.append(Datum.of(m.REVOCATION_FAILED, env_dims, self.now, len(report.revocation_failures)))
        datums.append(Datum.of(m.USAGE_BUCKETS_SET_ASIDE, env_dims, self.now, len(self.state.set_aside)))
        beat = report.complete
        if beat:
            datums.append(heartbeat(settings.environment, self.now, self.state.marker))
        else:
            logger.warning(
                "no heartbeat: parts failed %s, not run %s", sorted(report.failed_parts), report.parts_not_run
            )
        datums = [datum for datum in datums if datum.name not in settings.unpublished_metrics]
        if datums:
            self.publisher.put(datums)
        report.heartbeat = beat

    # --- usage: exactly once ---------------------------------------------------------------------------------

    def publish_usage(self) -> None:
        """Finish an interrupted publish, replay or drop set-aside buckets when asked, then publish the usage
        settled since the watermark, each bucket once."""
        ready = True
        if self.state.intent is not None:
            ready = self._resume()
        if not ready:
            return
        self._forget_unpublishable()
        if self.set_aside_action == "drop":
            self._drop_set_aside()
        elif self.set_aside_action == "replay":
            self._replay_set_aside()
        self._publish_new_usage()

    def _known(self) -> Inventory:
        """The inventory, for the parts that only run when it was taken."""
        assert self.inventory is not None
        return self.inventory

    def _usage_datums(
        self, start: int, end: int, *, kind: str | None = None, skip: Collection[tuple[str, int]] = ()
    ) -> Attribution:
        """Usage of [start, end) attributed to key names: every configured kind (or only `kind`), but `skip`."""
        settings = self.settings
        inventory = self._known()
        kinds = (kind,) if kind else settings.usage_kinds
        with admin_errors():
            totals = fetch_usage(self.deps.admin, kinds, settings.project_id, start, end, skip=skip)
        attribution = attribute(
            totals, inventory, environment=settings.environment, grace_period_seconds=settings.grace_period_seconds
        )
        left_out = settings.unpublished_metrics
        attribution.datums = [datum for datum in attribution.datums if datum.name not in left_out]
        return attribution

    def _resume(self) -> bool:
        """Finish a publish an earlier run started. False when it is too early to know what landed."""
        intent, now, report = self.state.intent, self.now, self.report
        assert intent is not None
        highest = self.publisher.highest_marker(self.settings.environment, intent.created_at, now) or 0
        landed = max(0, min(len(intent.boundaries), highest - intent.first_marker + 1))
        if landed == len(intent.boundaries):
            report.resumed_intent = "committed"
        elif now - intent.created_at < RESOLVE_INTENT_AFTER_SECONDS:
            report.resumed_intent = "deferred"
            logger.warning(
                "an interrupted publish is too recent to resolve (%d of %d calls seen); deferring",
                landed,
                len(intent.boundaries),
            )
            return False
        elif landed == 0:
            report.resumed_intent = "discarded"
            self.state.intent = None
            return True
        else:
            report.resumed_intent = "republished"
            attribution = self._usage_datums(intent.start, intent.end, kind=intent.replay, skip=intent.skip)
            for index in range(landed, len(intent.boundaries)):
                batch = select_batch(attribution.datums, intent.boundaries, index)
                marker = publish_marker(self.settings.environment, now, intent.first_marker + index)
                self.publisher.put([*batch, marker])
        self._commit(intent)
        return True

    def _commit(self, intent: PublishIntent) -> None:
        """Record a publish as done: the watermark moves past it (a replay instead leaves the set-aside list)."""
        state = self.state
        if intent.replay is None:
            state.watermark = intent.end
        else:
            state.set_aside = [e for e in state.set_aside if (e.kind, e.bucket) != (intent.replay, intent.start)]
        state.marker, state.intent = max(state.marker, intent.last_marker), None
        self.store.save(state)

    def _publish(self, intent: PublishIntent, batches: list[list[Datum]]) -> None:
        """Record the intent, publish its batches (each with its marker), commit."""
        self.state.intent = intent
        self.store.save(self.state)
        for index, batch in enumerate(batches):
            marker = publish_marker(self.settings.environment, self.now, intent.first_marker + index)
            self.publisher.put([*batch, marker])
        self._commit(intent)

    def _publish_new_usage(self) -> None:
        settings, state, now = self.settings, self.state, self.now
        oldest = align(now - MAX_BACKFILL_SECONDS)
        if state.watermark < oldest:
            self.notifier.notify(notes.usage_gap(settings.environment, state.watermark, oldest, settings.runbook_url))
            state.watermark = oldest
        start = state.watermark
        end = min(align(now - settings.settle_delay_seconds), start + MAX_WINDOW_SECONDS)
        if end <= start:
            return
        self.attribution, skipped = self._read_window(start, end)
        end, datums, batches = _fit(self.attribution.datums, start, end)
        self.report.window, self.report.usage_datums = (start, end), len(datums)
        if not batches:
            state.watermark = end
            return
        boundaries = [batch[0].sort_key for batch in batches]
        skipped = [pair for pair in skipped if pair[1] < end]
        self._publish(PublishIntent(start, end, state.marker + 1, boundaries, now, skipped=skipped), batches)

    # --- usage: poison buckets -------------------------------------------------------------------------------

    def _read_window(self, start: int, end: int) -> tuple[Attribution, list[list[Any]]]:
        """The window's usage without its set-aside buckets, and those buckets. A bucket that failed its checks
        POISON_STRIKES runs in a row is set aside here (and on-call told), and the window read again."""
        while True:
            skipped = self.state.set_aside_in(start, end)
            try:
                attribution = self._usage_datums(start, end, skip={(kind, bucket) for kind, bucket in skipped})
            except MalformedUsageError as exc:
                if not self._set_aside_after_strikes(exc):
                    raise
                continue
            self.state.suspect = None
            return attribution, skipped

    def _set_aside_after_strikes(self, exc: MalformedUsageError) -> bool:
        """Count a failure of the bucket `exc` names; set it aside (True) once it has failed POISON_STRIKES runs in
        a row. A failure no bucket is to blame for (a missing bucket, a bad page) is never set aside."""
        state, settings = self.state, self.settings
        if exc.kind is None or exc.bucket is None:
            return False
        strikes = state.strike(exc.kind, exc.bucket)
        if strikes < POISON_STRIKES:
            logger.warning(
                "usage bucket failed its checks (%d of %d runs before it is set aside)", strikes, POISON_STRIKES
            )
            return False
        if len(state.set_aside) >= MAX_SET_ASIDE:
            raise MalformedUsageError(
                f"{exc}; {MAX_SET_ASIDE} usage buckets are already set aside: replay or drop them "
                "(docs/runbook.md#usage-bucket-set-aside)"
            ) from exc
        problem = scrub(str(exc))[:PROBLEM_MAX_CHARS]
        # On-call first: if telling them fails, the bucket is not set aside and the next run tries again
        self.notifier.notify(
            notes.usage_set_aside(settings.environment, exc.kind, exc.bucket, problem, settings.runbook_url)
        )
        state.set_aside.append(SetAside(exc.kind, exc.bucket, problem))
        state.suspect = None
        self.report.set_aside.append(f"{exc.kind} {_minute(exc.bucket)}")
        logger.error("usage bucket %s %s set aside: %s", exc.kind, _minute(exc.bucket), problem)
        return True

    def _replay_set_aside(self) -> None:
        """Publish each set-aside bucket the watermark has passed, exactly once, if it now passes its checks."""
        state = self.state
        for entry in list(state.set_aside):
            label = f"{entry.kind} {_minute(entry.bucket)}"
            if entry.bucket >= state.watermark:
                continue  # its window is still to come: it is read (and skipped) with it
            try:
                attribution = self._usage_datums(entry.bucket, entry.bucket + BUCKET_SECONDS, kind=entry.kind)
            except MalformedUsageError as exc:
                logger.warning("set-aside usage %s still fails its checks: %s", label, scrub(str(exc)))
                continue
            self._merge_findings(attribution)
            batches = split_usage(attribution.datums)
            intent = PublishIntent(
                entry.bucket,
                entry.bucket + BUCKET_SECONDS,
                state.marker + 1,
                [batch[0].sort_key for batch in batches],
                self.now,
                replay=entry.kind,
            )
            if batches:
                self._publish(intent, batches)
            else:
                self._commit(intent)
            self.report.replayed.append(label)

    def _drop_set_aside(self) -> None:
        """Forget every set-aside bucket (an operator decided they will never be published)."""
        self.report.dropped = [f"{entry.kind} {_minute(entry.bucket)}" for entry in self.state.set_aside]
        logger.warning("dropped set-aside usage buckets: %s", ", ".join(self.report.dropped) or "none")
        self.state.set_aside = []

    def _forget_unpublishable(self) -> None:
        """Set-aside buckets older than CloudWatch accepts can never be published: forget them."""
        oldest = align(self.now - MAX_BACKFILL_SECONDS)
        expired = [entry for entry in self.state.set_aside if entry.bucket < oldest]
        for entry in expired:
            logger.warning("set-aside usage %s %s is too old to publish; forgotten", entry.kind, _minute(entry.bucket))
        self.state.set_aside = [entry for entry in self.state.set_aside if entry.bucket >= oldest]

    def _merge_findings(self, replayed: Attribution) -> None:
        """Add a replayed bucket's unmanaged and retired keys to this run's findings."""
        for key_id, activity in replayed.unmanaged.items():
            self.attribution.unmanaged.setdefault(key_id, activity)
        for key_id, retired in replayed.retired.items():
            self.attribution.retired.setdefault(key_id, retired)

    # --- findings --------------------------------------------------------------------------------------------

    def report_findings(self) -> None:
        """Notify on-call of what the inventory says nobody accounts for: unmanaged keys, and keyrot keys no label
        accounts for (a displaced version's key, an abandoned attempt's: orphans, which the janitor revokes); of
        retired keys in use and malformed secrets. `keyrot audit` reports the same keys (attribution.reportable_keys).
        Keys of an attempt in progress and of another environment declared to share the project are not reported."""
        inventory = self._known()
        settings, attribution, notifier, report = self.settings, self.attribution, self.notifier, self.report
        env, runbook = settings.environment, settings.runbook_url
        reported = reportable_keys(inventory)
        for key_id in sorted(set(reported) | set(attribution.unmanaged)):
            entry = reported.get(key_id) or inventory.by_key_id(key_id)
            activity = attribution.unmanaged.get(key_id)
            if entry is not None and entry.state is KeyState.DISPLACED:
                notifier.notify(notes.orphaned_account(env, key_id, entry.account_name or "", runbook))
            else:
                requests = activity.requests if activity else 0
                key = self.listed.get(key_id)
                notifier.notify(notes.unmanaged_key(env, settings.project_id, key_id, key, requests, runbook))
            report.unmanaged_keys.append(key_id)
        for key_id, retired in sorted(attribution.retired.items()):
            notifier.notify(
                notes.retired_key_in_use(
                    env, retired.key_name, key_id, retired.role, retired.requests, retired.last_active, runbook
                )
            )
            report.retired_keys.append(key_id)
        for secret_name, problem in inventory.problems:
            notifier.notify(notes.malformed_secret(env, secret_name, problem, runbook))

    # --- the janitor -----------------------------------------------------------------------------------------

    def run_janitor(self) -> None:
        """Revoke the keys whose time has come, as keyrot.monitor.janitor decides from the inventory: a previous key
        by its grace period (counted from its successor's promotion), quiet window, maximum grace and in-use policy; a
        displaced key (no label accounts for it, an abandoned attempt, labelled revoked while OpenAI still lists it)
        at once. Failures are reported and retried next run, never dropped.

        A previous key looks quiet from its `last_used_at` and the usage this run read. Before revoking one, the
        janitor reads the usage of the whole quiet window: an earlier run may have seen use that `last_used_at` does
        not show yet. Its counts (keys revoked, revocations failed) go out with the gauges.
        """
        settings, now, report = self.settings, self.now, self.report
        decisions = plan(self._known(), now=now, last_used=self.attribution.last_active, settings=settings)
        quiet = {d.key_id for d in decisions if d.action is JanitorAction.REVOKE}
        if quiet and settings.quiet_window_seconds:
            recent = self._recent_use(quiet)
            if recent is None:  # usage unreadable: revoke nothing on a guess; the next run decides again
                decisions = [d for d in decisions if d.action is not JanitorAction.REVOKE]
            else:
                decisions = [redecide(d, recent.get(d.key_id), now=now, settings=settings) for d in decisions]
        for decision in decisions:
            key_name, last_used = decision.secret.key_name, decision.last_used
            if decision.action in (JanitorAction.WAIT_GRACE, JanitorAction.WAIT_QUIET):
                continue
            if decision.action is JanitorAction.KEEP_IN_USE:
                report.kept_in_use.append(decision.key_id)
            if decision.action in (JanitorAction.KEEP_IN_USE, JanitorAction.REVOKE_IN_USE):
                self.notifier.notify(
                    notes.in_use_at_max_grace(
                        settings.environment,
                        key_name,
                        decision.key_id,
                        last_used,
                        settings.in_use_policy,
                        settings.runbook_url,
                    )
                )
            if decision.revokes:
                self._revoke(decision)

    def _recent_use(self, key_ids: set[str]) -> dict[str, int] | None:
        """When each of `key_ids` was last seen in the usage of the quiet window (end of its latest active
        minute); None when the usage cannot be read."""
        settings = self.settings
        end = align(self.now)
        start = min(align(self.now - settings.quiet_window_seconds), end - BUCKET_SECONDS)
        try:
            with admin_errors():
                totals = fetch_usage(self.deps.admin, settings.usage_kinds, settings.project_id, start, end)
        except KeyrotError as exc:
            logger.warning("could not confirm the previous keys are idle (%s); not revoking this run", exc)
            return None
        seen: dict[str, int] = {}
        for (bucket_start, key_id), counts in totals.items():
            if key_id in key_ids and counts.get(m.REQUESTS):
                seen[key_id] = max(seen.get(key_id, 0), bucket_start + BUCKET_SECONDS)
        return seen

    def _revoke(self, decision: JanitorDecision) -> None:
        settings, report = self.settings, self.report
        try:
            result = carry_out(self.deps.rotation, decision)
        except KeyrotError as exc:
            logger.error("revoking %s of %s failed: %s", decision.key_id, decision.secret.key_name, exc)
            report.revocation_failures.append(decision.key_id)
            self.notifier.notify(
                notes.revocation_failed(
                    settings.environment, decision.secret.key_name, decision.key_id, exc, settings.runbook_url
                )
            )
            return
        if result.status in ("revoked", "attempt-deleted"):
            report.revoked.append(decision.key_id)
            logger.info(
                "janitor revoked %s of %s (%s)", decision.key_id, decision.secret.key_name, decision.action.value
            )


def _iso(moment: int) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _minute(moment: int) -> str:
    """A usage bucket's start, as on-call reads it (and as the notifications spell it)."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _fit(datums: list[Datum], start: int, end: int) -> tuple[int, list[Datum], list[list[Datum]]]:
    """Shrink the window (at a bucket boundary) until its datums fit in MAX_USAGE_CALLS calls and the intent that
    records their batches fits in INTENT_MAX_CHARS. Returns the window's end, its datums and their batches."""
    limit = MAX_USAGE_CALLS * 999
    if len(datums) > limit:
        per_bucket: dict[int, int] = {}
        for datum in datums:
            per_bucket[datum.timestamp] = per_bucket.get(datum.timestamp, 0) + 1
        total, cut = 0, start
        for bucket in range(start, end, BUCKET_SECONDS):
            if total + per_bucket.get(bucket, 0) > limit:
                break
            total += per_bucket.get(bucket, 0)
            cut = bucket + BUCKET_SECONDS
        if cut == start:
            raise KeyrotError(f"one minute of usage holds more than {limit} datapoints; raise MAX_USAGE_CALLS")
        end, datums = cut, [datum for datum in datums if datum.timestamp < cut]
    batches = split_usage(datums)
    while len(json.dumps([batch[0].sort_key for batch in batches])) > INTENT_MAX_CHARS:
        last = max(datum.timestamp for datum in datums)
        if last == start:
            raise KeyrotError(f"one minute of usage needs an intent over {INTENT_MAX_CHARS} characters")
        end, datums = last, [datum for datum in datums if datum.timestamp < last]
        batches = split_usage(datums)
    return end, datums, batches


def _gauges(
    environment: str,
    records: list[SecretRecord] | None,
    inventory: Inventory | None,
    costs: CostsToday | None,
    now: int,
) -> list[Datum]:
    """The gauges this run knows: spend only when the costs were read (never a made-up 0), key ages with the managed
    secrets (each key's, and the oldest one's for the key-age alarm), the count of reportable keys with the
    inventory."""
    env_dims = m.environment_dimensions(environment)
    datums = []
    if costs is not None:
        datums.append(Datum.of(m.SPEND_TODAY_USD, env_dims, now, round(costs.total, 6), "None"))
    reported = reportable_keys(inventory) if inventory is not None else {}
    if reported:
        datums.append(Datum.of(m.UNMANAGED_KEYS, env_dims, now, len(reported)))
    oldest: tuple[float, str] | None = None
    spent: dict[str, float] = {}
    for record in records or ():
        if record.problem:
            continue  # a finding of its own; its keys cannot be told apart
        dims = m.key_dimensions(environment, record.key_name)
        # The current key ages from its promotion (a rotation that sat in AWSPENDING for days minted it long before).
        # A secret with no key yet (its first rotation never ran or never succeeded) ages from its own creation, so
        # the key-age alarm fires for it too instead of staying silent for want of data.
        born = promotion_time(record) or record.created_at
        if born is not None:
            age_hours = round(max((now - born.timestamp()) / 3600, 0.0), 3)
            datums.append(Datum.of(m.KEY_AGE_HOURS, dims, now, age_hours, "None"))
            oldest = max(oldest or (age_hours, record.key_name), (age_hours, record.key_name))
        key_ids = {version.key.key_id for version in record.versions.values() if version.key is not None}
        spend = sum(costs.per_key.get(key_id, 0.0) for key_id in key_ids) if costs else 0.0
        spent[record.key_name] = spend
        if spend:
            datums.append(Datum.of(m.COST_TODAY_USD, dims, now, round(spend, 6), "None"))
    if costs is not None:
        # Which key spends: the log says it every run (CostTodayUSD, a metric per key, only with the dashboard).
        others = costs.total - sum(spent.values())
        each = ", ".join(f"{name} {usd:.2f}" for name, usd in sorted(spent.items(), key=lambda item: -item[1]))
        logger.info("spend today (UTC): %.2f USD; %s; other keys %.2f", costs.total, each or "no managed key", others)
    if oldest is not None:
        # The alarm's metric carries no key name: the log does, and `keyrot status` shows every key's age.
        logger.info("oldest key: %s, %.1f hours", oldest[1], oldest[0])
        datums.append(Datum.of(m.OLDEST_KEY_AGE_HOURS, env_dims, now, oldest[0], "None"))
    return datums
