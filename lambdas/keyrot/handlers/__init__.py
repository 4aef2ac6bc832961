"""Lambda entry points. Each handler parses its event, builds its dependencies and delegates."""
