"""A batch task's shards stored in shared files ("packs"), not a few files each.

A shard's stage output is a handful of small files (kept, rejected, unreadable documents, its
``result.json``). Thousands of small shards made that the cost of a run: writing five thousand
Parquet files and ``result.json`` files, and the commit opening them one by one, took longer
than the filtering. A batch task (``orchestration.batches``) therefore writes its shards'
documents into one Parquet file per stream, and the pack's one ``result.json`` holds every
shard's result (:mod:`.stored_results`), each naming its part: ``<file>#rows=<start>:<stop>``
(``io.writers.part_url``). Every reader of stage outputs reads a part as it reads a file, and the
commit reads a pack's consecutive parts as one. Small shards share row groups (a Parquet row
group costs about half a millisecond to write, whatever it holds); a reader keeps the last few
groups it read, so consecutive shards decode a group once.

Per-shard caching is unchanged: each shard's result is found by its own entry's key, once its
pack is in place, so a killed batch resumes from the packs it finished. A pack is closed (and its shards
finished) when it holds ``PACK_BYTES``, or when a shard's documents have other columns than the
pack's (Parquet has one schema per file). A pack lives under ``packs/<address>``, named by its
shards' entries: the same shards give the same pack, and a pack is never written over by one
holding other shards. It is written under a staging name and renamed (uploaded) whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

import pyarrow as pa

from recipeflow.engine.cache_address import PACKS, RESULT, CacheEntry
from recipeflow.engine.planner import stable_hash
from recipeflow.engine.shard_input import StageOutput
from recipeflow.engine.stored_results import RESULTS_FIELD
from recipeflow.io import storage, writers

KIND = PACKS  # <cache root>/packs/<address>/<stream>.parquet, and its result.json
# A pack is closed once its files hold this much: bounds what a killed batch loses. (Readers
# never hold a whole pack: the commit joins parts up to writers.COALESCED_ROWS.)
PACK_BYTES = 128 << 20
# Small shards' documents are held until they make a row group of this many documents or bytes.
GROUP_ROWS = 1_000
GROUP_BYTES = 8 << 20


@dataclass
class _StreamFile:
    """One stream's Parquet file of the open pack, written under a staging name."""

    staging: str
    schema: pa.Schema
    writer: object
    rows: int = 0  # documents added (written or held)
    held: list[pa.Table] = field(default_factory=list)  # small shards' documents not yet written
    held_rows: int = 0
    held_bytes: int = 0
    written_bytes: int = 0  # the staging file's size after the last row group written

    def add(self, table: pa.Table) -> range:
        """Append ``table``'s rows; returns where they are in the file."""
        where = range(self.rows, self.rows + len(table))
        self.rows += len(table)
        if len(table) >= GROUP_ROWS:
            self.flush()
            writers.write_row_groups(self.writer, [table])  # type: ignore[arg-type]
            self.written_bytes = os.path.getsize(self.staging)
            return where
        self.held.append(table)
        self.held_rows += len(table)
        self.held_bytes += table.get_total_buffer_size()
        if self.held_rows >= GROUP_ROWS or self.held_bytes >= GROUP_BYTES:
            self.flush()
        return where

    def flush(self) -> None:
        """Write the held documents as one row group. Its chunks are left as they are: a pack
        is read back by rows, never compared by bytes, and joining them first cost more than
        the writing saved."""
        if self.held:
            self.writer.write_table(pa.concat_tables(self.held))  # type: ignore[attr-defined]
            self.held, self.held_rows, self.held_bytes = [], 0, 0
            self.written_bytes = os.path.getsize(self.staging)

    def bytes(self) -> int:
        # Known without a stat per shard: the size is taken when a row group is written.
        return self.written_bytes + self.held_bytes


@dataclass
class Packed:
    """A shard written into the open pack, finished when the pack is in place."""

    index: int  # as given to ``add``
    entry: CacheEntry  # the shard's own cache entry
    # What finishing it needs beside its parts (a stage's key, counts and reports): never its
    # documents, which are in the file already (a pack holds up to 128 MiB of them).
    about: Any
    rows: dict[str, range] = field(default_factory=dict)  # stream -> its rows in the file
    # stream -> its columns, for a stream no shard of the pack has rows in (the documents are
    # in the file already: a pending shard holds none)
    schemas: dict[str, pa.Schema] = field(default_factory=dict)

    def parts(self, paths: dict[str, str]) -> dict[str, str]:
        """Stream -> this shard's part of the pack's file."""
        return {name: writers.part_url(paths[name], r.start, r.stop) for name, r in self.rows.items()}


Finish = Callable[[Packed, dict[str, str]], Any]


