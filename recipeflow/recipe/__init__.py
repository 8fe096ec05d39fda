"""The recipe: what a user writes, and everything needed to trust it before a run starts.

Pydantic models of a recipe (inputs, nodes, steps, outputs, run settings), the collection and
reporting of its errors (file, line, field path, what was expected, "did you mean"), its
validation, YAML loading with line numbers and ``--set`` overrides, the JSON Schema for
editors, the conversion of Data-Juicer recipes, and per-language settings. Plain Python: it
imports the operator registry and the readers (to convert Data-Juicer datasets), nothing that
runs a recipe.
"""
