"""What the rehearsal reads back to check a step: metrics, admin keys as OpenAI answers them, command output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from keyrot.openai_admin import InvalidKeyError, OpenAIAdminClient, OpenAITransport
from keyrot.secret_model import AdminCredentials
from lab.demo.emulator import AwsEmulator


def gauge(aws: AwsEmulator, name: str, dimensions: dict[str, str]) -> float:
    """The latest value of a gauge a function published (0.0 when none was)."""
    end = datetime.now(UTC) + timedelta(minutes=1)
    points = aws.client("cloudwatch").get_metric_statistics(
        Namespace="Keyrot",
        MetricName=name,
        StartTime=end - timedelta(hours=1),
        EndTime=end,
        Period=60,
        Statistics=["Maximum"],
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
    )["Datapoints"]
    latest = max(points, key=lambda point: point["Timestamp"], default=None)
    return float(latest["Maximum"]) if latest else 0.0


def admin_credentials(secrets: Any, secret_id: str) -> AdminCredentials:
    """The admin key the admin-key secret holds as AWSCURRENT (the value stays in memory; only its id is shown)."""
    text = secrets.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"]
    return AdminCredentials.from_json(text)


def admin_key_accepted(base_url: str, admin_key: str) -> bool:
    """Whether OpenAI accepts `admin_key` on its admin API now (False: it answers 401, the key is gone)."""
    try:
        OpenAIAdminClient(admin_key, OpenAITransport(base_url)).check_admin_key()
    except InvalidKeyError:
        return False
    return True


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
