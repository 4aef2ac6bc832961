"""The declared guardrails: what a user writes in the `guardrails` block, and the pure validator that reads it.

`parse_guardrails` takes the block as the stack configuration holds it (JSON text) or as a program passes it (a
mapping), and returns a `DeclaredGuardrails` or raises `GuardrailsConfigError` listing every problem, each naming its
setting (`keyrot:guardrails.rateLimits.gpt-4o.max_tokens_per_1_minute: must not be negative, got -5`).

What a present block means (docs/guardrails.md): the listed rate limits are set (models and fields not listed are
left as OpenAI has them); the hard spend limit, the set of spend alerts and the model permissions are exactly what
the block says, so leaving one out means OpenAI's default (no hard limit, no alerts, every model allowed).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from keyrot.guardrails import constants as c
from keyrot.guardrails.errors import GuardrailsConfigError, Problem

# An amount is at most this many characters (`10000000.00` and room to spare) and this many digits before the point.
_MAX_AMOUNT_CHARS = 32
_MAX_AMOUNT_DIGITS = 12


@dataclass(frozen=True)
class DeclaredAlert:
    """An e-mail alert at `threshold_cents` of monthly spend. Recipients are kept sorted (their order means nothing)."""

    threshold_cents: int
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class DeclaredModels:
    """OpenAI's model permissions: only `model_ids` (allow_list) or every model but them (deny_list)."""

    mode: str  # "allow_list" | "deny_list"
    model_ids: tuple[str, ...]  # sorted, unique


@dataclass(frozen=True)
class DeclaredGuardrails:
    """A validated guardrails block. None / () mean OpenAI's default (no hard limit, no alerts, every model)."""

    rate_limits: Mapping[str, Mapping[str, int]] = field(default_factory=dict, hash=False)
    spend_limit_cents: int | None = None
    spend_alerts: tuple[DeclaredAlert, ...] = ()
    models: DeclaredModels | None = None
    enforce: str = c.ENFORCE_NOTIFY


def parse_guardrails(raw: Any) -> DeclaredGuardrails:
    """Validate a guardrails block (mapping or JSON text); raise GuardrailsConfigError naming every bad setting.

    Pure: reads nothing but `raw`, changes nothing, never echoes a key-shaped value.
    """
    reader = _Reader()
    block = reader.block(raw)
    if block is None:
        raise GuardrailsConfigError(reader.problems)
    rate_limits = reader.rate_limits(block.get(c.RATE_LIMITS))
    spend_limit = reader.usd(c.SPEND_LIMIT_USD, block.get(c.SPEND_LIMIT_USD))
    alerts = reader.alerts(block.get(c.SPEND_ALERTS), spend_limit)
    models = reader.models(block.get(c.MODELS))
    enforce = reader.enforce(block.get(c.ENFORCE))
    if reader.problems:
        raise GuardrailsConfigError(reader.problems)
    return DeclaredGuardrails(rate_limits, spend_limit, alerts, models, enforce)


