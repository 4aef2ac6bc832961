"""The usage monitor: per-key usage and spend metrics, unknown and retired keys, and the janitor."""
