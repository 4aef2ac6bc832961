"""A platform team's existing program: an application role, and now keyrot rotating the application's OpenAI key.

Everything keyrot needs is one KeyrotEnvironment; the application's role is passed as an Output, so keyrot attaches
the key's reader policy to it and its secret's policy lets it (and nobody else) read the key.
"""

import json

import pulumi
import pulumi_aws as aws

from keyrot.pulumi import KeyArgs, KeyrotEnvironment, KeyrotEnvironmentArgs

config = pulumi.Config()
stack = pulumi.get_stack()

# --- what the program already had ----------------------------------------------------------------------------------
app_role = aws.iam.Role(
    "chat-backend",
    name=f"chat-backend-{stack}",
    assume_role_policy=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
    ),
)

# --- what keyrot adds ----------------------------------------------------------------------------------------------
openai_keys = KeyrotEnvironment(
    "openai-keys",
    KeyrotEnvironmentArgs(
        environment=stack,
        openai_project_id=config.require("openaiProjectId"),
        keys=[KeyArgs(name="chat-backend", reader_role_arns=[app_role.arn])],
        oncall_emails=[config.require("oncallEmail")],
        rotation_schedule="rate(30 days)",
        dashboard=True,  # off by default (3 USD a month plus about 0.90 per key); on-call's view of every key
        production=stack == "prod",
    ),
)

# The application reads its key from this secret (keyrot.client.KeyProvider, or the AWS caching client).
pulumi.export("chatBackendKeySecretArn", openai_keys.key_secret_arns.apply(lambda arns: arns["chat-backend"]))
pulumi.export("keyrotDashboard", openai_keys.dashboard_url)
