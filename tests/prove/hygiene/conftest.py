"""The hygiene checker's own tests run pytest inside pytest, with the `pytester` plugin.

pytest refuses `pytest_plugins` in a conftest below the rootdir, so this conftest loads `pytester` when this
directory is collected instead: the rest of the suite runs without it unless this directory is part of the run.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")
