"""Provision a stack in the emulator exactly as the Pulumi program declares it.

The real program (infra/__main__.py) runs under Pulumi's mocks; every resource it registers is created, with the
inputs it declared, through the AWS API of the emulator, and the emulator's real ids and ARNs are handed back to
the program, so every later resource refers to what was actually created. The program stays the single source of
truth. Behaviour the emulator cannot perform is listed, never skipped silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks

from lab.demo.emulator import ACCOUNT, REGION, AwsEmulator
from lab.demo.lambda_runtime import FunctionError, LambdaWorker
from lab.pulumi_program import (
    Deployment,
    answer_data_source,
    data_sources,
    run_program,
    stack_config,
    unsecret,
)

NOT_EMULATED = (
    "Secrets Manager rotation schedules do not fire: rotations start with `keyrot rotate`; nor does the emulator "
    "compute a schedule expression's next rotation date, so `keyrot status` shows the next rotation as —.",
    "EventBridge Scheduler does not fire: the rehearsal invokes the monitor function as its schedule would "
    "(the guardrails check's schedule is stored only).",
    "CloudWatch alarms are stored but never evaluated (anomaly bands also need two weeks of history).",
    "EventBridge does not deliver to SNS: the rotation-failure rule is stored only.",
    "SNS e-mail subscriptions send nothing: the rehearsal reads notifications from an SQS queue it subscribes.",
    "IAM, KMS key policies and secret resource policies are stored, not enforced (moto does not evaluate IAM).",
    "The dashboard is stored; viewing it needs the CloudWatch console.",
)


NOT_EVALUATED_REASON = "Not evaluated: alarms are stored in the emulator, and nothing evaluates them there."


@dataclass
class Created:
    type: str
    name: str
    physical_id: str


@dataclass
class PendingInvocation:
    """A deploy-time invocation the function refused (as `pulumi up` would report it): the next `pulumi up` retries it.

    The guardrails apply is one when the stack creates its admin-key secret: the secret is empty until the operator
    puts the admin key, so the first update stops there (docs/deploy.md, section 15)."""

    name: str
    function_name: str
    event: dict[str, Any]
    error: str


@dataclass
class Provisioned:
    deployment: Deployment | None = None
    created: list[Created] = field(default_factory=list)
    external: list[str] = field(default_factory=list)  # resources the stack refers to but does not own
    unsupported: list[str] = field(default_factory=list)
    workers: dict[str, LambdaWorker] = field(default_factory=dict)  # function name -> worker
    # Deploy-time invocations that failed (the update that declared them stopped there), in declaration order.
    pending: list[PendingInvocation] = field(default_factory=list)
    # What each deploy-time invocation returned (its `result` in the state), by resource name.
    invocation_results: dict[str, Any] = field(default_factory=dict)

    def apply_pending(self) -> dict[str, Any]:
        """What a second `pulumi up` does once the cause is fixed: invoke each failed one again. Returns the results by
        resource name; an invocation that fails again stays pending (FunctionError propagates, as the update fails)."""
        done: dict[str, Any] = {}
        while self.pending:
            invocation = self.pending[0]
            done[invocation.name] = self.workers[invocation.function_name].invoke(invocation.event)
            self.pending.pop(0)
            self.invocation_results[invocation.name] = done[invocation.name]
            self.created.append(Created("aws:lambda/invocation:Invocation", invocation.name, invocation.name))
        return done

    def count_by_type(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.created:
            counts[item.type] = counts.get(item.type, 0) + 1
        return counts


def _tags(tags: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in (tags or {}).items()]


class EmulatorMocks(pulumi.runtime.Mocks):
    """Pulumi mocks that create each registered resource in the AWS emulator."""

    def __init__(
        self,
        aws: AwsEmulator,
        result: Provisioned,
        *,
        function_overrides: Mapping[str, Mapping[str, str]],
    ) -> None:
        self.aws = aws
        self.result = result
        self.function_overrides = function_overrides
        self.clients: dict[str, Any] = {}
        self.handlers: dict[str, Callable[[str, dict[str, Any]], tuple[str, dict[str, Any]]]] = {
            "aws:kms/key:Key": self._kms_key,
            "aws:kms/alias:Alias": self._kms_alias,
            "aws:iam/role:Role": self._role,
            "aws:iam/policy:Policy": self._policy,
            "aws:iam/rolePolicy:RolePolicy": self._role_policy,
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment": self._attachment,
            "aws:secretsmanager/secret:Secret": self._secret,
            "aws:secretsmanager/secretPolicy:SecretPolicy": self._secret_policy,
            "aws:secretsmanager/secretRotation:SecretRotation": self._secret_rotation,
            "aws:lambda/function:Function": self._function,
            "aws:lambda/permission:Permission": self._permission,
            "aws:cloudwatch/logGroup:LogGroup": self._log_group,
            "aws:sns/topic:Topic": self._topic,
            "aws:sns/topicSubscription:TopicSubscription": self._subscription,
            "aws:sns/topicPolicy:TopicPolicy": self._topic_policy,
            "aws:cloudwatch/eventRule:EventRule": self._event_rule,
            "aws:cloudwatch/eventTarget:EventTarget": self._event_target,
            "aws:scheduler/schedule:Schedule": self._schedule,
            "aws:cloudwatch/metricAlarm:MetricAlarm": self._alarm,
            "aws:cloudwatch/dashboard:Dashboard": self._dashboard,
            "aws:ssm/parameter:Parameter": self._parameter,
            "aws:lambda/invocation:Invocation": self._invocation,
        }

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = self.aws.client(service)
        return self.clients[service]

    # --- the Mocks interface -----------------------------------------------------------------------

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        identity = self.client("sts").get_caller_identity()
        return answer_data_source(args, data_sources(identity["Account"], REGION, identity["Arn"], identity["UserId"]))

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        handler = self.handlers.get(args.typ)
        if handler is None:
            if not args.typ.startswith("keyrot:"):
                self.result.unsupported.append(f"{args.typ} {args.name}")
            return f"{args.name}_id", inputs
        physical_id, outputs = handler(args.name, inputs)
        if outputs.pop("_pending", False):
            return physical_id, {**inputs, **outputs}
        self.result.created.append(Created(args.typ, args.name, physical_id))
        return physical_id, {**inputs, **outputs}

    # --- KMS and IAM -------------------------------------------------------------------------------

    def _kms_key(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        kms = self.client("kms")
        meta = kms.create_key(
            Description=i.get("description", ""),
            Policy=i["policy"],
            Tags=[{"TagKey": k, "TagValue": v} for k, v in (i.get("tags") or {}).items()],
        )["KeyMetadata"]
        if i.get("enableKeyRotation"):
            kms.enable_key_rotation(KeyId=meta["KeyId"])
        return meta["KeyId"], {"arn": meta["Arn"], "keyId": meta["KeyId"]}

    def _kms_alias(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self.client("kms").create_alias(AliasName=i["name"], TargetKeyId=i["targetKeyId"])
        return i["name"], {"arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:{i['name']}"}

    def _role(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        role = self.client("iam").create_role(
            RoleName=i["name"],
            AssumeRolePolicyDocument=i["assumeRolePolicy"],
            Description=i.get("description", ""),
            Tags=_tags(i.get("tags")),
        )["Role"]
        return role["RoleName"], {"arn": role["Arn"], "name": role["RoleName"], "uniqueId": role["RoleId"]}

    def _policy(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        policy = self.client("iam").create_policy(
            PolicyName=i["name"],
            PolicyDocument=i["policy"],
            Description=i.get("description", ""),
        )["Policy"]
        return policy["Arn"], {"arn": policy["Arn"], "name": policy["PolicyName"]}

    def _role_policy(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self.client("iam").put_role_policy(RoleName=i["role"], PolicyName=i["name"], PolicyDocument=i["policy"])
        return f"{i['role']}:{i['name']}", {}

    def _attachment(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        iam = self.client("iam")
        try:
            iam.get_role(RoleName=i["role"])
        except iam.exceptions.NoSuchEntityException:
            # A reader role belongs to the application, not to this stack: stand one in.
            trust = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    }
                ],
            }
            iam.create_role(RoleName=i["role"], AssumeRolePolicyDocument=json.dumps(trust))
            self.result.external.append(f"IAM role {i['role']} (an application's reader role)")
        iam.attach_role_policy(RoleName=i["role"], PolicyArn=i["policyArn"])
        return f"{i['role']}-{i['policyArn']}", {}

    # --- Secrets Manager ---------------------------------------------------------------------------

    def _secret(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {"Name": i["name"], "Tags": _tags(i.get("tags"))}
        if i.get("kmsKeyId"):
            kwargs["KmsKeyId"] = i["kmsKeyId"]
        if i.get("description"):
            kwargs["Description"] = i["description"]
        arn = self.client("secretsmanager").create_secret(**kwargs)["ARN"]
        return arn, {"arn": arn}

    def _secret_policy(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self.client("secretsmanager").put_resource_policy(
            SecretId=i["secretArn"], ResourcePolicy=i["policy"], BlockPublicPolicy=bool(i.get("blockPublicPolicy"))
        )
        return i["secretArn"], {}

    def _secret_rotation(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        rules = i.get("rotationRules") or {}
        api_rules = {
            key: value
            for key, value in (
                ("ScheduleExpression", rules.get("scheduleExpression")),
                ("Duration", rules.get("duration")),
                ("AutomaticallyAfterDays", int(rules.get("automaticallyAfterDays") or 0)),
            )
            if value
        }
        self.client("secretsmanager").rotate_secret(
            SecretId=i["secretId"],
            RotationLambdaARN=i["rotationLambdaArn"],
            RotationRules=api_rules,
            RotateImmediately=bool(i.get("rotateImmediately", True)),
        )
        return i["secretId"], {"rotationEnabled": True}

    # --- Lambda ------------------------------------------------------------------------------------

    def _function(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        archive = i["code"].path
        variables = dict((i.get("environment") or {}).get("variables") or {})
        function_name = i["name"]
        created = self.client("lambda").create_function(
            FunctionName=function_name,
            Runtime=i["runtime"],
            Role=i["role"],
            Handler=i["handler"],
            Code={"ZipFile": Path(archive).read_bytes()},
            Timeout=int(i.get("timeout", 3)),
            MemorySize=int(i.get("memorySize", 128)),
            Architectures=list(i.get("architectures") or ["x86_64"]),
            Environment={"Variables": variables},
            Description=i.get("description", ""),
        )
        log_group = ((i.get("loggingConfig") or {}).get("logGroup")) or f"/aws/lambda/{function_name}"
        worker = LambdaWorker(
            name=function_name,
            handler=i["handler"],
            archive=Path(archive),
            environment={
                **variables,
                **self.function_overrides.get(function_name, {}),
                **self.aws.process_environment(),
            },
            logs=self.client("logs"),
            cloudwatch=self.client("cloudwatch"),
            log_group=log_group,
            timeout_seconds=float(i.get("timeout", 3)),
        )
        worker.start()
        self.result.workers[function_name] = worker
        self.aws.rotation.register(created["FunctionArn"], worker.invoke)
        return function_name, {
            "arn": created["FunctionArn"],
            "name": function_name,
            "invokeArn": f"arn:aws:apigateway:{REGION}:lambda:path/functions/{created['FunctionArn']}/invocations",
        }

    def _invocation(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """aws.lambda_.Invocation: invoke the function with the input, synchronously, as the provider does. A failure
        is what `pulumi up` would stop at: kept pending for `Provisioned.apply_pending` (the next update)."""
        function_name = i["functionName"]
        event = json.loads(i["input"])
        try:
            result = self.result.workers[function_name].invoke(event)
        except FunctionError as exc:
            self.result.pending.append(PendingInvocation(name, function_name, event, str(exc)))
            return f"{name}_id", {"_pending": True}
        self.result.invocation_results[name] = result
        return f"{name}_id", {"result": json.dumps(result)}

    def _permission(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        kwargs = {
            "FunctionName": i["function"],
            "StatementId": i.get("statementId") or name,
            "Action": i["action"],
            "Principal": i["principal"],
        }
        for source, key in (("sourceArn", "SourceArn"), ("sourceAccount", "SourceAccount")):
            if i.get(source):
                kwargs[key] = i[source]
        self.client("lambda").add_permission(**kwargs)
        return kwargs["StatementId"], {}

    # --- logs, notifications, schedules, alarms -----------------------------------------------------

    def _log_group(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        logs = self.client("logs")
        kwargs: dict[str, Any] = {"logGroupName": i["name"], "tags": i.get("tags") or {}}
        if i.get("kmsKeyId"):
            kwargs["kmsKeyId"] = i["kmsKeyId"]
        logs.create_log_group(**kwargs)
        if i.get("retentionInDays"):
            logs.put_retention_policy(logGroupName=i["name"], retentionInDays=int(i["retentionInDays"]))
        return i["name"], {"arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{i['name']}"}

    def _topic(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        attributes = {"DisplayName": i.get("displayName", "")}
        if i.get("kmsMasterKeyId"):
            attributes["KmsMasterKeyId"] = i["kmsMasterKeyId"]
        arn = self.client("sns").create_topic(Name=i["name"], Attributes=attributes, Tags=_tags(i.get("tags")))[
            "TopicArn"
        ]
        return arn, {"arn": arn}

    def _subscription(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        arn = self.client("sns").subscribe(TopicArn=i["topic"], Protocol=i["protocol"], Endpoint=i["endpoint"])[
            "SubscriptionArn"
        ]
        return arn, {"arn": arn}

    def _topic_policy(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self.client("sns").set_topic_attributes(TopicArn=i["arn"], AttributeName="Policy", AttributeValue=i["policy"])
        return i["arn"], {}

    def _event_rule(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        kwargs = {"Name": i["name"], "State": i.get("state", "ENABLED"), "Description": i.get("description", "")}
        if i.get("eventPattern"):
            kwargs["EventPattern"] = i["eventPattern"]
        if i.get("scheduleExpression"):
            kwargs["ScheduleExpression"] = i["scheduleExpression"]
        arn = self.client("events").put_rule(**kwargs)["RuleArn"]
        return i["name"], {"arn": arn}

    def _event_target(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        target: dict[str, Any] = {"Id": i.get("targetId") or name, "Arn": i["arn"]}
        transformer = i.get("inputTransformer")
        if transformer:
            target["InputTransformer"] = {
                "InputPathsMap": transformer.get("inputPaths") or {},
                "InputTemplate": transformer["inputTemplate"],
            }
        self.client("events").put_targets(Rule=i["rule"], Targets=[target])
        return f"{i['rule']}-{target['Id']}", {}

    def _schedule(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        target = i["target"]
        api_target: dict[str, Any] = {"Arn": target["arn"], "RoleArn": target["roleArn"]}
        if target.get("input"):
            api_target["Input"] = target["input"]
        arn = self.client("scheduler").create_schedule(
            Name=i["name"],
            ScheduleExpression=i["scheduleExpression"],
            FlexibleTimeWindow={"Mode": i["flexibleTimeWindow"]["mode"]},
            Target=api_target,
            State=i.get("state", "ENABLED"),
            Description=i.get("description", ""),
        )["ScheduleArn"]
        return i["name"], {"arn": arn}

    def _alarm(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "AlarmName": i["name"],
            "AlarmDescription": i.get("alarmDescription", ""),
            "AlarmActions": list(i.get("alarmActions") or []),
            "OKActions": list(i.get("okActions") or []),
            "EvaluationPeriods": int(i["evaluationPeriods"]),
            "ComparisonOperator": i["comparisonOperator"],
            "TreatMissingData": i.get("treatMissingData", "missing"),
        }
        if i.get("datapointsToAlarm"):
            kwargs["DatapointsToAlarm"] = int(i["datapointsToAlarm"])
        if i.get("metricQueries"):
            kwargs["Metrics"] = [_metric_query(query) for query in i["metricQueries"]]
            kwargs["ThresholdMetricId"] = i["thresholdMetricId"]
        else:
            kwargs.update(
                MetricName=i["metricName"],
                Namespace=i["namespace"],
                Statistic=i["statistic"],
                Period=int(i["period"]),
                Threshold=float(i["threshold"]),
                Dimensions=[{"Name": k, "Value": v} for k, v in (i.get("dimensions") or {}).items()],
            )
        cloudwatch = self.client("cloudwatch")
        cloudwatch.put_metric_alarm(**kwargs)
        # A new alarm shows INSUFFICIENT_DATA until CloudWatch evaluates it; the emulator never does, so it must not
        # claim an evaluated state (moto stores new alarms as OK).
        cloudwatch.set_alarm_state(
            AlarmName=i["name"], StateValue="INSUFFICIENT_DATA", StateReason=NOT_EVALUATED_REASON
        )
        return i["name"], {"arn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{i['name']}"}

    def _dashboard(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self.client("cloudwatch").put_dashboard(DashboardName=i["dashboardName"], DashboardBody=i["dashboardBody"])
        return i["dashboardName"], {"dashboardArn": f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{i['dashboardName']}"}

    def _parameter(self, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        tags = [{"Key": key, "Value": value} for key, value in (i.get("tags") or {}).items()]
        self.client("ssm").put_parameter(
            Name=i["name"],
            Value=unsecret(i["value"]),
            Type=i["type"],
            Tier=i.get("tier", "Standard"),
            Description=i.get("description", ""),
            Tags=tags,
        )
        arn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{i['name']}"
        return i["name"], {"arn": arn, "version": 1}


def _metric_query(query: Mapping[str, Any]) -> dict[str, Any]:
    api: dict[str, Any] = {"Id": query["id"], "ReturnData": bool(query.get("returnData", False))}
    if query.get("label"):
        api["Label"] = query["label"]
    if query.get("expression"):
        api["Expression"] = query["expression"]
    metric = query.get("metric")
    if metric:
        api["MetricStat"] = {
            "Metric": {
                "Namespace": metric["namespace"],
                "MetricName": metric["metricName"],
                "Dimensions": [{"Name": k, "Value": v} for k, v in (metric.get("dimensions") or {}).items()],
            },
            "Period": int(metric["period"]),
            "Stat": metric["stat"],
        }
    return api


def provision(
    aws: AwsEmulator,
    *,
    stack: str,
    overrides: Mapping[str, Any],
    function_overrides: Mapping[str, Mapping[str, str]],
) -> Provisioned:
    """Run the program for `stack` (with configuration `overrides`) and create what it declares in `aws`."""
    result = Provisioned()
    mocks = EmulatorMocks(aws, result, function_overrides=function_overrides)
    try:
        result.deployment = run_program(stack, stack_config(stack, dict(overrides)), mocks, account=ACCOUNT)
    except BaseException:
        # Functions provisioned before the failure: leave no process behind (a copy: registrations still in flight
        # on Pulumi's threads may add workers while this runs).
        for worker in list(result.workers.values()):
            worker.stop()
        raise
    return result
