"""Per-language settings, FineWeb2 style: one YAML file per language code mapping operator
names to parameters (thresholds, stop words...). A node with ``language: de`` takes its
operators' defaults from ``de.yaml``; what the recipe writes in a step wins.

The bundled files live in ``recipeflow/operators/data/languages/``; a recipe's
``language_settings`` points to another folder (any fsspec path) with files of the same form.
"""

from __future__ import annotations

import difflib
import functools
import os
from typing import Any

import fsspec
import yaml

BUNDLED = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "operators", "data", "languages"
)


class UnknownLanguage(ValueError):
    def __init__(self, language: str, folder: str, known: list[str]):
        matches = difflib.get_close_matches(language, known, n=1)
        self.suggestion = matches[0] if matches else None
        super().__init__(
            f"no settings file for language {language!r} in {folder} "
            f"(languages there: {', '.join(known) or 'none'}); add {language}.yaml or pick one of them"
        )


def available(folder: str | None = None) -> list[str]:
    """Language codes that have a settings file in ``folder`` (default: bundled)."""
    folder = folder or BUNDLED
    fs, path = fsspec.core.url_to_fs(folder)
    try:
        names = fs.ls(path, detail=False)
    except FileNotFoundError:
        return []
    return sorted(
        os.path.basename(n)[: -len(".yaml")] for n in names if str(n).endswith(".yaml")
    )


@functools.lru_cache(maxsize=64)
def load(language: str, folder: str | None = None) -> dict[str, dict[str, Any]]:
    """Operator name -> default parameters for ``language``."""
    folder = folder or BUNDLED
    url = f"{folder.rstrip('/')}/{language}.yaml"
    try:
        with fsspec.open(url, "rt", encoding="utf-8") as f:
            settings = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise UnknownLanguage(language, folder, available(folder)) from None
    if not isinstance(settings, dict) or not all(
        isinstance(v, dict) for v in settings.values()
    ):
        raise ValueError(
            f"{url}: a settings file maps operator names to parameter mappings, "
            "e.g. `gopher_quality_filter: {min_avg_word_length: 3}`"
        )
    return settings
