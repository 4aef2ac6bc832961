"""The key inventory: every key and keyrot service account of an environment, each with exactly one state.

Rotation, the janitor, the monitor and the CLI ask it what a key is; none re-derives the answer.
"""

from keyrot.inventory.classify import ATTEMPT_BOUND_SECONDS, classify, promoted_at, promotion_time
from keyrot.inventory.load import (
    add_unlabelled_versions,
    clear_cache,
    load_inventory,
    read_openai,
    read_secrets,
    record_of,
    remember,
)
from keyrot.inventory.model import (
    KEYROT_LIVE_STATES,
    DisplacedReason,
    Inventory,
    InventoryEntry,
    KeyMeta,
    KeyState,
    OpenAIListing,
    SecretInventory,
    SecretRecord,
    VersionRecord,
)
from keyrot.inventory.naming import ServiceAccountName

__all__ = [
    "ATTEMPT_BOUND_SECONDS",
    "KEYROT_LIVE_STATES",
    "DisplacedReason",
    "Inventory",
    "InventoryEntry",
    "KeyMeta",
    "KeyState",
    "OpenAIListing",
    "SecretInventory",
    "SecretRecord",
    "ServiceAccountName",
    "VersionRecord",
    "add_unlabelled_versions",
    "classify",
    "clear_cache",
    "load_inventory",
    "promoted_at",
    "promotion_time",
    "read_openai",
    "read_secrets",
    "record_of",
    "remember",
]
