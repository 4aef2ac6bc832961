"""keyrot's reference Pulumi program: read the stack's `keyrot:*` configuration, build one KeyrotEnvironment, export
its outputs. One stack is one environment; stacks share nothing but this code.

Everything else lives in the installed package (`keyrot.pulumi`), exactly as another program would use it: nothing
here touches `sys.path`, and infra/ holds no module a library could be shadowed by.
"""

from pathlib import Path

import pulumi

from keyrot.pulumi import KeyrotEnvironment
from keyrot.pulumi.config import load_config
from keyrot.pulumi.environment import args_from_config

# The archive and the wheel cache go to the repository's build/ (Pulumi runs this with infra/ as working directory).
BUILD_DIR = Path(__file__).resolve().parents[1] / "build"

config = load_config()
args = args_from_config(config)
args["build_dir"] = str(BUILD_DIR)
# Stacks deployed before keyrot 0.2 declared these resources at the top level: aliases keep their identity.
args["adopt_standalone_stack"] = True
environment = KeyrotEnvironment("keyrot", args)

# Names and ARNs only: never a key value.
# Optional outputs only when there is something to name (a dashboard, declared guardrails).
present = {"dashboardUrl": config.dashboard, "guardrailsFunctionName": config.guardrails is not None}
for output_name, value in environment.outputs().items():
    if present.get(output_name, True):
        pulumi.export(output_name, value)
