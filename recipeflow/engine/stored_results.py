"""Where a finished unit of work's result is stored, and reading it back.

A shard's result is in one of two files. A shard done in a batch (:mod:`.packs`) has it in the
result file of its pack, ``packs/<address>/result.json``, beside every other shard of that pack:
one file written per pack, where a ``result.json`` per shard cost more than a cheap filter's
work at thousands of small shards (a folder, a file and a rename each). A unit of work done
alone (a GPU pool's stage task, a resolve, an index) has its own entry's ``result.json``.

The flow run finds a stage's shards all at once (:meth:`StoredResults.locate`: one listing of
the packs, one read of each pack's result file, then the entries' own files for shards no pack
holds) and hands each batch task where its shards' results are, so a worker reads only those.
"""

from __future__ import annotations

from typing import Any, Sequence

from recipeflow.engine.cache_address import PACKS, RESULT, CacheEntry
from recipeflow.io import storage, writers

RESULTS_FIELD = "results"  # in a pack's result file: shard entry key -> that shard's result


class StoredResults:
    """The stored results under one cache root, read at most once per file."""

    def __init__(self, work_root: str, reuse: bool = True):
        self.work_root = work_root
        self.reuse = reuse  # off: nothing is found, every unit of work is done again
        self._packed: dict[str, str] | None = None  # shard entry key -> its pack's result file
        self._read: dict[str, Any] = {}  # result file -> its contents

    def packed(self) -> dict[str, str]:
        """Every finished pack's shards: entry key -> the pack's result file."""
        if self._packed is None:
            self._packed = {}
            folder = storage.join(self.work_root, PACKS)
            for name in storage.list_dir(folder):
                if name == storage.STAGING_DIR:  # packs being written
                    continue
                url = storage.join(folder, name, RESULT)
                try:  # read, not kept: the flow run holds only keys, whatever the cache holds
                    contents = storage.read_json(url)
                except FileNotFoundError:
                    continue
                # A pack written before its result file held its shards' results: each shard
                # has its own result.json instead.
                for key in contents.get(RESULTS_FIELD, ()):
                    self._packed[key] = url
        return self._packed

    def locate(self, entries: Sequence[CacheEntry]) -> list[str | None]:
        """For each entry, the file holding its stored result, or None when it has none (or
        reuse is off)."""
        if not self.reuse:
            return [None] * len(entries)
        packed = self.packed()
        # Entries with a folder of their own, one listing per kind: a first run's thousands of
        # shards cost no request each (on S3, a HEAD per shard was seconds to minutes).
        folders = {kind: set(storage.list_dir(storage.join(self.work_root, kind)))
                   for kind in {e.kind for e in entries if e.key not in packed}}
        found: list[str | None] = []
        for entry in entries:
            if entry.key in packed:
                found.append(packed[entry.key])
                continue
            own = storage.join(entry.folder(self.work_root), RESULT)
            # A folder may be unfinished: only its result.json says the work is done.
            found.append(own if entry.address in folders[entry.kind] and storage.exists(own) else None)
        return found

    def read(self, entry: CacheEntry, where: str | None) -> dict[str, Any] | None:
        """``entry``'s stored result from the file ``where`` (:meth:`locate`), or None when
        it is not there (any more) or a pack file it names is gone (``cache gc``)."""
        if not self.reuse or where is None:
            return None
        contents = self._contents(where)
        if contents is None:
            return None
        if RESULTS_FIELD in contents:  # a pack's: its files are in the same folder
            return contents[RESULTS_FIELD].get(entry.key)
        return contents if _packs_exist(contents) else None

    def own(self, entry: CacheEntry) -> dict[str, Any] | None:
        """``entry``'s result from its own ``result.json``, if finished."""
        return self.read(entry, storage.join(entry.folder(self.work_root), RESULT))

    def _contents(self, url: str) -> Any:
        if url not in self._read:
            try:
                self._read[url] = storage.read_json(url)
            except FileNotFoundError:
                return None
        return self._read[url]


def _packs_exist(result: dict[str, Any]) -> bool:
    """Whether the shared files (:mod:`.packs`) that a result's parts name are there (an
    entry's own result may name a pack that ``cache gc`` removed apart from it)."""
    parts = [writers.split_part(v) for v in result.values() if isinstance(v, str)]
    return all(storage.exists(path) for path, rows in parts if rows is not None)
