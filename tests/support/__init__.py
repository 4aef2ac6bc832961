"""Shared test helpers (spec loading and validation)."""
