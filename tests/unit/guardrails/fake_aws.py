"""In-memory SSM parameters and an SNS topic for the guardrails check's on-call part: what boto3 would answer,
including its errors (ClientError), so keyrot.aws.errors turns them into AwsCallError as in production."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} (fake)"}}, operation)


@dataclass
class FakeSsm:
    values: dict[str, str] = field(default_factory=dict)
    puts: int = 0
    fail_puts: bool = False
    fail_gets: bool = False

    def get_parameter(self, *, Name: str) -> dict[str, Any]:
        if self.fail_gets:
            raise client_error("AccessDeniedException", "GetParameter")
        if Name not in self.values:
            raise client_error("ParameterNotFound", "GetParameter")
        return {"Parameter": {"Name": Name, "Value": self.values[Name]}}

    def put_parameter(self, *, Name: str, Value: str, Type: str, Overwrite: bool) -> dict[str, Any]:
        if self.fail_puts:
            raise client_error("ThrottlingException", "PutParameter")
        assert Type == "String" and Overwrite
        self.values[Name] = Value
        self.puts += 1
        return {"Version": self.puts}


@dataclass
class FakeSns:
    messages: list[dict[str, str]] = field(default_factory=list)
    failing: bool = False

    def publish(self, *, TopicArn: str, Subject: str, Message: str) -> dict[str, str]:
        if self.failing:
            raise client_error("InternalError", "Publish")
        self.messages.append({"topic": TopicArn, "subject": Subject, "message": Message})
        return {"MessageId": str(len(self.messages))}

    def drain(self) -> list[dict[str, str]]:
        found, self.messages = self.messages, []
        return found
