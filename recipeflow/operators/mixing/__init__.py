"""Shared machinery of the mixing selectors: token budgets, phases, repeats."""
