"""Generate keyrot/pulumi/data/lambda-files.txt: the runtime source files the Lambda archive ships, from git.

The archive is built from the installed package (keyrot.pulumi.archive), which cannot ask git what is tracked, so
the list is generated here, committed, and shipped as package data. Run by `make manifest`
(`python -m infra.lambda_manifest`); tests/infra/test_archive_manifest.py holds the committed file equal to what
this renders from `git ls-files`, so an untracked file never ships and a new tracked module is never left out.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from keyrot.pulumi.archive import LAMBDA_MANIFEST, render_manifest, runtime_manifest

REPO_ROOT = Path(__file__).resolve().parents[1]


def tracked_files(repo_root: Path = REPO_ROOT) -> list[str]:
    """`git ls-files lambdas/keyrot`: the files git tracks (staged included), never what merely sits on disk."""
    result = subprocess.run(
        ["git", "ls-files", "-z", "--", "lambdas/keyrot"],  # noqa: S607 - git from PATH, fixed argv
        cwd=repo_root,
        capture_output=True,
        check=True,
    )
    return [name for name in result.stdout.decode().split("\0") if name]


def main() -> int:
    entries = runtime_manifest(tracked_files())
    LAMBDA_MANIFEST.write_text(render_manifest(entries), encoding="utf-8")
    print(f"{LAMBDA_MANIFEST.name}: {len(entries)} runtime files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
