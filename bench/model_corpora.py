"""English paragraphs of two real sources for the model-based benchmarks (DSIR, semantic dedup).

With the shared corpora (``RECIPEFLOW_CORPORA``, see ``common.py``): paragraphs of The Debian
Administrator's Handbook and of Debian Reference, English pages only. Without them: the same
two manuals as trimmed in ``tests/data/`` (``tests/operators/corpora.py``), so the scripts run
from a fresh clone.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import CORPORA, read_jsonl  # noqa: E402


def _paragraphs(text: str, min_words: int) -> list[str]:
    parts = (" ".join(p.split()) for p in re.split(r"\n\s*\n|\n(?=[A-Z])", text))
    return [p for p in parts if len(p.split()) >= min_words]


def two_sources(min_words: int = 20) -> tuple[str, list[str], str, list[str]]:
    """(name A, paragraphs A, name B, paragraphs B), each deduplicated, in file order."""
    handbook, reference = CORPORA / "debian-handbook.jsonl.gz", CORPORA / "debian-reference.jsonl.gz"
    if handbook.is_file() and reference.is_file():
        def english(path: Path) -> list[str]:
            out = [p for r in read_jsonl(path) if r.get("lang") == "en"
                   for p in _paragraphs(r["text"], min_words)]
            return list(dict.fromkeys(out))
        return "debian-handbook", english(handbook), "debian-reference", english(reference)
    from tests.operators.corpora import manual_paragraphs

    return ("debian-handbook (tests/data)", manual_paragraphs("debian-handbook", min_words),
            "debian-reference (tests/data)", manual_paragraphs("debian-reference", min_words))
