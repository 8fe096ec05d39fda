"""The generation cache: what a model wrote for a chunk, under a key naming everything that
decided it (the chunk, its language, the model, the template, the sampling parameters).

One small JSON file per generation, ``<root>/<key[:2]>/<key>.json``, on any fsspec storage.
A batch is read and written with one ``cat``/``pipe`` call each, which s3fs runs concurrently.
Entries are immutable: a key names one generation, so concurrent writers write the same bytes.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

import fsspec


class GenerationCache:
    def __init__(self, root: str):
        self.root = root.rstrip("/")
        self.fs, self.path = fsspec.core.url_to_fs(self.root)

    def _file(self, key: str) -> str:
        return f"{self.path}/{key[:2]}/{key}.json"

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The cached entries among ``keys`` (absent keys are left out)."""
        files = {self._file(k): k for k in dict.fromkeys(keys)}
        if not files:
            return {}
        found = self.fs.cat(list(files), on_error="omit")
        out = {}
        for name, data in found.items():
            key = files.get(name) or files.get(self.fs._strip_protocol(name))
            if key is None or isinstance(data, Exception):
                continue
            try:
                out[key] = json.loads(data)
            except ValueError:  # a write cut short (a killed worker): generate again
                continue
        return out

    def put_many(self, entries: dict[str, dict[str, Any]]) -> None:
        if not entries:
            return
        for folder in {self._file(k).rsplit("/", 1)[0] for k in entries}:
            self.fs.makedirs(folder, exist_ok=True)
        self.fs.pipe(
            {self._file(k): json.dumps(v, sort_keys=True).encode("utf-8") for k, v in entries.items()}
        )
