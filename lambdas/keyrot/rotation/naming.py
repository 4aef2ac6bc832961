"""Names of the OpenAI service accounts keyrot mints (defined in keyrot.inventory.naming, re-exported here)."""

from keyrot.inventory.naming import ServiceAccountName

__all__ = ["ServiceAccountName"]
