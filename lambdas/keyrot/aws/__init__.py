"""Thin, typed adapters over the AWS APIs keyrot uses."""
