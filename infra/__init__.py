"""keyrot's Pulumi program. `__main__.py` wires the components; everything else is importable and testable."""
