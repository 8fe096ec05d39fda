"""What the engine offers an operator beyond ``process``, by small protocols an operator may
implement (none is required):

* :class:`UsesCache`: ``use_cache(url)``, a folder where it keeps work worth reusing across
  tasks and runs (generations, judgments), beside the stage cache;
* :class:`UsesIndex`: an index built once per content (``index_key``, ``build_index`` whose
  result has ``save(path)``, ``use_index(path)``), stored as the cache entry
  ``indexes/<index_key>`` before any shard's task runs and read by every one of them;
* :class:`Reports`: ``take_report()`` after a shard's chain (JSON-able, carried by the stage
  output) and ``merge_reports(reports)`` summing every shard's into the operator's summary in
  the manifest.
"""

from __future__ import annotations

import functools
import os
import tempfile
from typing import Any, Protocol, Sequence, runtime_checkable

from recipeflow.datasets import versions  # registers the benchmark sets' dataset resolver
from recipeflow.engine.cache_address import RESULT, CacheEntry, index_entry
from recipeflow.engine.planner import OpRef, Stage
from recipeflow.io import storage

# Under the work root: what operators cache across tasks (generations, judgments), not a task
# result, so `cache gc` leaves it alone (see cache_admin).
GENERATIONS = "generations"
INDEX_FILE = "index.bin"

__all__ = ["versions"]  # imported for its registration


@runtime_checkable
class UsesCache(Protocol):
    def use_cache(self, url: str | None) -> None: ...


@runtime_checkable
class UsesIndex(Protocol):
    def index_key(self) -> str: ...

    def build_index(self) -> Any: ...

    def use_index(self, path: str | None) -> None: ...


@runtime_checkable
class Reports(Protocol):
    def take_report(self) -> dict[str, Any]: ...


def index_refs(stage: Stage) -> list[OpRef]:
    """The stage's operators that read an index built once for every shard."""
    return [ref for ref in stage.ops if all(callable(getattr(ref.cls, m, None)) for m in ("index_key", "build_index", "use_index"))]


def index_entry_of(ref: OpRef) -> CacheEntry:
    op = ref.build()
    assert isinstance(op, UsesIndex)
    return index_entry(op.index_key())


def build_index(ref: OpRef, entry: CacheEntry, work_root: str, reuse: bool = True) -> str:
    """The index file of ``ref`` stored under ``entry``; built (once) when it is not stored."""
    folder = entry.folder(work_root)
    path = storage.join(folder, INDEX_FILE)
    if reuse and entry.finished(work_root):
        return path
    op = ref.build()
    assert isinstance(op, UsesIndex)
    index = op.build_index()
    if storage.is_local(path):
        index.save(path)
    else:  # Index.save writes a local file: write it there, then upload
        with tempfile.TemporaryDirectory() as local:
            index.save(os.path.join(local, INDEX_FILE))
            with open(os.path.join(local, INDEX_FILE), "rb") as f:
                storage.write_bytes(path, f.read())
    storage.write_json(storage.join(folder, RESULT), {"path": path})  # last: the entry is finished
    return path


def prepare_ops(stage: Stage, steps: Sequence[tuple[str, Any]], work_root: str, reuse: bool) -> None:
    """Before a shard's chain: caches for operators that keep one, and their stored index (built
    here only if the flow did not build it first, e.g. when the engine is called directly)."""
    refs = {ref.step: ref for ref in stage.ops}
    for step, op in steps:
        if isinstance(op, UsesCache):
            op.use_cache(storage.join(work_root, GENERATIONS) if reuse else None)
        if isinstance(op, UsesIndex) and step in refs:
            entry = index_entry(op.index_key())
            op.use_index(build_index(refs[step], entry, work_root, reuse=True))


def take_reports(steps: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """After a shard's chain: step -> what each reporting operator found in the shard."""
    return {step: op.take_report() for step, op in steps if _reports(type(op))}


@functools.cache
def _reports(cls: type) -> bool:
    # Once per class: a runtime-checkable protocol's isinstance costs ~20 us, paid per shard.
    return issubclass(cls, Reports)


def merged_report(ref: OpRef, reports: Sequence[dict[str, Any]]) -> Any | None:
    """The operator's summary from every shard's report, or None when it does not report."""
    merge = getattr(ref.cls, "merge_reports", None)
    if merge is None or not reports:
        return None
    return merge(list(reports))
