"""Where the CLI sends the organization admin key: OpenAI's API unless the operator says otherwise, over https.

The endpoint is --openai-base-url, else $KEYROT_OPENAI_ADMIN_BASE_URL, else https://api.openai.com/v1. The CLI never
reads OPENAI_BASE_URL: applications point it at gateways and proxies, which must never see the admin key. Plain
http is refused except to this machine (127.0.0.0/8, ::1, localhost), and a host that is not OpenAI's is named in a
warning before the key is sent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

from keyrot.cli.errors import UsageError
from keyrot.constants import DEFAULT_OPENAI_BASE_URL, ENV_OPENAI_ADMIN_BASE_URL
from keyrot.redaction import scrub

OPENAI_DOMAIN = "openai.com"
_SHOWN_LENGTH = 80


def resolve(given: str | None, environ: Mapping[str, str]) -> str:
    """The endpoint to use, checked: the option, else the keyrot variable, else OpenAI's API."""
    if given:
        return check(given, source="--openai-base-url")
    from_environment = environ.get(ENV_OPENAI_ADMIN_BASE_URL, "").strip()
    if from_environment:
        return check(from_environment, source=f"${ENV_OPENAI_ADMIN_BASE_URL}")
    return DEFAULT_OPENAI_BASE_URL


def check(value: str, *, source: str = "--openai-base-url") -> str:
    """`value` without a trailing slash; UsageError naming `source` unless it is https (or http to loopback)."""
    shown = scrub(repr(value[:_SHOWN_LENGTH]))
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname or ""
        _ = parts.port  # raises ValueError on a port that is not a number
    except ValueError as exc:
        raise UsageError(f"{source} is not a URL: {shown}") from exc
    if parts.scheme not in ("https", "http") or not host:
        raise UsageError(f"{source} must be an https URL, got {shown}")
    if parts.username is not None or parts.password is not None:
        raise UsageError(f"{source} must not carry credentials, got {scrub(parts.scheme)}://…@{host}")
    if parts.query or parts.fragment:
        raise UsageError(f"{source} must not have a query or fragment, got {shown}")
    if parts.scheme == "http" and not is_loopback(host):
        raise UsageError(
            f"{source} must use https: the admin key would cross the network in clear text to {host} "
            "(plain http is allowed only to this machine: 127.0.0.1, ::1, localhost)"
        )
    return value.strip().rstrip("/")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_openai(url: str) -> bool:
    """True when the URL's host is OpenAI's own (openai.com or a subdomain of it)."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host == OPENAI_DOMAIN or host.endswith(f".{OPENAI_DOMAIN}")


def foreign_host_warning(url: str) -> str | None:
    """The warning to show before the admin key goes to `url`, or None when it goes to OpenAI."""
    if is_openai(url):
        return None
    host = urlsplit(url).hostname
    return (
        f"warning: the OpenAI admin key will be sent to {host}, which is not OpenAI's API "
        f"(set by --openai-base-url or ${ENV_OPENAI_ADMIN_BASE_URL})"
    )
