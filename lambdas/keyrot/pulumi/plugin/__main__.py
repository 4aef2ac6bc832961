"""keyrot's Pulumi plugin: serves KeyrotEnvironment to programs in any language (`pulumi package add`).

PulumiPlugin.yaml at the repository root points here. The schema is inferred from the component's type annotations
and docstrings (Pulumi's component analyzer); this directory holds nothing but this file, so running it shadows no
module.
"""

from pulumi.provider.experimental import component_provider_host

import keyrot
from keyrot.pulumi.environment import KeyrotEnvironment

PLUGIN_NAME = "keyrot"

if __name__ == "__main__":
    component_provider_host([KeyrotEnvironment], name=PLUGIN_NAME, version=keyrot.__version__)
