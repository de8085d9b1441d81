"""The factory's own commands: `factory data`, `factory train`, `factory predict`."""
