"""HTTP transport to the OpenAI API: timeouts, bounded retries with backoff and jitter, typed errors.

Retries (tenacity) cover 429 rate limits, 5xx, connection failures and garbled success bodies. Retry-After is
honoured up to a cap; a wait longer than the cap or than the remaining time budget ends the retries at once.
Requests that create things may thus run twice: ApiResponse.attempts tells the caller to look for a twin.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests
import urllib3
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

from keyrot.constants import DEFAULT_OPENAI_BASE_URL
from keyrot.openai_admin.errors import (
    BILLING_ERROR_CODES,
    BadRequestError,
    BillingLimitError,
    InvalidKeyError,
    MalformedResponseError,
    NotFoundError,
    OpenAIConnectionError,
    OpenAIError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
)
from keyrot.redaction import redact_key, scrub

USER_AGENT = "keyrot/0.1 (+https://github.com/keyrot/keyrot)"
_MAX_MESSAGE = 400
# "sk-" at the start of a word, up to whitespace or a quote: every key and every masked echo of one.
_KEY_LIKE_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])sk-[^\s'\"]+")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on retrying one call: attempts, total time, backoff shape and the longest Retry-After honoured.

    `max_elapsed_seconds` is a true bound on the whole call: an attempt is only started if it can end in time even
    if it runs into its connect and read timeouts.
    """

    max_attempts: int = 5
    max_elapsed_seconds: float = 30.0
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 8.0
    jitter_seconds: float = 0.5
    max_retry_after_seconds: float = 20.0


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass(frozen=True)
class Timeouts:
    connect_seconds: float = 3.05
    read_seconds: float = 10.0  # the admin, usage and models endpoints answer in well under a second

    @property
    def worst_attempt_seconds(self) -> float:
        return self.connect_seconds + self.read_seconds


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any = field(repr=False)  # a create's body holds the new key's value
    headers: Mapping[str, str] = field(repr=False)
    attempts: int


