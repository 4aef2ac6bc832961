"""A monitor world: a rotation world plus CloudWatch, SSM and SNS (read through an SQS subscription), one clock.

The stand-in and the monitor share a ManualClock, so tests place usage in exact minutes and move time by hand.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from keyrot import metric_names as m
from keyrot.constants import state_parameter_name
from keyrot.monitor.run import MonitorDependencies, MonitorReport, run_monitor
from keyrot.openai_admin import OpenAIAdminClient, OpenAITransport
from keyrot.settings import MonitorSettings
from lab.openai_standin import ManualClock, OpenAIStandIn
from lab.remote_calls import RemoteCallLog
from lab.scenario import FAST_RETRY, RotationWorld


@dataclass
class MonitorWorld:
    rotation: RotationWorld
    clock: ManualClock
    cloudwatch: Any
    ssm: Any
    sns: Any
    sqs: Any
    topic_arn: str
    queue_url: str
    settings: MonitorSettings
    start: int = 0  # the clock when the world was made (a minute boundary in tests)

    @classmethod
    def create(
        cls,
        openai: OpenAIStandIn,
        clock: ManualClock,
        *,
        environment: str = "dev",
        region: str = "us-east-1",
        **settings: Any,
    ) -> MonitorWorld:
        session = boto3.session.Session(region_name=region)
        secrets = session.client("secretsmanager")
        rotation = RotationWorld.create(
            openai, secrets, environment=environment, now=lambda: datetime.fromtimestamp(clock(), UTC)
        )
        sns, sqs = session.client("sns"), session.client("sqs")
        topic_arn = sns.create_topic(Name=f"keyrot-{rotation.environment}-oncall")["TopicArn"]
        queue_url = sqs.create_queue(QueueName=f"oncall-inbox-{environment}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        monitor_settings = MonitorSettings(
            environment=rotation.environment,
            admin_secret_arn=rotation.admin_secret_arn,
            project_id=rotation.project_id,
            topic_arn=topic_arn,
            state_parameter=state_parameter_name(rotation.environment),
            openai_base_url=openai.base_url,
            validation_attempts=2,
            validation_delay_seconds=0.01,
            **settings,
        )
        return cls(
            rotation,
            clock,
            session.client("cloudwatch"),
            session.client("ssm"),
            sns,
            sqs,
            topic_arn,
            queue_url,
            monitor_settings,
            start=int(clock()),
        )

    # --- running ---------------------------------------------------------------------------------

    def with_settings(self, **changes: Any) -> MonitorWorld:
        return dataclasses.replace(self, settings=dataclasses.replace(self.settings, **changes))

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def dependencies(self, **overrides: Any) -> MonitorDependencies:
        transport = OpenAITransport(
            self.settings.openai_base_url,
            retry=FAST_RETRY,
            sleep=self.rotation.sleeps.append,
            session=self.rotation.session_factory(),
        )
        admin = OpenAIAdminClient(self.rotation.admin_key, transport)
        rotation_context = self.rotation.context()
        rotation_context.admin_factory = lambda: admin
        values: dict[str, Any] = {
            "settings": self.settings,
            "admin": admin,
            "rotation": rotation_context,
            "cloudwatch": self.cloudwatch,
            "ssm": self.ssm,
            "sns": self.sns,
            "now": self.now,
        }
        values.update(overrides)
        return MonitorDependencies(**values)

    def run(self, **overrides: Any) -> MonitorReport:
        return run_monitor(self.dependencies(**overrides))

    def recorded_dependencies(self, log: RemoteCallLog) -> MonitorDependencies:
        """Dependencies whose every AWS and OpenAI call is recorded in `log` (which may crash after one)."""
        region = self.cloudwatch.meta.region_name
        secrets = log.attach(boto3.client("secretsmanager", region_name=region))
        rotation = dataclasses.replace(self.rotation, secrets=secrets, session_factory=log.session)
        recorded = dataclasses.replace(self, rotation=rotation)
        return recorded.dependencies(
            cloudwatch=log.attach(boto3.client("cloudwatch", region_name=region)),
            ssm=log.attach(boto3.client("ssm", region_name=region)),
            sns=log.attach(boto3.client("sns", region_name=region)),
        )

    # --- reading what the monitor produced ----------------------------------------------------------

    def notifications(self) -> list[dict[str, str]]:
        """Drain the on-call inbox: [{'subject': ..., 'message': ...}]."""
        found: list[dict[str, str]] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                envelope = json.loads(message["Body"])
                found.append({"subject": envelope.get("Subject", ""), "message": envelope["Message"]})
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def sums(self, name: str, dimensions: dict[str, str], start: int, end: int) -> dict[int, float]:
        """Per-minute Sum of a metric between start and end (Unix seconds), as CloudWatch reports it."""
        response = self.cloudwatch.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "q",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": m.NAMESPACE,
                            "MetricName": name,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                        },
                        "Period": 60,
                        "Stat": "Sum",
                    },
                }
            ],
            StartTime=datetime.fromtimestamp(start, UTC),
            EndTime=datetime.fromtimestamp(end, UTC) + timedelta(seconds=1),
        )
        result: dict[int, float] = defaultdict(float)
        for data in response["MetricDataResults"]:
            for stamp, value in zip(data["Timestamps"], data["Values"], strict=True):
                result[int(stamp.timestamp())] += value
        return dict(result)

    def maxima(self, name: str, dimensions: dict[str, str]) -> list[float]:
        """Every per-minute Maximum of a gauge the monitor published, whenever it was published."""
        points = self.cloudwatch.get_metric_statistics(
            Namespace=m.NAMESPACE,
            MetricName=name,
            Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
            StartTime=self.now().replace(year=2000),
            EndTime=self.now().replace(year=2100),
            Period=60,
            Statistics=["Maximum"],
        )["Datapoints"]
        return [point["Maximum"] for point in sorted(points, key=lambda point: point["Timestamp"])]

    def state(self) -> dict[str, Any] | None:
        try:
            value = self.ssm.get_parameter(Name=self.settings.state_parameter)["Parameter"]["Value"]
        except self.ssm.exceptions.ParameterNotFound:
            return None
        return dict(json.loads(value))
