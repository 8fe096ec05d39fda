"""Small real text corpora for the model-based operators' tests, from what ships with the repo
and with Python itself (a user's clone has both; nothing is downloaded).

* the English pages of the bundled Debian handbook sample (recipes/samples/), cut into
  paragraphs: system-administration prose;
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
