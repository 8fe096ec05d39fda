"""Small real text corpora for the model-based operators' tests, from what ships with the repo
and with Python itself (a user's clone has both; nothing is downloaded).

* the English pages of the bundled Debian handbook sample (recipes/samples/), cut into
  paragraphs: system-administration prose;
* the English pages of the trimmed Debian Administrator's Handbook and Debian Reference in
  tests/data/ (two manuals of one project: similar vocabulary, different authors and purpose);
* docstrings of Python standard-library modules, classes and functions, cut into paragraphs:
  programming reference prose.
"""

from __future__ import annotations

import gzip
import importlib
import inspect
import json
import re
from pathlib import Path

HANDBOOK = Path(__file__).resolve().parents[2] / "recipes" / "samples" / "debian-handbook-sample.jsonl.gz"
TEST_DATA = Path(__file__).resolve().parents[1] / "data"  # see its NOTICE

_STDLIB_MODULES = (
    "argparse", "asyncio", "base64", "bisect", "calendar", "collections", "configparser", "csv",
    "datetime", "decimal", "difflib", "email.message", "enum", "fractions", "ftplib",
    "functools", "gzip", "hashlib", "heapq", "http.client", "http.server", "imaplib", "inspect",
    "io", "ipaddress", "itertools", "json", "logging", "mailbox", "os", "pathlib", "pickle",
    "pprint", "queue", "random", "re", "sched", "secrets", "shelve", "shutil", "smtplib",
    "socket", "sqlite3", "statistics", "string", "subprocess", "tarfile", "tempfile",
    "textwrap", "threading", "timeit", "tokenize", "unittest", "urllib.parse",
    "urllib.request", "uuid", "wave", "weakref", "xml.dom.minidom", "zipfile",
)


def _paragraphs(text: str, min_words: int) -> list[str]:
    parts = (" ".join(p.split()) for p in re.split(r"\n\s*\n", text))
    return [p for p in parts if len(p.split()) >= min_words]


def handbook_paragraphs(min_words: int = 20, lang: str = "en") -> list[str]:
    with gzip.open(HANDBOOK, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    out: list[str] = []
    for row in rows:
        if row["lang"] == lang:
            out.extend(_paragraphs(row["text"], min_words))
    return list(dict.fromkeys(out))


def manual_paragraphs(name: str, min_words: int = 20) -> list[str]:
    """English paragraphs of ``debian-handbook`` or ``debian-reference`` from tests/data."""
    with gzip.open(TEST_DATA / f"{name}.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    out: list[str] = []
    for row in rows:
        if row["lang"] == "en":  # one paragraph a line in these extractions
            out.extend(" ".join(line.split()) for line in row["text"].split("\n")
                       if len(line.split()) >= min_words)
    return list(dict.fromkeys(out))


def stdlib_paragraphs(min_words: int = 20) -> list[str]:
    out: list[str] = []
    for name in _STDLIB_MODULES:
        module = importlib.import_module(name)
        docs = [inspect.getdoc(module) or ""]
        for attribute, value in sorted(vars(module).items()):
            if not attribute.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value)):
                if getattr(value, "__module__", None) == module.__name__:
                    docs.append(inspect.getdoc(value) or "")
        for doc in docs:
            out.extend(_paragraphs(doc, min_words))
    return list(dict.fromkeys(out))


def _near_copy(text: str, rng, kind: str) -> str:
    """A near copy of ``text``: ``edit`` drops ~8% of its words and changes a few cases;
    ``reorder`` swaps sentence order and adds a short boilerplate phrase."""
    if kind == "edit":
        words = text.split()
        kept = [w for w in words if rng.random() > 0.08] or words
        return " ".join(w.lower() if rng.random() < 0.1 else w for w in kept)
    sentences = re.split(r"(?<=[.!?])\s+", text)
    if len(sentences) > 1:
        i = int(rng.integers(len(sentences) - 1))
        sentences[i], sentences[i + 1] = sentences[i + 1], sentences[i]
    return " ".join(sentences) + " " + ["(Read more below.)", "See also the next section.",
                                        "Updated recently."][int(rng.integers(3))]


def _without_natural_duplicates(texts: list[str], overlap: float = 0.1) -> list[str]:
    """``texts`` less those sharing over ``overlap`` of their word 4-grams with an earlier one
    (the standard library documents some things twice, in nearly the same words): so the only
    duplicates in a planted set are the planted ones."""
    from collections import Counter

    kept: list[str] = []
    owners: dict[tuple[str, ...], list[int]] = {}
    for text in texts:
        words = re.findall(r"\w+", text.lower())
        grams = {tuple(words[i:i + 4]) for i in range(max(len(words) - 3, 1))}
        shared = Counter(k for g in grams for k in owners.get(g, ()))
        if any(count > overlap * len(grams) for count in shared.values()):
            continue
        for g in grams:
            owners.setdefault(g, []).append(len(kept))
        kept.append(text)
    return kept


def planted_duplicates(originals: int, copied: int, seed: int = 0):
    """Documents with planted near copies: (texts, group of each text). ``originals`` distinct
    paragraphs (handbook and standard-library docs alternating), then ``copied`` of them get
    one near copy each (half word edits, half reorderings), appended at the end; a text's
    group is the index of the original it was made from."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pool = [t for pair in zip(handbook_paragraphs(), stdlib_paragraphs()) for t in pair]
    pool += stdlib_paragraphs()[len(handbook_paragraphs()):]
    pool = _without_natural_duplicates(pool)
    if originals > len(pool):
        raise ValueError(f"only {len(pool)} distinct paragraphs ship with the repo and Python")
    texts = pool[:originals]
    groups = list(range(originals))
    for number, source in enumerate(sorted(rng.choice(originals, copied, replace=False).tolist())):
        texts.append(_near_copy(texts[source], rng, "edit" if number % 2 == 0 else "reorder"))
        groups.append(source)
    return texts, groups