class ShardPacks:
    """Shards' tables written into packs, in the order they are added; once a pack's files are
    in place, ``finish(shard, parts)`` makes each of its shards' results, and the pack's
    ``result.json`` stores them all (``stored(result)``: a result as JSON), by the shard's
    entry key. ``add`` and ``close`` return the shards finished so far, as (index given to
    ``add``, what ``finish`` returned)."""

    def __init__(self, work_root: str, finish: Finish, stored: Callable[[Any], dict[str, Any]],
                 pack_bytes: int = PACK_BYTES):
        self.finish = finish
        self.stored = stored
        self.pack_bytes = pack_bytes
        self.folder = storage.join(work_root, KIND)
        self.files: dict[str, _StreamFile] = {}
        self.pending: list[Packed] = []

    def add(self, index: int, entry: CacheEntry, streams: dict[str, pa.Table | None], about: Any = None) -> list[tuple[int, Any]]:
        finished: list[tuple[int, Any]] = []
        if any(t is not None and len(t) and name in self.files and not t.schema.equals(self.files[name].schema)
               for name, t in streams.items()):
            finished = self.close()  # Parquet has one schema per file: the next pack takes these
        shard = Packed(index, entry, about)
        for name, table in streams.items():
            if table is None:
                continue
            shard.schemas[name] = table.schema
            stream = self.files.get(name)
            if len(table) == 0:  # no rows: an empty part of whatever file the stream has
                shard.rows[name] = range(stream.rows, stream.rows) if stream else range(0, 0)
                continue
            if stream is None:
                stream = self._open(name, table.schema)
            shard.rows[name] = stream.add(table)
        self.pending.append(shard)
        if sum(f.bytes() for f in self.files.values()) >= self.pack_bytes:
            finished += self.close()
        return finished

    def run(self, count: int, stored: Callable[[int], Any], make: Callable[[int], tuple[CacheEntry, dict[str, pa.Table | None], Any]]) -> list[Any]:
        """The results of ``count`` shards in order: ``stored(i)``, or when that is None, the
        shard made (``make(i)``: its entry, streams and what ``finish`` needs), packed and
        finished. A failure leaves the packs closed so far and nothing of the open one."""
        results: list[Any] = [None] * count
        try:
            for i in range(count):
                results[i] = stored(i)
                if results[i] is None:
                    for index, result in self.add(i, *make(i)):
                        results[index] = result
            for index, result in self.close():
                results[index] = result
        except BaseException:
            self.abandon()
            raise
        return results

    def _open(self, name: str, schema: pa.Schema) -> _StreamFile:
        staging = storage.staging_path(self.folder, f"{name}.parquet")
        stream = _StreamFile(staging, schema, writers.parquet_writer(staging, schema))
        self.files[name] = stream
        return stream

    def close(self) -> list[tuple[int, Any]]:
        """Put the open pack's files in place, then finish its shards."""
        if not self.pending:
            return []
        # A stream whose shards all came out empty still needs a file for their empty parts.
        for shard in self.pending:
            for name in shard.rows:
                if name not in self.files:
                    self._open(name, shard.schemas[name])
        address = stable_hash({"pack": [s.entry.key for s in self.pending]})
        paths = {}
        for name, stream in self.files.items():
            stream.flush()
            stream.writer.close()  # type: ignore[attr-defined]
            paths[name] = storage.join(self.folder, address, f"{name}.parquet")
            storage.place_file(stream.staging, paths[name])
        finished = [(shard.index, self.finish(shard, paths)) for shard in self.pending]
        # Last: once it is there, the pack's shards are finished (a reader finds them here).
        storage.write_json(storage.join(self.folder, address, RESULT), {
            "shards": [s.entry.key for s in self.pending],
            "files": paths,
            RESULTS_FIELD: {s.entry.key: self.stored(r) for s, (_, r) in zip(self.pending, finished)},
        }, indent=None)  # thousands of shards' results, read by machines
        self.files, self.pending = {}, []
        return finished

    def abandon(self) -> None:
        """Remove the open pack's staging files (the task failed; its shards stay to do)."""
        for stream in self.files.values():
            try:
                stream.writer.close()  # type: ignore[attr-defined]
            finally:
                if os.path.exists(stream.staging):
                    os.remove(stream.staging)
        self.files, self.pending = {}, []


def stage_packs(work_root: str, pack_bytes: int = PACK_BYTES) -> ShardPacks:
    """Packs of a stage's shards, each added with ``execute.stage_streams(tables)`` and
    ``(shard key, tables.counts, tables.reports)``; each finished shard is its
    :class:`StageOutput`."""

    def finish(shard: Packed, paths: dict[str, str]) -> StageOutput:
        key, counts, reports = shard.about
        parts = shard.parts(paths)
        return StageOutput(
            key=key,
            address=shard.entry.address,
            kept=parts["kept"],
            kept_rows=len(shard.rows["kept"]),
            rejected=parts.get("rejected"),
            rejected_rows=len(shard.rows.get("rejected", ())),
            unreadable=parts.get("unreadable"),
            unreadable_rows=len(shard.rows.get("unreadable", ())),
            counts=counts,
            reports=reports,
        )

    return ShardPacks(work_root, finish, StageOutput.stored, pack_bytes)


def signature_packs(work_root: str, pack_bytes: int = PACK_BYTES) -> ShardPacks:
    """Packs of a barrier's signatures, each shard added with ``{"signatures": table}``; each
    finished shard is the URL of its signatures."""

    def finish(shard: Packed, paths: dict[str, str]) -> str:
        return shard.parts(paths)["signatures"]

    return ShardPacks(work_root, finish, lambda path: {"path": path}, pack_bytes)