class _Reader:
    """Collects every problem of one block, so one `pulumi preview` lists them all."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, setting: str, message: str) -> None:
        self.problems.append(Problem(setting, message))

    def block(self, raw: Any) -> Mapping[str, Any] | None:
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except (ValueError, RecursionError):
                self.problem("", _shape_hint("must be an object"))
                return None
        if not isinstance(raw, Mapping):
            self.problem("", _shape_hint(f"must be an object, got {_kind(raw)}"))
            return None
        self.unknown_fields("", raw, c.BLOCK_FIELDS)
        return raw

    def unknown_fields(self, where: str, obj: Mapping[Any, Any], known: tuple[str, ...]) -> None:
        for name in sorted((k for k in obj if k not in known), key=str):
            close = difflib.get_close_matches(str(name), known, n=1) or [
                k for k in known if k.lower() == str(name).lower()
            ]
            hint = f"; did you mean {close[0]}?" if close else f"; known fields: {', '.join(known)}"
            shown = _shown(name)
            self.problem(f"{where}.{shown}" if where else shown, f"is not a guardrails field{hint}")

    # --- rate limits ------------------------------------------------------------------------------------------

    def rate_limits(self, raw: Any) -> dict[str, dict[str, int]]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            self.problem(c.RATE_LIMITS, f"must be an object {{model: {{limit: number}}}}, got {_kind(raw)}")
            return {}
        declared: dict[str, dict[str, int]] = {}
        for model in sorted(raw, key=str):
            if not self.model_id(c.RATE_LIMITS, model):
                continue
            where = c.rate_limit_setting(model)
            limits = raw[model]
            if not isinstance(limits, Mapping):
                self.problem(where, f"must be an object {{limit: number}}, got {_kind(limits)}")
                continue
            if not limits:
                self.problem(where, f"declares no limit; give any of {', '.join(c.RATE_LIMIT_NAMES)}, or remove it")
                continue
            values: dict[str, int] = {}
            for name in sorted(limits, key=str):
                if name not in c.RATE_LIMIT_NAMES:
                    close = difflib.get_close_matches(str(name), c.RATE_LIMIT_NAMES, n=1)
                    hint = f"did you mean {close[0]}?" if close else f"OpenAI's are {', '.join(c.RATE_LIMIT_NAMES)}"
                    self.problem(f"{where}.{_shown(name)}", f"is not an OpenAI rate limit; {hint}")
                    continue
                value = self.count(f"{where}.{name}", limits[name])
                if value is not None:
                    values[name] = value
            if len(values) == len(limits):
                declared[model] = values
        return declared

    def count(self, setting: str, raw: Any) -> int | None:
        """A whole number >= 0 (OpenAI's rate limits are counts). Text of digits is read as the number."""
        value: int | None = None
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif isinstance(raw, str) and raw.strip().lstrip("-").isdigit() and len(raw.strip()) <= 20:
            value = int(raw.strip())
        if value is None:
            self.problem(setting, f"must be a whole number, got {_value(raw)}")
            return None
        if value < 0:
            self.problem(setting, f"must not be negative, got {value}")
            return None
        if value > c.MAX_RATE_LIMIT:
            self.problem(setting, f"must be at most {c.MAX_RATE_LIMIT}, got {value}")
            return None
        return value

    def model_id(self, where: str, raw: Any) -> bool:
        if isinstance(raw, str) and c.MODEL_ID_PATTERN.fullmatch(raw):
            return True
        if isinstance(raw, str) and raw.startswith("sk-"):
            self.problem(where, "names a model that looks like an API key, not a model id (value not shown)")
        else:
            self.problem(
                where,
                f"has a model id that is not well-formed: {_value(raw)} (a model id is letters, digits, '.', '-', "
                "':' and '_', starting with a letter or digit, at most 128 characters, e.g. gpt-4o-mini)",
            )
        return False

    # --- spend ------------------------------------------------------------------------------------------------

    def usd(self, setting: str, raw: Any) -> int | None:
        """Dollars (a number, or its text) as whole cents, more than 0 and at most the bound."""
        if raw is None:
            return None
        text = str(raw).strip() if isinstance(raw, int | float | str) and not isinstance(raw, bool) else None
        amount: Decimal | None = None
        if text is not None and len(text) <= _MAX_AMOUNT_CHARS:
            with localcontext() as context:
                context.prec = 4 * _MAX_AMOUNT_CHARS  # every amount below is exact
                try:
                    amount = Decimal(text)
                except InvalidOperation:
                    amount = None
        if amount is None or not amount.is_finite():
            self.problem(setting, f"must be an amount in US dollars, got {_value(raw)}")
            return None
        if amount > 0 and amount.adjusted() > _MAX_AMOUNT_DIGITS:
            self.problem(setting, f"must be at most {c.usd(c.MAX_USD_CENTS)}, got {_value(raw)}")
            return None
        with localcontext() as context:
            context.prec = 4 * _MAX_AMOUNT_CHARS
            cents = amount.scaleb(2)
            whole = cents == cents.to_integral_value() and (amount == 0 or amount.adjusted() >= -2)
        if not whole:
            self.problem(setting, f"must be in whole cents (at most 2 decimals), got {_value(raw)}")
            return None
        if cents <= 0:
            self.problem(setting, f"must be more than 0 US dollars, got {_value(raw)}")
            return None
        if cents > c.MAX_USD_CENTS:
            self.problem(setting, f"must be at most {c.usd(c.MAX_USD_CENTS)}, got {_value(raw)}")
            return None
        return int(cents)

    def alerts(self, raw: Any, spend_limit: int | None) -> tuple[DeclaredAlert, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list | tuple):
            self.problem(c.SPEND_ALERTS, f"must be a list of {{thresholdUsd, recipients}} objects, got {_kind(raw)}")
            return ()
        if len(raw) > c.MAX_ALERTS:
            self.problem(c.SPEND_ALERTS, f"may hold at most {c.MAX_ALERTS} alerts, got {len(raw)}")
            return ()
        alerts: dict[int, DeclaredAlert] = {}
        for index, item in enumerate(raw):
            where = f"{c.SPEND_ALERTS}[{index}]"
            if not isinstance(item, Mapping):
                self.problem(where, f"must be an object {{thresholdUsd, recipients}}, got {_kind(item)}")
                continue
            self.unknown_fields(where, item, c.ALERT_FIELDS)
            threshold = self.usd(f"{where}.{c.ALERT_THRESHOLD_USD}", item.get(c.ALERT_THRESHOLD_USD))
            if c.ALERT_THRESHOLD_USD not in item or item.get(c.ALERT_THRESHOLD_USD) is None:
                self.problem(f"{where}.{c.ALERT_THRESHOLD_USD}", "is required: the monthly spend in US dollars")
            recipients = self.recipients(f"{where}.{c.ALERT_RECIPIENTS}", item.get(c.ALERT_RECIPIENTS))
            if threshold is None or recipients is None:
                continue
            if spend_limit is not None and threshold > spend_limit:
                self.problem(
                    f"{where}.{c.ALERT_THRESHOLD_USD}",
                    f"{c.usd(threshold)} is above the hard limit {c.SPEND_LIMIT_USD} ({c.usd(spend_limit)}): "
                    "OpenAI stops the project's requests at the hard limit, so this alert would never fire",
                )
                continue
            if threshold in alerts:
                self.problem(f"{where}.{c.ALERT_THRESHOLD_USD}", f"repeats the threshold {c.usd(threshold)}")
                continue
            alerts[threshold] = DeclaredAlert(threshold, recipients)
        return tuple(alerts[threshold] for threshold in sorted(alerts))

    def recipients(self, setting: str, raw: Any) -> tuple[str, ...] | None:
        if not isinstance(raw, list | tuple) or not raw:
            self.problem(setting, f"must be a list of one or more e-mail addresses, got {_kind(raw)}")
            return None
        if len(raw) > c.MAX_RECIPIENTS:
            self.problem(setting, f"may list at most {c.MAX_RECIPIENTS} addresses, got {len(raw)}")
            return None
        ok = True
        for index, address in enumerate(raw):
            if not isinstance(address, str) or not c.EMAIL_PATTERN.fullmatch(address):
                self.problem(f"{setting}[{index}]", f"must be an e-mail address, got {_value(address)}")
                ok = False
        if ok and len({a.lower() for a in raw}) != len(raw):
            self.problem(setting, "lists an address twice")
            ok = False
        return tuple(sorted(raw)) if ok else None

    # --- models and enforcement ------------------------------------------------------------------------------

    def models(self, raw: Any) -> DeclaredModels | None:
        if raw is None:
            return None
        shape = "must be an object with one of allow or deny: a list of model ids"
        if not isinstance(raw, Mapping):
            self.problem(c.MODELS, f"{shape}, got {_kind(raw)}")
            return None
        self.unknown_fields(c.MODELS, raw, (c.MODELS_ALLOW, c.MODELS_DENY))
        given = [name for name in (c.MODELS_ALLOW, c.MODELS_DENY) if name in raw]
        if len(given) != 1:
            self.problem(c.MODELS, f"{shape} (OpenAI keeps either an allow list or a deny list), got {len(given)}")
            return None
        name = given[0]
        where = f"{c.MODELS}.{name}"
        ids = raw[name]
        if not isinstance(ids, list | tuple):
            self.problem(where, f"must be a list of model ids, got {_kind(ids)}")
            return None
        if len(ids) > c.MAX_MODELS:
            self.problem(where, f"may list at most {c.MAX_MODELS} models, got {len(ids)}")
            return None
        valid = [self.model_id(f"{where}[{index}]", model) for index, model in enumerate(ids)]
        if not all(valid):
            return None
        if len(set(ids)) != len(ids):
            self.problem(where, "lists a model twice")
            return None
        if name == c.MODELS_ALLOW and not ids:
            self.problem(where, "is empty, which would block every model; list the models to allow, or use deny")
            return None
        if not ids:  # an empty deny list allows everything: OpenAI's default
            return None
        return DeclaredModels(c.MODEL_MODES[name], tuple(sorted(ids)))

    def enforce(self, raw: Any) -> str:
        if raw is None:
            return c.ENFORCE_NOTIFY
        if raw not in c.ENFORCE_MODES:
            self.problem(c.ENFORCE, f"must be one of {' | '.join(c.ENFORCE_MODES)}, got {_value(raw)}")
            return c.ENFORCE_NOTIFY
        return str(raw)


def _shape_hint(message: str) -> str:
    return f"{message}: the guardrails block, e.g. `pulumi config set --path 'keyrot:guardrails.spendLimitUsd' 100`"


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", tuple: "a list", str: "text", bool: "true/false"}.get(
        type(value), "nothing" if value is None else "a number" if isinstance(value, int | float) else "a value"
    )


def _value(value: Any) -> str:
    """A bad value as messages quote it: short, and never a key-shaped string (the error scrubs, this avoids)."""
    if isinstance(value, str) and "sk-" in value:
        return "a value that looks like an API key (not shown)"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _shown(name: Any) -> str:
    text = str(name)
    if "sk-" in text:
        return "<a name that looks like an API key>"
    return text if len(text) <= 60 else f"{text[:57]}..."
