"""Content addresses of the stage cache: one per unit of work, computed once.

Every unit of work (a stage on a shard, a barrier's signatures of a shard, its resolve, a
partition, a merge) stores its result under ``<cache root>/<kind>/<address>``. The address is
a hash of everything the result depends on, so equal work finds the stored result and changed
work never does. The flow computes a :class:`CacheEntry` once and hands the same object to the
Prefect task (its cache key) and to the engine (the folder it reads and writes).
"""

from __future__ import annotations

from dataclasses import dataclass

from recipeflow.engine.planner import OpRef, Stage, stable_hash
from recipeflow.engine.shard_input import ShardInput
from recipeflow.io import storage

RESULT = "result.json"  # written last in an entry's folder: the work is finished
PACKS = "packs"  # <cache root>/packs/<address>: files shared by a batch's shards (engine.packs)


@dataclass(frozen=True)
class CacheEntry:
    """Where one unit of work's result lives: ``<cache root>/<kind>/<address>``."""

    kind: str  # stages | signatures | decisions | partitions | indexes
    address: str

    @property
    def key(self) -> str:
        """``<kind>/<address>``: the entry's path under any cache root."""
        return f"{self.kind}/{self.address}"

    def folder(self, work_root: str) -> str:
        return storage.join(work_root, self.kind, self.address)

    def finished(self, work_root: str) -> bool:
        """Whether the work's result is stored (its result file exists)."""
        return storage.exists(storage.join(self.folder(work_root), RESULT))


def stage_entry(stage: Stage, inp: ShardInput, decision_digest: str | None) -> CacheEntry:
    """``decision_digest``: the content digest of the shard's barrier decision (not its path),
    so a shard whose decision did not change keeps its result when other shards change (a
    refresh that adds files resolves the barrier again, but old shards' decisions stay)."""
    return CacheEntry(
        "stages",
        stable_hash({"stage": stage.fingerprint(), "input": inp.address_part(), "decision": decision_digest}),
    )


def signatures_entry(barrier: OpRef, inp: ShardInput) -> CacheEntry:
    return CacheEntry(
        "signatures",
        stable_hash({"barrier": barrier.identity(), "input": inp.address_part(), "phase": "signatures"}),
    )


def resolve_entry(barrier: OpRef, signature_paths: list[str], history: int = 0) -> CacheEntry:
    return CacheEntry(
        "decisions",
        stable_hash(
            {"barrier": barrier.identity(), "signatures": signature_paths, "history": history, "phase": "resolve"}
        ),
    )


def partition_entry(
    barrier: OpRef, signature_paths: list[str], partition: int, partitions: int, history: int = 0
) -> CacheEntry:
    return CacheEntry(
        "partitions",
        stable_hash(
            {
                "barrier": barrier.identity(),
                "signatures": signature_paths,
                "history": history,
                "partition": [partition, partitions],
                "phase": "partition",
            }
        ),
    )


def merge_entry(barrier: OpRef, partial_paths: list[str]) -> CacheEntry:
    """The partials' addresses already name the signatures, history included."""
    return CacheEntry(
        "decisions", stable_hash({"barrier": barrier.identity(), "partials": partial_paths, "phase": "merge"})
    )


def batch_entry(entries: list[CacheEntry]) -> CacheEntry:
    """A batch of units of work (one task doing several shards): named by its members' entries.
    Only a Prefect cache key: each member stores its result under its own entry."""
    return CacheEntry("batches", stable_hash([e.key for e in entries]))


def index_entry(index_key: str) -> CacheEntry:
    """An operator's index (``UsesIndex``), built once for every shard: its key is already a
    content address (the benchmark files' sha256 and what the index is made with)."""
    return CacheEntry("indexes", index_key)
