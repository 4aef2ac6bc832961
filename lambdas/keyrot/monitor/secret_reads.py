"""Secret reads for the monitor: a secret that refuses to be read is that secret's problem, not the run's; a read
that failed because AWS was briefly unavailable is the run's, never a secret's.

Anyone who may create a secret can tag it for an environment; the monitor may not read it (IAM, a foreign KMS key),
and it must not stop the monitor. Wrapping the store the ledger reads through turns such a refusal into a
`SecretContractError` naming the secret, which the ledger records as a problem of that secret (a finding on-call is
told about) while the other secrets are read as usual.

Any other failure (throttling, a 5xx, a timeout) says nothing about the secret. The ledger may still record it as
the secret's problem, but the monitor must not act on a ledger missing a readable secret: its keys' usage would be
published, once and for good, as an unmanaged key's. The wrapper keeps such failures (`transient`) so the run can
fail its ledger part instead and read everything again on the next run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from keyrot.aws.secrets import SecretDescription, SecretStore
from keyrot.errors import AwsCallError, SecretContractError

# Error codes with which Secrets Manager refuses one secret while the others stay readable.
PER_SECRET_REFUSALS = frozenset(
    {"AccessDeniedException", "DecryptionFailure", "InvalidRequestException", "ResourceNotFoundException"}
)


class SecretReads(SecretStore):
    """`inner`'s reads: a per-secret refusal raised as `SecretContractError` for that secret, any other failure
    raised as it is and kept in `transient`."""

    def __init__(self, inner: SecretStore) -> None:  # no super().__init__(): every call goes to `inner`
        self._inner = inner
        self.transient: list[AwsCallError] = []

    def iter_tagged(self, filters: list[dict[str, Any]]) -> Iterator[Mapping[str, Any]]:
        return self._inner.iter_tagged(filters)

    def describe(self, secret_id: str) -> SecretDescription:
        try:
            return self._inner.describe(secret_id)
        except AwsCallError as exc:
            self._sort(exc)
            raise

    def get_string(self, secret_id: str, *, stage: str | None, version_id: str | None = None) -> str | None:
        try:
            return self._inner.get_string(secret_id, stage=stage, version_id=version_id)
        except AwsCallError as exc:
            self._sort(exc)
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _sort(self, exc: AwsCallError) -> None:
        """Raise a problem of the secret when `exc` is a refusal of that one secret; else keep `exc` (it stands)."""
        if exc.code in PER_SECRET_REFUSALS:
            raise SecretContractError(f"the monitor may not read it ({exc.code} on {exc.operation})") from exc
        self.transient.append(exc)
