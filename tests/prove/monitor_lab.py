"""A monitor laboratory: one environment per experiment, ready for one monitor run, on shared moto, stand-in, clock
and clients (creating boto3 sessions and clients per environment would dominate the run time).

An environment holds a secret whose two keys were minted directly (the monitor, not the rotation, is under test):
its previous key is idle past the grace period, both keys and an unmanaged key made requests in three minutes, and
the monitor's watermark is at the start.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
import uuid

from keyrot import metric_names as m
from keyrot.aws.clients import monitor_clients
from keyrot.constants import state_parameter_name
from keyrot.monitor import ledger
from keyrot.monitor.run import MonitorDependencies
from keyrot.monitor.state import MonitorState
from keyrot.openai_admin import NO_RETRY, KeyStatus, OpenAIKeyProbe, OpenAITransport
from keyrot.secret_model import ManagedKey
from lab.monitor_scenario import MonitorWorld
from lab.openai_standin import ManualClock, OpenAIStandIn
from lab.openai_standin.audit import AuditLog
from lab.scenario import RotationWorld
from tests.prove.faultkit import FaultLog, Relay

KEY_NAME = "chat-backend"
SETTLE = 600
GRACE = 300
SPACING = 45 * 60  # a scenario spans about 35 minutes; their metrics never share a minute
# minute -> (requests by the current key, by the previous key, by an unmanaged key)
USAGE = {1: (3, 2, 0), 2: (4, 0, 5), 3: (6, 1, 0)}
REQUESTS = {minute: current + previous for minute, (current, previous, _) in USAGE.items()}
SPEND = 0.75  # USD spent today by the current key
UNMANAGED = {minute: unmanaged for minute, (_, _, unmanaged) in USAGE.items() if unmanaged}


@dataclasses.dataclass
class Prepared:
    world: MonitorWorld
    arn: str
    current: ManagedKey
    previous: ManagedKey


class MonitorLab:
    """A fresh environment per scenario, on one moto, one stand-in and one clock, and shared (instrumented) clients.

    Each scenario's clock starts SPACING before the previous one's, so their metrics never share a minute.
    """

    def __init__(self, openai: OpenAIStandIn, clock: ManualClock) -> None:
        self.openai, self.clock = openai, clock
        now = int(time.time())
        self.base = now - now % 60 - 3600
        self.probe = OpenAIKeyProbe(OpenAITransport(openai.base_url, retry=NO_RETRY))
        self._count = itertools.count(1)
        self.clock.set(self.base)
        self.template = MonitorWorld.create(openai, clock, environment="mon-0")
        self.relay = Relay()
        region = self.template.cloudwatch.meta.region_name
        # The function's clients as the handler builds them: the production factory's, with its retry configuration
        self.clients = {name: self.relay.attach(client) for name, client in monitor_clients(region).items()}

    def prepare(self) -> Prepared:
        """A secret rotated twice (its previous key idle past the grace period), usage in three minutes by both of
        its keys and by an unmanaged key, and the monitor's watermark at the start: ready for one run."""
        number = next(self._count)
        self.clock.set(self.base - number * SPACING)
        world = self._world(f"mon-{number}")
        arn = world.rotation.create_managed_secret(KEY_NAME)
        previous, current = (self._mint(world, arn) for _ in range(2))
        world.ssm.put_parameter(
            Name=world.settings.state_parameter, Value=MonitorState(watermark=world.start).to_json(), Type="String"
        )
        unmanaged, _ = world.rotation.openai.state.add_user_key(world.rotation.project_id)
        for minute, (by_current, by_previous, by_unmanaged) in USAGE.items():
            for key_id, requests in ((current.key_id, by_current), (previous.key_id, by_previous)):
                if requests:
                    self._usage(world, key_id, minute, requests)
            if by_unmanaged:
                self._usage(world, unmanaged, minute, by_unmanaged, kind="embeddings")
        self.clock.advance(5 * 60 + SETTLE)
        world.rotation.openai.state.record_cost(current.key_id, SPEND, at=self.clock())  # today, whatever the hour
        self.openai.faults.clear()
        self.openai.reset_calls()
        # A fresh audit log: the clock went back for this scenario, so the events of earlier scenarios (their admin
        # keys made by the owner) would lie in its future, and the monitor's tripwire would read and report them
        self.openai.state.audit = AuditLog(self.clock, lambda size: uuid.uuid4().hex[:size])
        ledger.clear_cache()
        return Prepared(world, arn, current, previous)

    def _world(self, environment: str) -> MonitorWorld:
        """MonitorWorld.create's environment (project, admin key, topic and inbox), with the template's clients."""
        template = self.template
        rotation = RotationWorld.create(
            self.openai, template.rotation.secrets, environment=environment, now=template.rotation.now
        )
        topic_arn = template.sns.create_topic(Name=f"keyrot-{environment}-oncall")["TopicArn"]
        queue_url = template.sqs.create_queue(QueueName=f"oncall-inbox-{environment}")["QueueUrl"]
        attributes = template.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        template.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=attributes["Attributes"]["QueueArn"])
        settings = dataclasses.replace(
            template.settings,
            environment=environment,
            admin_secret_arn=rotation.admin_secret_arn,
            project_id=rotation.project_id,
            topic_arn=topic_arn,
            state_parameter=state_parameter_name(environment),
            grace_period_seconds=GRACE,
            quiet_window_seconds=GRACE,
            usage_kinds=("completions", "embeddings"),
        )
        return dataclasses.replace(
            template,
            rotation=rotation,
            topic_arn=topic_arn,
            queue_url=queue_url,
            settings=settings,
            start=int(self.clock()),
        )

    def dependencies(self, world: MonitorWorld, log: FaultLog) -> MonitorDependencies:
        """What `MonitorWorld.recorded_dependencies` builds, on the shared instrumented clients."""
        self.relay.use(log)
        clients = self.clients
        rotation = dataclasses.replace(world.rotation, secrets=clients["secretsmanager"], session_factory=log.session)
        recorded = dataclasses.replace(world, rotation=rotation)
        return recorded.dependencies(cloudwatch=clients["cloudwatch"], ssm=clients["ssm"], sns=clients["sns"])

    def _mint(self, world: MonitorWorld, arn: str) -> ManagedKey:
        """A rotation's outcome, written directly: a keyrot service account and its key, stored as AWSCURRENT
        (AWSPREVIOUS follows). The monitor, not the rotation, is under test here."""
        rotation = world.rotation
        token = str(uuid.uuid4())
        name = f"keyrot:{rotation.environment}:{KEY_NAME}:{token}"
        account, key = rotation.openai.state.create_service_account(
            rotation.project_id, name, with_key=True, expires_in=None
        )
        assert key is not None
        value = ManagedKey(
            api_key=key.value,
            key_id=key.id,
            service_account_id=account.id,
            project_id=rotation.project_id,
            environment=rotation.environment,
            key_name=KEY_NAME,
            created_at=world.now(),
        )
        rotation.secrets.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=value.to_json())
        return value

    @staticmethod
    def _usage(world: MonitorWorld, key_id: str, minute: int, requests: int, kind: str = "completions") -> None:
        world.rotation.openai.state.record_usage(
            key_id, kind, at=world.start + minute * 60 + 5, num_model_requests=requests, input_tokens=requests * 10
        )

    def status(self, api_key: str) -> KeyStatus:
        return self.probe.check(api_key).status


def published_sums(world: MonitorWorld) -> tuple[dict[int, float], dict[int, float], dict[int, float]]:
    t, env = world.start, world.settings.environment
    window = (t - SETTLE, t + 15 * 60)
    return (
        world.sums(m.REQUESTS, m.key_dimensions(env, KEY_NAME), *window),
        world.sums(m.INPUT_TOKENS, m.key_dimensions(env, KEY_NAME), *window),
        world.sums(m.UNMANAGED_KEY_REQUESTS, m.environment_dimensions(env), *window),
    )


def gauge_points(world: MonitorWorld, name: str, key_name: str | None = KEY_NAME) -> list[float]:
    """The per-minute maxima of an environment's gauge (per key when `key_name` is given), oldest first."""
    env = world.settings.environment
    return world.maxima(name, m.key_dimensions(env, key_name) if key_name else m.environment_dimensions(env))


def expected_sums(world: MonitorWorld) -> tuple[dict[int, float], dict[int, float], dict[int, float]]:
    t = world.start
    return (
        {t + minute * 60: float(n) for minute, n in REQUESTS.items()},
        {t + minute * 60: float(n * 10) for minute, n in REQUESTS.items()},
        {t + minute * 60: float(n) for minute, n in UNMANAGED.items()},
    )
