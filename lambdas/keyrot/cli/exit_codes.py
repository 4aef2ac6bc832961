"""The CLI's exit codes. Scripts rely on them: never renumber, only add."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    # A command failed, found drift (audit), or reported a failing check (doctor); a confirmation was declined.
    FAILURE = 1
    # Bad options or arguments; a confirmation needed on a non-interactive stdin without --yes; empty input.
    USAGE = 2
    # No AWS credentials (or region) could be found, or AWS rejected them as invalid or expired.
    NO_CREDENTIALS = 3
    # Unknown environment or key in this account and region (often: the wrong --region or --profile).
    NOT_FOUND = 4
    # AWS refused an action to this identity; the message names the action.
    ACCESS_DENIED = 5
    # A rotation failed, was abandoned or did not finish in time; an emergency revocation did not complete.
    ROTATION_FAILED = 6
    # OpenAI was unreachable or failed, or it rejected the admin key.
    OPENAI = 7
    # Interrupted (Ctrl-C), as shells report SIGINT.
    INTERRUPTED = 130


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success (audit: no drift; doctor: no failing check)",
    ExitCode.FAILURE: "failure, drift found (audit), a failing check (doctor), or a declined confirmation",
    ExitCode.USAGE: "usage error: bad option, missing --yes on a non-interactive stdin, empty input",
    ExitCode.NO_CREDENTIALS: "no AWS credentials or region, or AWS rejected the credentials",
    ExitCode.NOT_FOUND: "unknown environment or key in this account and region",
    ExitCode.ACCESS_DENIED: "AWS denied an action to this identity (the message names it)",
    ExitCode.ROTATION_FAILED: "rotation failed, was abandoned or timed out; emergency revocation incomplete",
    ExitCode.OPENAI: "OpenAI unreachable or failing, or it rejected the admin key",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}
