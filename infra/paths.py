"""Filesystem locations the program needs, derived from this file: never from the working directory.

Pulumi runs the program with `infra/` as its working directory (`main: infra/` in Pulumi.yaml); tests run it from
the repository root. Both see the same paths.
"""

from __future__ import annotations

from pathlib import Path

INFRA_DIR = Path(__file__).resolve().parent
REPO_ROOT = INFRA_DIR.parent
LAMBDAS_DIR = REPO_ROOT / "lambdas"
LAMBDA_PACKAGE_DIR = LAMBDAS_DIR / "keyrot"
LAMBDA_REQUIREMENTS = LAMBDAS_DIR / "requirements.txt"
BUILD_DIR = REPO_ROOT / "build"
WHEEL_CACHE_DIR = BUILD_DIR / "wheels"
PROJECT_FILE = REPO_ROOT / "Pulumi.yaml"
PYPROJECT = REPO_ROOT / "pyproject.toml"
REQUIREMENTS_DIR = REPO_ROOT / "requirements"
# The locked closure of every extra (tests, rehearsal, benchmarks) and of what a deployer installs.
DEV_LOCK = REQUIREMENTS_DIR / "dev.txt"
DEPLOY_LOCK = REQUIREMENTS_DIR / "deploy.txt"
