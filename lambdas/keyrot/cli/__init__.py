"""The operator CLI (`keyrot`). Never imported by the Lambdas: the Lambda archive excludes this package."""

from __future__ import annotations


def main() -> None:
    """Console-script entry point."""
    from keyrot.cli.app import app

    app(prog_name="keyrot")


__all__ = ["main"]