class OpenAITransport:
    """Sends one logical request, retrying as the policy allows, and returns parsed JSON or raises OpenAIError."""

    def __init__(
        self,
        base_url: str = DEFAULT_OPENAI_BASE_URL,
        *,
        session: requests.Session | None = None,
        timeouts: Timeouts = Timeouts(),
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        deadline: float | None = None,
    ) -> None:
        """`deadline` (a `clock` reading): no retry is started that could end after it, such as the end of the
        Lambda invocation, so a failing call ends with keyrot's own typed error rather than a killed process."""
        self.base_url = base_url.rstrip("/")
        self._session = session or requests.Session()
        self._timeouts = timeouts
        self._retry = retry
        self._sleep = sleep
        self._clock = clock
        self._deadline = deadline

    def request(
        self,
        method: str,
        path: str,
        *,
        bearer: str,
        operation: str,
        params: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> ApiResponse:
        """Send `method path` authenticated with `bearer`. `operation` names the call in errors and logs.

        A call that is not `idempotent` (a create) is retried only when the failed attempt provably did not take
        effect (a 429, or no connection made): a 5xx, a timeout, a dropped connection or a garbled answer may follow
        a create that OpenAI carried out, and a blind retry would create a twin nobody can see the key of.
        """
        policy = self._retry
        started = self._clock()

        def should_stop(state: RetryCallState) -> bool:
            if state.attempt_number >= policy.max_attempts:
                return True
            elapsed = self._clock() - started
            next_attempt_ends = elapsed + state.upcoming_sleep + self._timeouts.worst_attempt_seconds
            if self._deadline is not None and started + next_attempt_ends > self._deadline:
                return True
            return next_attempt_ends > policy.max_elapsed_seconds

        def is_retryable(exc: BaseException) -> bool:
            if not isinstance(exc, OpenAIError) or not exc.retryable:
                return False
            if not idempotent and not _provably_not_applied(exc):
                return False
            return exc.retry_after is None or exc.retry_after <= policy.max_retry_after_seconds

        backoff = wait_exponential_jitter(
            multiplier=policy.backoff_initial_seconds, max=policy.backoff_max_seconds, jitter=policy.jitter_seconds
        )

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            retry_after = getattr(exc, "retry_after", None)
            return float(retry_after) if retry_after is not None else backoff(state)

        retrying = Retrying(
            stop=should_stop, wait=wait, retry=retry_if_exception(is_retryable), sleep=self._sleep, reraise=True
        )
        for attempt in retrying:
            with attempt:
                status, body, headers = self._send_once(method, path, bearer, operation, params, json_body)
            if not attempt.retry_state.outcome or not attempt.retry_state.outcome.failed:
                return ApiResponse(status, body, headers, attempts=attempt.retry_state.attempt_number)
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover

    def _send_once(
        self,
        method: str,
        path: str,
        bearer: str,
        operation: str,
        params: Mapping[str, Any] | None,
        json_body: Mapping[str, Any] | None,
    ) -> tuple[int, Any, Mapping[str, str]]:
        url = f"{self.base_url}{path}"
        headers = {"Authorization": f"Bearer {bearer}", "User-Agent": USER_AGENT, "Accept": "application/json"}
        try:
            response = self._session.request(
                method,
                url,
                headers=headers,
                params=_query(params),
                json=json_body,
                timeout=(self._timeouts.connect_seconds, self._timeouts.read_seconds),
            )
        except requests.ConnectTimeout as exc:
            raise OpenAIConnectionError(f"OpenAI {operation}: timed out connecting", sent=False) from exc
        except requests.Timeout as exc:
            raise OpenAIConnectionError(f"OpenAI {operation}: timed out ({type(exc).__name__})") from exc
        except requests.RequestException as exc:
            raise OpenAIConnectionError(
                f"OpenAI {operation}: connection failed ({type(exc).__name__})", sent=not _never_connected(exc)
            ) from exc
        request_id = response.headers.get("x-request-id")
        if 200 <= response.status_code < 300:
            try:
                body = response.json()
            except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than the decoder goes
                raise MalformedResponseError(
                    f"OpenAI {operation}: HTTP {response.status_code} with a body that is not JSON",
                    status=response.status_code,
                    request_id=request_id,
                ) from None
            return response.status_code, body, response.headers
        raise error_from_response(response, operation=operation, secrets=(bearer,))


def path_segment(value: str) -> str:
    """One URL path segment; ids are opaque, so quote them."""
    return quote(value, safe="")


def _provably_not_applied(exc: OpenAIError) -> bool:
    """A 429 (refused before any work) or a request that never left: retrying cannot repeat an effect."""
    return isinstance(exc, RateLimitedError) or (isinstance(exc, OpenAIConnectionError) and not exc.sent)


def _never_connected(exc: requests.RequestException) -> bool:
    """Connection refused, DNS or connect-phase failure: urllib3 reports it as NewConnectionError (in MaxRetryError)."""
    reason: BaseException | None = exc
    while reason is not None:
        if isinstance(reason, urllib3.exceptions.NewConnectionError):
            return True
        cause = getattr(reason, "reason", None)
        if cause is None and reason.args and isinstance(reason.args[0], BaseException):
            cause = reason.args[0]
        reason = cause
    return False


def _query(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Booleans as OpenAI spells them (true/false, as openai-python sends them), not Python's True/False."""
    if params is None:
        return None

    def spell(value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list | tuple):
            return [spell(item) for item in value]
        return value

    return {name: spell(value) for name, value in params.items()}


def error_from_response(response: requests.Response, *, operation: str, secrets: tuple[str, ...]) -> OpenAIError:
    """Map an error response to its typed OpenAIError with a scrubbed message."""
    status = response.status_code
    code: str | None = None
    error_type: str | None = None
    param: str | None = None
    message = ""
    try:
        payload = response.json()
    except (ValueError, RecursionError):
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        code = error.get("code") if isinstance(error.get("code"), str) else None
        error_type = error.get("type") if isinstance(error.get("type"), str) else None
        message = error["message"] if isinstance(error.get("message"), str) else ""
        param = _scrub_message(error["param"], secrets)[:100] if isinstance(error.get("param"), str) else None
    else:
        message = "response body is not an OpenAI error object"
    # Scrub before truncating: a cut through a secret would leave a slice that no longer matches it.
    text = _scrub_message(f"OpenAI {operation}: HTTP {status}{f' {code}' if code else ''}: {message}", secrets)
    text = text if len(text) <= _MAX_MESSAGE else f"{text[:_MAX_MESSAGE]}…"
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "error_type": error_type,
        "request_id": response.headers.get("x-request-id"),
        "param": param,
    }
    if status == 401 and code == "invalid_api_key":
        return InvalidKeyError(text, **kwargs)
    if status in (401, 403):
        return PermissionDeniedError(text, **kwargs)
    if status == 404:
        return NotFoundError(text, **kwargs)
    if status == 429:
        # Quota errors carry type insufficient_quota too; either marks a 429 that waiting cannot cure.
        if code in BILLING_ERROR_CODES or error_type in BILLING_ERROR_CODES:
            return BillingLimitError(text, **kwargs)
        return RateLimitedError(text, retry_after=_retry_after(response.headers), **kwargs)
    if status >= 500:
        return ServerError(text, retry_after=_retry_after(response.headers), **kwargs)
    # Any other 4xx, JSON or not (a proxy's HTML page): the request itself was refused, and retrying cannot help.
    return BadRequestError(text, **kwargs)


def _scrub_message(text: str, secrets: tuple[str, ...]) -> str:
    """scrub(), plus any token that starts like a key: OpenAI's masked echoes vary ("sk-proj-****abcd",
    "sk-...****abcd", "sk-abc…wxyz") and may hold characters the key-shape pattern stops at."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, redact_key(secret))
    return scrub(_KEY_LIKE_TOKEN.sub(lambda match: redact_key(match.group(0)), text))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from retry-after-ms or Retry-After (seconds or HTTP date); None when absent or unreadable."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())
